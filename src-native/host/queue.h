// One NVMe queue of a host controller, whatever carries it: the interface
// HostController drives (host/tcp_queue.h: NVMe/TCP, host/rdma_queue.h:
// NVMe/RDMA), and the command/completion types they share.
//
// Single-threaded: every method runs on the owner's thread. The owner
// watches fd() in its event loop and calls poll() when it is ready (or in
// a busy loop), and learns about state changes through HostQueueListener.
//
// Buffer contract: a command's data buffer is used until its completion
// callback runs (or the queue fails); not one byte is touched afterwards,
// even if the target later sends data or responses naming that command.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>

#include "host/commands.h"  // XferDir
#include "nvme/spec.h"

namespace nvmf::host {

struct HostCompletion {
  // 0: `cqe` is what the controller returned (its status may be an error).
  // Otherwise -errno and no CQE: the queue failed (-ETIMEDOUT for a command
  // timeout) and `reason` says why.
  int err = 0;
  CqEntry cqe{};
  uint32_t bytes = 0;            // data bytes transferred (either direction)
  const char* reason = nullptr;  // valid during the callback only
};

// A plain function pointer + context, so submitting a command allocates
// nothing (the perf tool and fio engine sit on this path).
using CompletionFn = void (*)(void* ctx, const HostCompletion& c);

struct HostCmd {
  SqEntry sqe{};  // CID is always replaced; PSDT/SGL1 too unless keep_dptr
  uint8_t* data = nullptr;
  uint32_t len = 0;
  XferDir dir = XferDir::None;
  bool keep_dptr = false;        // raw commands: send flags/SGL1 as given
  bool force_incapsule = false;  // Fabrics Connect: data always in the capsule (TCP)
  CompletionFn fn = nullptr;
  void* ctx = nullptr;
};

enum class HostTransport : uint8_t { Tcp, Rdma };

struct HostQueueConfig {
  std::string label;            // "127.0.0.1:4420 queue 1", for messages
  uint16_t qid = 0;
  uint16_t depth = 32;          // commands outstanding at once (CIDs)
  bool hdgst = false;           // ask for header digests (TCP)
  bool ddgst = false;           // ask for data digests (TCP)
  uint32_t max_incapsule = 0;   // write data up to this size goes in the capsule
  HostTransport transport = HostTransport::Tcp;
  // RDMA: split each keyed data transfer over up to this many SGL
  // descriptors (a Last Segment list in the capsule). 1 = one keyed SGL, as
  // every host sends; more is for exercising targets.
  uint8_t sgl_descriptors = 1;
};

class HostQueue;

class HostQueueListener {
 public:
  virtual ~HostQueueListener() = default;
  // The transport connection is up (TCP: ICResp accepted; RDMA: the
  // connection is established): commands may be submitted.
  virtual void on_queue_ready(HostQueue& q) = 0;
  // The queue failed. Called once, before its fd is closed (so the owner
  // can take it out of its epoll set) and before the outstanding commands
  // are completed with errors. Never destroy the queue from here.
  virtual void on_queue_failed(HostQueue& q) = 0;
  // want_write() changed.
  virtual void on_queue_interest(HostQueue& q) = 0;
};

class HostQueue {
 public:
  enum class State : uint8_t {
    Idle,        // not connected yet
    Connecting,  // transport connect in progress (TCP connect; RDMA address/route/connect)
    IcWait,      // TCP: ICReq sent, waiting for ICResp
    Ready,       // commands flow
    Failed,      // connection closed, every command completed
  };

  virtual ~HostQueue() = default;

  // Starts a non-blocking connect. -errno on immediate failure (the queue
  // stays Idle, no callbacks).
  virtual int connect(const sockaddr* addr, socklen_t len) = 0;
  // Makes progress. `events` are epoll bits for fd() (0 = try everything,
  // for busy polling). Returns an amount of work done (0 = idle).
  virtual int poll(uint32_t events) = 0;
  // Queues a command. 0, or -EAGAIN (no free CID), -ENOTCONN (not Ready),
  // -EINVAL (bad length/direction). On 0 the callback runs exactly once,
  // never from inside submit() itself.
  virtual int submit(const HostCmd& c) = 0;
  // Batching for callers that submit outside poll(): while held, submit()
  // only queues, as it does inside poll(); releasing sends what was queued
  // (TCP: one sendmsg() for the lot). Nests. Default: nothing to hold.
  virtual void hold_sends(bool on) { (void)on; }
  // Fails the queue: closes the connection and completes every outstanding
  // command with -err. Idempotent.
  virtual void fail(int err, std::string why) = 0;

  virtual State state() const = 0;
  bool ready() const { return state() == State::Ready; }
  bool failed() const { return state() == State::Failed; }
  // The fd the owner watches (EPOLLIN, plus EPOLLOUT while want_write()).
  virtual int fd() const = 0;
  virtual bool want_write() const = 0;
  virtual uint16_t qid() const = 0;
  virtual uint16_t depth() const = 0;
  virtual size_t outstanding() const = 0;
  virtual bool full() const = 0;
  virtual int fail_errno() const = 0;
  virtual const std::string& fail_reason() const = 0;
  // Submit time (CLOCK_MONOTONIC ns) of the oldest outstanding command,
  // 0 when none: the owner enforces command timeouts with it.
  virtual uint64_t oldest_submit_ns() const = 0;
  // Changes the in-capsule limit (after Identify told the owner IOCCSZ).
  virtual void set_max_incapsule(uint32_t n) = 0;
};

const char* queue_state_name(HostQueue::State s);

// The queue for cfg.transport.
std::unique_ptr<HostQueue> make_host_queue(const HostQueueConfig& cfg, HostQueueListener* listener);

}  // namespace nvmf::host
