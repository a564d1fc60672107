// nvmf-echo: the benchmark's loopback ceiling server. It answers the echo
// protocol (src-native/host/echo_wire.h) with no NVMe processing at all,
// but moves the same bytes through the same kind of memory as a RAM
// namespace: read data is sent straight from a RAM region at the requested
// offset, write data is copied into it, responses are batched into one
// sendmsg per pass like the target's TCP transport does. Single threaded, polled the same way the target's
// reactor is (--poll-mode poll | adaptive | interrupt), so "our target as a
// fraction of this" isolates the cost of NVMe/TCP and the target itself.
//
//   nvmf-echo --address 127.0.0.1 --port 4421 [--poll-mode adaptive] [--adaptive-us 200]
//             [--size BYTES]   (the RAM region, default 512 MiB, like the benchmark's namespace)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "host/echo_wire.h"

namespace echo = nvmf::host::echo;

namespace {

constexpr size_t kRxBuf = 64 * 1024;
constexpr int kMaxBatch = 64;

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

struct Pending {
  echo::Response hdr;
  const uint8_t* src;  // read data, in the region
  uint32_t data;       // read data bytes after the header
};

struct Conn {
  int fd = -1;
  bool want_out = false;
  // RX: a request header being assembled, then write data being skipped.
  echo::Request req{};
  size_t have = 0;
  uint32_t skip = 0;   // write data still to come
  uint8_t* dst = nullptr;  // where it goes in the region
  // TX: responses in order; the head may be partly sent.
  std::vector<Pending> out;
  size_t head = 0;
  size_t sent = 0;
  uint8_t rx[kRxBuf];
};

uint8_t* g_region = nullptr;  // the "namespace": reads come from it, writes go to it
uint64_t g_region_size = 0;
int g_ep = -1;

// Where I/O at `offset` of `len` bytes lands in the region (wrapping).
uint8_t* at(uint64_t offset, uint32_t len) {
  uint64_t span = g_region_size - len;
  return g_region + (span ? offset % (span + 1) : 0);
}

void drop(Conn* c) {
  epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, nullptr);
  ::close(c->fd);
  delete c;
}

// Queues the response to the request just completed. false: bad request.
bool on_request(Conn* c) {
  const echo::Request& r = c->req;
  if (r.magic != echo::kReqMagic || r.len > echo::kMaxLen) return false;
  Pending p{};
  p.hdr.magic = echo::kRespMagic;
  p.hdr.tag = r.tag;
  p.hdr.status = 0;
  p.hdr.len = r.op == uint8_t(echo::Op::Read) ? r.len : 0;
  p.data = p.hdr.len;
  p.src = p.data ? at(r.offset, r.len) : nullptr;
  c->out.push_back(p);
  return true;
}

// Parses received bytes; write data is consumed without copying.
bool feed(Conn* c, const uint8_t* p, size_t n) {
  while (n > 0) {
    if (c->skip > 0) {
      size_t take = n < c->skip ? n : c->skip;
      std::memcpy(c->dst, p, take);  // as a RAM namespace stores it
      c->dst += take;
      c->skip -= uint32_t(take);
      p += take;
      n -= take;
      if (c->skip == 0 && !on_request(c)) return false;
      continue;
    }
    size_t take = sizeof c->req - c->have;
    if (take > n) take = n;
    std::memcpy(reinterpret_cast<uint8_t*>(&c->req) + c->have, p, take);
    c->have += take;
    p += take;
    n -= take;
    if (c->have < sizeof c->req) break;
    c->have = 0;
    if (c->req.magic != echo::kReqMagic || c->req.len > echo::kMaxLen) return false;
    if (c->req.op == uint8_t(echo::Op::Write) && c->req.len > 0) {
      c->skip = c->req.len;
      c->dst = at(c->req.offset, c->req.len);
    } else if (!on_request(c)) {
      return false;
    }
  }
  return true;
}

// Sends queued responses, many per sendmsg. -1 on a dead socket.
int flush(Conn* c) {
  int work = 0;
  while (c->head < c->out.size()) {
    iovec iov[kMaxBatch * 2];
    int niov = 0;
    size_t skip = c->sent;
    for (size_t k = c->head; k < c->out.size() && niov < kMaxBatch * 2 - 1; k++) {
      const Pending& pd = c->out[k];
      const struct {
        const uint8_t* p;
        size_t n;
      } seg[2] = {{reinterpret_cast<const uint8_t*>(&pd.hdr), sizeof pd.hdr}, {pd.src, pd.data}};
      for (const auto& g : seg) {
        if (g.n == 0) continue;
        if (skip >= g.n) {
          skip -= g.n;
          continue;
        }
        iov[niov].iov_base = const_cast<uint8_t*>(g.p + skip);
        iov[niov].iov_len = g.n - skip;
        niov++;
        skip = 0;
      }
    }
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = size_t(niov);
    ssize_t n = ::sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return -1;
    }
    work++;
    size_t left = size_t(n);
    while (left > 0 && c->head < c->out.size()) {
      const Pending& pd = c->out[c->head];
      size_t rem = sizeof pd.hdr + pd.data - c->sent;
      if (left < rem) {
        c->sent += left;
        break;
      }
      left -= rem;
      c->sent = 0;
      c->head++;
    }
  }
  if (c->head == c->out.size()) {
    c->out.clear();  // keeps its capacity: no allocation in steady state
    c->head = 0;
  }
  bool want = c->head < c->out.size();
  if (want != c->want_out) {
    c->want_out = want;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
  return work;
}

int on_readable(Conn* c) {
  int work = 0;
  for (int i = 0; i < 16; i++) {
    ssize_t n = ::recv(c->fd, c->rx, sizeof c->rx, MSG_DONTWAIT);
    if (n > 0) {
      work++;
      if (!feed(c, c->rx, size_t(n))) return -1;
      if (size_t(n) < sizeof c->rx) break;
      continue;
    }
    if (n == 0) return -1;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return -1;
  }
  return work;
}

void usage() {
  std::fprintf(stderr,
               "usage: nvmf-echo [--address A] [--port P] [--poll-mode poll|adaptive|interrupt] "
               "[--adaptive-us N] [--size BYTES]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1";
  std::string port = "4421";
  std::string mode = "adaptive";
  uint64_t adaptive_ns = 200000;
  uint64_t size = 512ull << 20;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--address") {
      address = argv[++i];
    } else if (a == "--port") {
      port = argv[++i];
    } else if (a == "--poll-mode") {
      mode = argv[++i];
    } else if (a == "--adaptive-us") {
      adaptive_ns = std::strtoull(argv[++i], nullptr, 10) * 1000;
    } else if (a == "--size") {
      size = std::strtoull(argv[++i], nullptr, 10);
    } else {
      usage();
    }
  }
  if (mode != "poll" && mode != "adaptive" && mode != "interrupt") usage();
  signal(SIGPIPE, SIG_IGN);

  if (size < echo::kMaxLen) size = echo::kMaxLen;
  // Touched once, so every page is real memory (as the benchmark's
  // precondition pass makes the target's RAM namespace).
  auto region = std::make_unique<uint8_t[]>(size);
  for (uint64_t i = 0; i < size; i++) region[i] = uint8_t(i * 131 + 7);
  g_region = region.get();
  g_region_size = size;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (getaddrinfo(address.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    std::fprintf(stderr, "nvmf-echo: cannot resolve %s\n", address.c_str());
    return 1;
  }
  int lfd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || ::bind(lfd, res->ai_addr, res->ai_addrlen) < 0 || ::listen(lfd, 128) < 0) {
    std::fprintf(stderr, "nvmf-echo: cannot listen on %s:%s: %s\n", address.c_str(), port.c_str(),
                 strerror(errno));
    return 1;
  }
  freeaddrinfo(res);
  g_ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;
  epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &lev);
  std::printf("nvmf-echo: listening on %s:%s (%s)\n", address.c_str(), port.c_str(), mode.c_str());
  std::fflush(stdout);

  uint64_t last_work = now_ns();
  while (true) {
    int timeout = 0;
    if (mode == "interrupt" || (mode == "adaptive" && now_ns() - last_work >= adaptive_ns)) {
      timeout = -1;
    }
    epoll_event evs[64];
    int n = epoll_wait(g_ep, evs, 64, timeout);
    int work = 0;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == nullptr) {
        while (true) {
          int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto* c = new Conn();
          c->fd = fd;
          c->out.reserve(1024);
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.ptr = c;
          epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
        }
        work++;
        continue;
      }
      auto* c = static_cast<Conn*>(evs[i].data.ptr);
      int w = (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? on_readable(c) : 0;
      if (w >= 0) {
        int f = flush(c);
        w = f < 0 ? -1 : w + f;
      }
      if (w < 0) {
        drop(c);
        continue;
      }
      work += w;
    }
    if (work > 0) last_work = now_ns();
  }
}
