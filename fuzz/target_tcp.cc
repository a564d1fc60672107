// libFuzzer harness: the whole target behind one NVMe/TCP connection. A
// real Target (one reactor, a subsystem with a RAM namespace, a listener on
// loopback) is started once; each input becomes the byte stream of a new
// connection: tcp.cc's receive path, the request state machine, and every
// fabrics, admin and I/O command handler see hostile bytes.
//
// Input: byte 0 picks a prologue the harness sends first, so the fuzzer
// starts past what it could not guess: (bits 2:0) % 5 = 0 nothing, 1 ICReq,
// 2 ICReq + admin Connect (kato 0), 3 ICReq + Connect + CC.EN (an enabled
// controller that takes admin commands), 4 ICReq + an I/O queue Connect to
// a controller the harness keeps enabled on its own admin connection (I/O
// commands reach the namespace); bit 3 asks for header and data digests
// (prologue PDUs carry them); bit 4 sends the input PDU by PDU (framed by
// plen), waiting briefly for the target's answer after each, so H2CData can
// follow the R2T it answers. Like a real host, the harness waits for the
// prologue's responses (an I/O queue's Connect completes asynchronously,
// and commands sent before it are refused). The rest of the input is sent
// as is; then the harness half-closes the connection and reads until the
// target closes it.
//
// Checked: no sanitizer report; the target closes every connection within
// 10 s of the host's FIN (a hang is a finding); when the process ends the
// target shuts down in order and every qpair, controller and request buffer
// is given back.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/target.h"
#include "nvme/crc32c.h"

using namespace nvmf;

namespace {

class NullSink final : public EventSink {
 public:
  void emit(const char*, std::string) override {}
};

const char* kSub = "nqn.2024-01.io.nvmf-target:fuzz";
const char* kHost = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";

std::shared_ptr<Target> g_target;
uint16_t g_port = 0;
int g_admin_fd = -1;     // the harness's own enabled controller
uint16_t g_cntlid = 0;
uint32_t g_next_qid = 0;

void shutdown_target() {
  if (!g_target) return;
  if (g_admin_fd >= 0) close(g_admin_fd);
  g_target->shutdown();
  ResourceSnapshot r = g_target->resource_snapshot();
  if (r.qpairs || r.controllers || r.request_buffers || r.outstanding_requests) {
    fprintf(stderr, "target_tcp: resources left after shutdown: qpairs %lld controllers %lld buffers %lld requests %lld\n",
            (long long)r.qpairs, (long long)r.controllers, (long long)r.request_buffers,
            (long long)r.outstanding_requests);
    abort();
  }
  g_target.reset();
}

void start_target() {
  TargetOptions o;
  o.reactors = 1;
  o.poll_mode = PollMode::Interrupt;
  o.transport.handshake_timeout_ms = 0;  // the harness closes every connection itself
  o.disconnect_timeout_ms = 1000;
  if (Target::create(o, std::make_shared<NullSink>(), &g_target) < 0) abort();
  CtlError e;
  BdevInfo b;
  b.name = "ram0";
  b.type = "malloc";
  b.block_size = 512;
  b.num_blocks = 2048;
  if (g_target->create_bdev(b, &e) < 0) abort();
  SubsystemConfig sc;
  sc.nqn = kSub;
  sc.serial = "FUZZ0001";
  sc.allow_any_host = true;
  if (g_target->create_subsystem(sc, &e) < 0) abort();
  uint32_t nsid;
  if (g_target->add_namespace(kSub, "ram0", 0, Namespace{}, &nsid, &e) < 0) abort();
  for (uint16_t port = 40000 + uint16_t(getpid() % 20000);; port++) {
    ListenAddress a;
    a.transport = "tcp";
    a.address = "127.0.0.1";
    a.port = port;
    if (g_target->listen(a, &e) == 0) {
      g_port = port;
      break;
    }
  }
  atexit(shutdown_target);
}

void put_le32(std::vector<uint8_t>& v, size_t at, uint32_t x) {
  for (int i = 0; i < 4; i++) v[at + i] = uint8_t(x >> (8 * i));
}

// A host PDU: common header + `hdr` + optional data, digests as negotiated.
std::vector<uint8_t> pdu(uint8_t type, const std::vector<uint8_t>& hdr, const std::vector<uint8_t>& data,
                         bool digests) {
  const uint32_t hlen = 8 + uint32_t(hdr.size());
  const uint32_t hd = digests ? 4 : 0;
  const uint32_t dd = digests && !data.empty() ? 4 : 0;
  const uint32_t pdo = data.empty() ? 0 : hlen + hd;
  std::vector<uint8_t> p(hlen + hd + data.size() + dd);
  p[0] = type;
  p[1] = uint8_t((hd ? 1 : 0) | (dd ? 2 : 0));
  p[2] = uint8_t(hlen);
  p[3] = uint8_t(pdo);
  put_le32(p, 4, uint32_t(p.size()));
  std::memcpy(p.data() + 8, hdr.data(), hdr.size());
  if (hd) put_le32(p, hlen, crc32c_digest(p.data(), hlen));
  if (!data.empty()) {
    std::memcpy(p.data() + hlen + hd, data.data(), data.size());
    if (dd) put_le32(p, hlen + hd + data.size(), crc32c_digest(data.data(), data.size()));
  }
  return p;
}

std::vector<uint8_t> fabrics(uint8_t fctype, uint16_t cid, uint32_t sgl_len) {
  std::vector<uint8_t> s(64);
  s[0] = 0x7f;
  s[1] = 0x40;
  s[2] = uint8_t(cid);
  s[4] = fctype;
  put_le32(s, 32, sgl_len);
  s[39] = sgl_len ? 0x01 : 0;
  return s;
}

std::vector<uint8_t> prologue(int level, bool digests, uint16_t qid = 0, uint16_t cntlid = 0xffff) {
  std::vector<uint8_t> out;
  if (level >= 1) {
    std::vector<uint8_t> p(128);  // ICReq
    p[0] = 0x00;
    p[2] = 128;
    put_le32(p, 4, 128);
    p[11] = uint8_t(digests ? 3 : 0);
    out.insert(out.end(), p.begin(), p.end());
  }
  if (level >= 2) {
    std::vector<uint8_t> c = fabrics(0x01, 1, 1024);
    c[42] = uint8_t(qid);
    c[43] = uint8_t(qid >> 8);
    c[44] = 31;  // SQSIZE
    std::vector<uint8_t> d(1024);
    d[16] = uint8_t(cntlid);
    d[17] = uint8_t(cntlid >> 8);
    std::memcpy(d.data() + 256, kSub, strlen(kSub));
    std::memcpy(d.data() + 512, kHost, strlen(kHost));
    auto p = pdu(0x04, c, d, digests);
    out.insert(out.end(), p.begin(), p.end());
  }
  if (level >= 3 && qid == 0) {
    std::vector<uint8_t> c = fabrics(0x00, 2, 0);  // Property Set CC = EN | IOSQES 6 | IOCQES 4
    put_le32(c, 44, 0x14);
    put_le32(c, 48, 0x00460001);
    auto p = pdu(0x04, c, {}, digests);
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

int connect_loopback() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(g_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Reads whole PDUs until `count` CapsuleResps arrived; returns the first's DW0.
uint32_t read_responses(int fd, int count) {
  std::vector<uint8_t> buf;
  uint32_t first = 0;
  int seen = 0;
  uint8_t tmp[4096];
  while (seen < count) {
    ssize_t r = recv(fd, tmp, sizeof tmp, 0);
    if (r <= 0) abort();
    buf.insert(buf.end(), tmp, tmp + r);
    while (buf.size() >= 8) {
      uint32_t plen = uint32_t(buf[4]) | uint32_t(buf[5]) << 8 | uint32_t(buf[6]) << 16 | uint32_t(buf[7]) << 24;
      if (buf.size() < plen) break;
      if (buf[0] == 0x05) {
        const uint16_t status = uint16_t(buf[22] | buf[23] << 8) >> 1;
        if (status & 0x7ff) {
          fprintf(stderr, "target_tcp: setup command failed with status 0x%x\n", status & 0x7ff);
          abort();
        }
        if (seen++ == 0) first = uint32_t(buf[8]) | uint32_t(buf[9]) << 8 | uint32_t(buf[10]) << 16 | uint32_t(buf[11]) << 24;
      }
      buf.erase(buf.begin(), buf.begin() + plen);
    }
  }
  return first;
}

// An admin queue the harness keeps: Connect, CC.EN, Number of Queues, so
// inputs can connect I/O queues to it.
void start_controller() {
  g_admin_fd = connect_loopback();
  if (g_admin_fd < 0) abort();
  std::vector<uint8_t> b = prologue(3, false);
  std::vector<uint8_t> sf(64);  // Set Features, Number of Queues: 16 + 16
  sf[0] = 0x09;
  sf[1] = 0x40;  // SGL: a transport data block of length 0 (no data)
  sf[2] = 3;
  sf[39] = 0x5a;
  put_le32(sf, 40, 0x07);
  put_le32(sf, 44, 0x000f000f);
  auto p = pdu(0x04, sf, {}, false);
  b.insert(b.end(), p.begin(), p.end());
  if (send(g_admin_fd, b.data(), b.size(), MSG_NOSIGNAL) != ssize_t(b.size())) abort();
  uint8_t icresp[128];
  size_t got = 0;
  while (got < sizeof icresp) {
    ssize_t r = recv(g_admin_fd, icresp + got, sizeof icresp - got, 0);
    if (r <= 0) abort();
    got += size_t(r);
  }
  g_cntlid = uint16_t(read_responses(g_admin_fd, 3));
}

// Sends the prologue and waits for its ICResp and `responses` CapsuleResps
// (each must succeed). False when the target refused it (an I/O queue whose
// qid is still attached, say): the input is then skipped.
bool send_prologue(int fd, const std::vector<uint8_t>& pro, int responses) {
  if (send(fd, pro.data(), pro.size(), MSG_NOSIGNAL) != ssize_t(pro.size())) return false;
  std::vector<uint8_t> buf;
  int need = responses + 1;  // + ICResp
  uint8_t tmp[8192];
  while (need > 0) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return false;
    ssize_t r = recv(fd, tmp, sizeof tmp, 0);
    if (r <= 0) return false;
    buf.insert(buf.end(), tmp, tmp + r);
    while (buf.size() >= 8) {
      const uint32_t plen = uint32_t(buf[4]) | uint32_t(buf[5]) << 8 | uint32_t(buf[6]) << 16 | uint32_t(buf[7]) << 24;
      if (plen < 8 || buf.size() < plen) break;
      if (buf[0] == 0x05 && plen >= 24 && ((buf[22] | buf[23] << 8) >> 1 & 0x7ff) != 0) return false;
      if (buf[0] == 0x01 || buf[0] == 0x05) need--;
      buf.erase(buf.begin(), buf.begin() + plen);
    }
  }
  return buf.empty();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  start_target();
  start_controller();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int level = (data[0] & 7) % 5;
  const bool digests = data[0] & 8;
  // I/O queues rotate over qids 1..16: the controller learns that the
  // previous one is gone by a message that may still be on its way.
  std::vector<uint8_t> pro = level == 4 ? prologue(2, digests, uint16_t(1 + g_next_qid++ % 16), g_cntlid)
                                        : prologue(level, digests);
  int fd = connect_loopback();
  if (fd < 0) return 0;
  if (!pro.empty() && !send_prologue(fd, pro, level == 4 ? 1 : level >= 2 ? level - 1 : 0)) {
    close(fd);
    return 0;
  }
  std::vector<uint8_t> bytes(data + 1, data + size);
  static const bool verbose = getenv("FUZZ_VERBOSE") != nullptr;
  std::vector<uint8_t> got;  // FUZZ_VERBOSE: what the target sent
  static uint8_t sink[1 << 16];
  size_t off = 0;
  if (data[0] & 0x10) {
    // PDU by PDU: each complete PDU of the input, then up to 5 ms for an answer.
    while (off + 8 <= bytes.size()) {
      const uint32_t plen = uint32_t(bytes[off + 4]) | uint32_t(bytes[off + 5]) << 8 |
                            uint32_t(bytes[off + 6]) << 16 | uint32_t(bytes[off + 7]) << 24;
      if (plen < 8 || plen > bytes.size() - off) break;
      if (send(fd, bytes.data() + off, plen, MSG_NOSIGNAL) != ssize_t(plen)) break;
      off += plen;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 5) > 0) {
        ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r == 0) break;
        if (verbose && r > 0) got.insert(got.end(), sink, sink + r);
      }
    }
  }
  // Write everything while draining what the target sends (it may answer
  // as fast as we write), then half-close and read until it closes.
  bool wr_done = false;
  const uint64_t deadline_ms = 10000;
  uint64_t waited = 0;
  for (;;) {
    pollfd p{fd, short(POLLIN | (wr_done ? 0 : POLLOUT)), 0};
    int n = poll(&p, 1, 10);
    if (n == 0) {
      waited += 10;
      if (waited > deadline_ms) {
        fprintf(stderr, "target_tcp: the target did not close the connection within %llu ms of the host's FIN\n",
                (unsigned long long)deadline_ms);
        abort();
      }
      continue;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) break;  // closed or reset
      if (verbose && r > 0) got.insert(got.end(), sink, sink + r);
    }
    if (!wr_done && (p.revents & POLLOUT)) {
      ssize_t w = send(fd, bytes.data() + off, bytes.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w > 0) off += size_t(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) wr_done = true;
      if (off == bytes.size() && !wr_done) {
        shutdown(fd, SHUT_WR);
        wr_done = true;
      }
    }
  }
  close(fd);
  if (verbose) {
    // One line per PDU: type, and for responses the CID and status.
    for (size_t at = 0; at + 8 <= got.size();) {
      const uint32_t plen = uint32_t(got[at + 4]) | uint32_t(got[at + 5]) << 8 | uint32_t(got[at + 6]) << 16 |
                            uint32_t(got[at + 7]) << 24;
      if (plen < 8 || at + plen > got.size()) break;
      if (got[at] == 0x05 && plen >= 24) {
        fprintf(stderr, "target_tcp: CapsuleResp cid %u status 0x%x\n", unsigned(got[at + 20] | got[at + 21] << 8),
                unsigned((got[at + 22] | got[at + 23] << 8) >> 1 & 0x7ff));
      } else if (got[at] == 0x09 && plen >= 24) {
        fprintf(stderr, "target_tcp: R2T cid %u ttag %u\n", unsigned(got[at + 8] | got[at + 9] << 8),
                unsigned(got[at + 10] | got[at + 11] << 8));
      } else {
        fprintf(stderr, "target_tcp: PDU type 0x%02x, %u bytes\n", unsigned(got[at]), unsigned(plen));
      }
      at += plen;
    }
  }
  return 0;
}
