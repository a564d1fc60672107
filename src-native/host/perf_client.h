// The load generators' view of a target: connect, submit reads/writes by
// byte offset, poll for completions. One implementation speaks NVMe/TCP
// through HostController; the other speaks the bare echo protocol
// (echo_wire.h) that measures the loopback ceiling. The perf tool
// (perf_run.cc) and the fio engine (fio_api.cc) sit on this interface, so
// both transports are driven by exactly the same client code.
//
// Single threaded and synchronous: every method runs on the caller's
// thread, completions are delivered from inside poll()/wait(). Submitting
// allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace nvmf::host {

enum class PerfOp : uint8_t { Read, Write, Flush };

class PerfClient;

struct PerfIo {
  PerfOp op = PerfOp::Read;
  uint16_t conn = 0;     // which connection (0-based) carries it
  uint64_t offset = 0;   // bytes; a multiple of the block size
  uint32_t len = 0;      // bytes; a multiple of the block size
  uint8_t* buf = nullptr;
  void* user = nullptr;  // the caller's
  uint64_t start_ns = 0; // the caller's (latency bookkeeping)
  // Set before the completion callback: 0, or -errno; nvme_status is the
  // NVMe (SCT << 8) | SC when the controller failed the command (err = -EIO).
  int err = 0;
  int nvme_status = 0;
  PerfClient* client = nullptr;  // internal
};

using PerfDoneFn = void (*)(void* owner, PerfIo* io);

struct PerfTargetOptions {
  std::string transport = "tcp";  // "tcp" (NVMe/TCP), "rdma" (NVMe/RDMA) or "echo" (loopback ceiling)
  std::string address = "127.0.0.1";
  uint16_t port = 4420;
  std::string subnqn;
  std::string hostnqn;            // empty: nqn.2014-08.org.nvmexpress:uuid:<random>
  uint32_t nsid = 1;
  uint16_t connections = 1;       // NVMe: I/O queues of one controller
  uint16_t queue_depth = 32;      // per connection
  bool hdgst = false;
  bool ddgst = false;
  uint32_t max_incapsule = 8192;  // largest write sent in the capsule (bounded by IOCCSZ)
  // DH-HMAC-CHAP secrets (DHHC-1:...): the host authenticates when the
  // controller asks; with the controller secret too, it also authenticates
  // the controller.
  std::string dhchap_secret;
  std::string dhchap_ctrl_secret;
  uint32_t connect_timeout_ms = 10000;
  uint64_t echo_size = 1ull << 30;  // the size the echo "namespace" reports
};

class PerfClient {
 public:
  // Connects synchronously (bounded by connect_timeout_ms). nullptr on
  // failure, with the reason in *err and, when `code` is given, the NvmfError
  // code for it (ERR_CONNECTION, ERR_AUTH_FAILED, ERR_INVALID_KEY, ...).
  static std::unique_ptr<PerfClient> connect(const PerfTargetOptions& o, PerfDoneFn done,
                                             void* owner, std::string* err,
                                             const char** code = nullptr);
  virtual ~PerfClient() = default;

  // 0, -EAGAIN (that connection is full), -ENOTCONN (failed), -EINVAL.
  // On 0 the completion callback runs exactly once, from poll()/wait()/close().
  virtual int submit(PerfIo* io) = 0;
  // Busy polling: one non-blocking pass over every connection. Returns an
  // amount of work done (0 = nothing happened).
  virtual int poll() = 0;
  // Blocks up to timeout_ms for socket events, then handles them.
  virtual int wait(int timeout_ms) = 0;
  // Graceful disconnect; outstanding I/O completes with an error.
  virtual void close() = 0;
  // Batching for callers that submit outside poll() (the fio engine): while
  // corked, submit() only queues, as it does inside poll(); uncorking sends
  // everything queued with one sendmsg() per connection, instead of one
  // sendmsg() (and one trip through the TCP stack) per command. Callers that
  // resubmit from completions already batch: poll() sends everything the
  // callbacks queued at once.
  void cork(bool on);
  bool corked() const { return corked_; }

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  uint64_t size_bytes() const { return size_bytes_; }
  uint32_t block_size() const { return block_size_; }
  uint32_t max_transfer() const { return max_transfer_; }  // 0 = no limit
  uint16_t connections() const { return connections_; }
  uint16_t queue_depth() const { return queue_depth_; }  // per connection, granted

 protected:
  PerfClient(PerfDoneFn done, void* owner) : done_(done), owner_(owner) {}
  void deliver(PerfIo* io) { done_(owner_, io); }
  // cork(): hold back (true) or send what was held (false).
  virtual void hold_sends(bool on) = 0;

  PerfDoneFn done_;
  void* owner_;
  std::string error_;
  uint64_t size_bytes_ = 0;
  uint32_t block_size_ = 512;
  uint32_t max_transfer_ = 0;
  uint16_t connections_ = 0;
  uint16_t queue_depth_ = 0;
  bool corked_ = false;
};

// Resolves "address" + port into a sockaddr (numeric or a host name).
// -errno / EAI as a message in *err on failure.
bool resolve_address(const std::string& address, uint16_t port, void* ss, unsigned* len,
                     std::string* err);

}  // namespace nvmf::host
