// PerfClient over the bare echo protocol (echo_wire.h): the loopback
// ceiling. It moves data the way HostQueue does (sendmsg of header + the
// caller's buffer; recv into a 64 KiB staging buffer, then copy into the
// caller's buffer), so the only difference from the NVMe/TCP runs is the
// protocol and the target behind it.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "host/clock.h"
#include "host/echo_wire.h"
#include "host/perf_client.h"

namespace nvmf::host {

namespace {

constexpr size_t kRxBuf = 64 * 1024;
constexpr int kMaxBatch = 32;  // requests per sendmsg

struct EchoConn {
  int fd = -1;
  uint16_t depth = 0;
  std::vector<PerfIo*> slots;  // by tag; nullptr = free
  std::vector<uint16_t> free_tags;
  std::vector<echo::Request> hdrs;
  // TX: tags in submission order; the head may be partly written.
  std::vector<uint16_t> ring;
  size_t head = 0, count = 0;
  size_t first_sent = 0;
  int tx_error = 0;  // seen by a submit()-time send, reported by poll()
  // RX.
  std::vector<uint8_t> rx;
  echo::Response rhdr{};
  size_t rhave = 0;
  uint16_t rtag = 0;
  uint8_t* rdst = nullptr;
  uint32_t rleft = 0;
  bool in_data = false;
};

class EchoClient final : public PerfClient {
 public:
  EchoClient(PerfDoneFn done, void* owner) : PerfClient(done, owner) {}
  ~EchoClient() override {
    fail_all(ECONNABORTED, "echo client destroyed");
    if (epfd_ >= 0) ::close(epfd_);
  }

  bool start(const PerfTargetOptions& o, std::string* err) {
    sockaddr_storage ss{};
    unsigned alen = 0;
    if (!resolve_address(o.address, o.port, &ss, &alen, err)) return false;
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      *err = std::string("epoll: ") + strerror(errno);
      return false;
    }
    conns_.resize(o.connections);
    for (size_t i = 0; i < conns_.size(); i++) {
      EchoConn& c = conns_[i];
      c.depth = o.queue_depth;
      c.slots.assign(c.depth, nullptr);
      c.hdrs.assign(c.depth, echo::Request{});
      c.ring.assign(c.depth, 0);
      c.rx.resize(kRxBuf);
      for (int t = c.depth; t > 0; t--) c.free_tags.push_back(uint16_t(t - 1));
      c.fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
      if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&ss), socklen_t(alen)) < 0) {
        *err = "echo: cannot connect to " + o.address + ":" + std::to_string(o.port) + ": " +
               strerror(errno);
        return false;
      }
      int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = uint32_t(i);
      epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
    }
    connections_ = o.connections;
    queue_depth_ = o.queue_depth;
    size_bytes_ = o.echo_size;
    block_size_ = 512;
    max_transfer_ = echo::kMaxLen;
    return true;
  }

  int submit(PerfIo* io) override {
    if (io->conn >= conns_.size()) return -EINVAL;
    EchoConn& c = conns_[io->conn];
    if (c.fd < 0) return -ENOTCONN;
    if (io->len > echo::kMaxLen) return -EINVAL;
    if (c.free_tags.empty()) return -EAGAIN;
    uint16_t tag = c.free_tags.back();
    c.free_tags.pop_back();
    c.slots[tag] = io;
    io->client = this;
    echo::Request& r = c.hdrs[tag];
    r.magic = echo::kReqMagic;
    r.op = uint8_t(io->op == PerfOp::Read    ? echo::Op::Read
                   : io->op == PerfOp::Write ? echo::Op::Write
                                             : echo::Op::Flush);
    r.len = io->op == PerfOp::Flush ? 0 : io->len;
    r.tag = tag;
    r.offset = io->offset;
    c.ring[(c.head + c.count) % c.ring.size()] = tag;
    c.count++;
    if (!in_poll_ && !held_) flush(c, false);
    return 0;
  }

  int poll() override {
    in_poll_ = true;
    int work = 0;
    for (EchoConn& c : conns_) {
      if (c.fd < 0) continue;
      if (c.tx_error) {
        fail_conn(c, c.tx_error, "echo: send failed");
        continue;
      }
      work += read_socket(c);
      if (c.fd >= 0) work += flush(c, true);
    }
    in_poll_ = false;
    return work;
  }

  int wait(int timeout_ms) override {
    epoll_event evs[16];
    for (size_t i = 0; i < conns_.size(); i++) {
      EchoConn& c = conns_[i];
      if (c.fd < 0) continue;
      epoll_event ev{};
      ev.events = EPOLLIN | (c.count ? EPOLLOUT : 0u);
      ev.data.u32 = uint32_t(i);
      epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
    }
    int n = epoll_wait(epfd_, evs, 16, timeout_ms);
    if (n <= 0) return 0;
    return poll();
  }

  void close() override { fail_all(ECONNABORTED, "echo: connection closed by the client"); }

  void hold_sends(bool on) override {
    held_ = on;
    if (on) return;
    for (EchoConn& c : conns_) {
      if (c.fd >= 0 && !c.tx_error) flush(c, false);  // an error: reported by poll()
    }
  }

 private:
  int flush(EchoConn& c, bool may_fail) {
    int work = 0;
    while (c.count > 0) {
      iovec iov[kMaxBatch * 2];
      int niov = 0;
      size_t skip = c.first_sent;
      for (size_t k = 0; k < c.count && k < size_t(kMaxBatch); k++) {
        uint16_t tag = c.ring[(c.head + k) % c.ring.size()];
        const echo::Request& r = c.hdrs[tag];
        const PerfIo* io = c.slots[tag];
        const struct {
          const uint8_t* p;
          size_t n;
        } seg[2] = {{reinterpret_cast<const uint8_t*>(&r), sizeof r},
                    {io->buf, r.op == uint8_t(echo::Op::Write) ? size_t(r.len) : 0}};
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
      ssize_t n = ::sendmsg(c.fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return work;
        if (may_fail) {
          fail_conn(c, errno, std::string("echo: send failed: ") + strerror(errno));
        } else {
          c.tx_error = errno;
        }
        return work;
      }
      work++;
      size_t left = size_t(n);
      while (left > 0 && c.count > 0) {
        uint16_t tag = c.ring[c.head];
        const echo::Request& r = c.hdrs[tag];
        size_t total = sizeof r + (r.op == uint8_t(echo::Op::Write) ? r.len : 0);
        size_t rem = total - c.first_sent;
        if (left < rem) {
          c.first_sent += left;
          break;
        }
        left -= rem;
        c.first_sent = 0;
        c.head = (c.head + 1) % c.ring.size();
        c.count--;
      }
    }
    return work;
  }

  int read_socket(EchoConn& c) {
    int work = 0;
    for (int i = 0; i < 16 && c.fd >= 0; i++) {
      ssize_t n = ::recv(c.fd, c.rx.data(), c.rx.size(), MSG_DONTWAIT);
      if (n > 0) {
        work++;
        feed(c, c.rx.data(), size_t(n));
        if (size_t(n) < c.rx.size()) break;
        continue;
      }
      if (n == 0) {
        fail_conn(c, ECONNRESET, "echo: connection closed by the server");
        break;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        fail_conn(c, errno, std::string("echo: receive failed: ") + strerror(errno));
      }
      break;
    }
    return work;
  }

  void feed(EchoConn& c, const uint8_t* p, size_t n) {
    while (n > 0 && c.fd >= 0) {
      if (!c.in_data) {
        size_t take = std::min(n, sizeof c.rhdr - c.rhave);
        std::memcpy(reinterpret_cast<uint8_t*>(&c.rhdr) + c.rhave, p, take);
        c.rhave += take;
        p += take;
        n -= take;
        if (c.rhave < sizeof c.rhdr) return;
        c.rhave = 0;
        const echo::Response& h = c.rhdr;
        PerfIo* io = h.tag < c.depth ? c.slots[h.tag] : nullptr;
        uint32_t want = io && io->op == PerfOp::Read ? io->len : 0;
        if (h.magic != echo::kRespMagic || io == nullptr || h.len != want) {
          fail_conn(c, EPROTO, "echo: malformed response");
          return;
        }
        c.rtag = h.tag;
        if (h.len == 0) {
          complete(c, h.tag, h.status);
          continue;
        }
        c.in_data = true;
        c.rdst = io->buf;
        c.rleft = h.len;
      } else {
        size_t take = std::min<size_t>(n, c.rleft);
        std::memcpy(c.rdst, p, take);
        c.rdst += take;
        c.rleft -= uint32_t(take);
        p += take;
        n -= take;
        if (c.rleft == 0) {
          c.in_data = false;
          complete(c, c.rtag, c.rhdr.status);
        }
      }
    }
  }

  void complete(EchoConn& c, uint16_t tag, uint16_t status) {
    PerfIo* io = c.slots[tag];
    c.slots[tag] = nullptr;
    c.free_tags.push_back(tag);
    io->err = status ? -EIO : 0;
    io->nvme_status = status;
    deliver(io);
  }

  void fail_conn(EchoConn& c, int err, const std::string& why) {
    if (c.fd < 0) return;
    if (error_.empty()) error_ = why;
    epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    c.count = 0;
    c.first_sent = 0;
    for (uint16_t t = 0; t < c.depth; t++) {
      PerfIo* io = c.slots[t];
      if (!io) continue;
      c.slots[t] = nullptr;
      c.free_tags.push_back(t);
      io->err = -err;
      io->nvme_status = 0;
      deliver(io);
    }
  }

  void fail_all(int err, const std::string& why) {
    for (EchoConn& c : conns_) fail_conn(c, err, why);
  }

  std::vector<EchoConn> conns_;
  int epfd_ = -1;
  bool in_poll_ = false;
  bool held_ = false;  // cork(): submit() only queues
};

}  // namespace

std::unique_ptr<PerfClient> make_echo_client(const PerfTargetOptions& o, PerfDoneFn done,
                                             void* owner, std::string* err) {
  auto c = std::make_unique<EchoClient>(done, owner);
  if (!c->start(o, err)) return nullptr;
  return c;
}

}  // namespace nvmf::host
