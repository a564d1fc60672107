// libFuzzer harness: the host library's receive path (host/tcp_queue_rx.cc,
// TcpQueue::feed), i.e. everything a hostile target can send a host. The
// queue runs over a socketpair whose far end nobody reads: the ICReq and any
// H2CData it sends go nowhere.
//
// Input: byte 0 picks the negotiation (digests asked for) and the chunk size
// the rest is fed in (PDUs split at every boundary); the rest is the
// target's byte stream. Once the queue is ready, three commands are
// outstanding: a 4 KiB read, an 8 KiB write (data by R2T), a command without
// data (CIDs 8, 9, 10: tag | generation << 3, see host/cid_pool.h).
//
// Checked: every command completes exactly once; a completed command's
// buffer is never touched again (it is poisoned for AddressSanitizer the
// moment its completion runs); the queue never reports more bytes than the
// command's length.
#include <fcntl.h>
#include <sanitizer/asan_interface.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "host/tcp_queue.h"

using namespace nvmf;
using namespace nvmf::host;

#define CHECK(c)                                                      \
  do {                                                                \
    if (!(c)) {                                                       \
      __builtin_printf("invariant failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                        \
    }                                                                 \
  } while (0)

namespace {

struct Listener final : HostQueueListener {
  void on_queue_ready(HostQueue&) override {}
  void on_queue_failed(HostQueue&) override {}
  void on_queue_interest(HostQueue&) override {}
};

struct Cmd {
  alignas(64) uint8_t buf[8192];
  uint32_t len = 0;
  bool submitted = false;
  int completions = 0;
};

void done(void* ctx, const HostCompletion& c) {
  auto* cmd = static_cast<Cmd*>(ctx);
  cmd->completions++;
  CHECK(c.bytes <= cmd->len);
  // From now on the queue must leave the buffer alone.
  ASAN_POISON_MEMORY_REGION(cmd->buf, sizeof cmd->buf);
}

}  // namespace

// host/queue.cc defines this next to make_host_queue(), which pulls in the
// RDMA queue; the harness needs only the name for messages.
const char* nvmf::host::queue_state_name(HostQueue::State s) {
  switch (s) {
    case HostQueue::State::Idle: return "idle";
    case HostQueue::State::Connecting: return "connecting";
    case HostQueue::State::IcWait: return "icwait";
    case HostQueue::State::Ready: return "ready";
    case HostQueue::State::Failed: return "failed";
  }
  return "?";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t knobs = data[0];
  const size_t chunk = size_t(knobs >> 2) * 4 + 1;  // 1 .. 253 bytes per feed
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return 0;
  Listener l;
  HostQueueConfig cfg;
  cfg.label = "fuzz";
  cfg.qid = 1;
  cfg.depth = 8;
  cfg.hdgst = knobs & 1;
  cfg.ddgst = knobs & 2;
  cfg.max_incapsule = 0;
  Cmd cmds[3];
  {
    TcpQueue q(cfg, &l);
    if (q.adopt(sv[0]) < 0) {
      close(sv[0]);
      close(sv[1]);
      return 0;
    }
    const uint8_t* p = data + 1;
    size_t n = size - 1;
    // Byte by byte until the ICResp is taken (or refused).
    while (n > 0 && q.state() == HostQueue::State::IcWait) {
      q.feed(p, 1);
      p++;
      n--;
    }
    if (q.ready()) {
      const XferDir dirs[3] = {XferDir::C2H, XferDir::H2C, XferDir::None};
      const uint32_t lens[3] = {4096, 8192, 0};
      for (int i = 0; i < 3; i++) {
        HostCmd c;
        c.sqe.opc = i == 0 ? 0x02 : i == 1 ? 0x01 : 0x00;
        c.sqe.nsid = 1;
        c.data = lens[i] ? cmds[i].buf : nullptr;
        c.len = lens[i];
        cmds[i].len = lens[i];
        c.dir = dirs[i];
        c.fn = done;
        c.ctx = &cmds[i];
        cmds[i].submitted = q.submit(c) == 0;
      }
      q.poll(0);  // stage the capsules (into a socket nobody reads)
      while (n > 0 && !q.failed()) {
        const size_t k = n < chunk ? n : chunk;
        q.feed(p, k);
        p += k;
        n -= k;
        q.poll(0);
      }
    }
    static const bool verbose = getenv("FUZZ_VERBOSE") != nullptr;
    if (verbose) {
      fprintf(stderr, "host_response: state %s, completions before the end %d/%d/%d, reason: %s\n",
              queue_state_name(q.state()), cmds[0].completions, cmds[1].completions, cmds[2].completions,
              q.fail_reason().c_str());
    }
    q.fail(ECONNRESET, "fuzz input ended");
    for (const Cmd& c : cmds) CHECK(c.completions == (c.submitted ? 1 : 0));
  }
  for (Cmd& c : cmds) ASAN_UNPOISON_MEMORY_REGION(c.buf, sizeof c.buf);
  close(sv[1]);
  return 0;
}
