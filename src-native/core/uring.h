// The io_uring of one poll group. Backends prepare SQEs with get_sqe(); the
// reactor submits them once per loop iteration (batched) and reaps CQEs in a
// poller; the ring's eventfd sits in the reactor's epoll set so interrupt
// mode wakes on completions. SQE user_data is always a UringOp*.
#pragma once

#include <liburing.h>

#include <cstdint>

#include "core/reactor.h"

namespace nvmf {

struct UringOp {
  // res is the CQE result (>= 0 or -errno); cqe is valid during the call
  // (big CQEs carry the NVMe passthrough result).
  void (*cb)(UringOp* op, int32_t res, const io_uring_cqe* cqe) = nullptr;
};

class Uring : public FdHandler {
 public:
  Uring() = default;
  ~Uring() override;
  // Reactor thread. `big` = SQE128/CQE32 (NVMe passthrough). Returns -errno.
  int init(Reactor& reactor, unsigned entries, bool big);
  // Reactor thread; all ops must have completed (inflight() == 0).
  void fini();

  bool ready() const { return ready_; }
  bool big() const { return big_; }
  // An SQE to fill (zeroed); flushes the SQ first when it is full. nullptr
  // when the ring is still full (the caller fails the I/O with -EAGAIN).
  io_uring_sqe* get_sqe(UringOp* op);
  unsigned inflight() const { return inflight_; }

  // The poller: submit pending SQEs, reap CQEs. Returns work done.
  int poll();
  void on_fd_event(uint32_t events) override;

 private:
  io_uring ring_{};
  Reactor* reactor_ = nullptr;
  int efd_ = -1;
  uint64_t poller_ = 0;
  unsigned pending_ = 0;   // prepared, not yet submitted
  unsigned inflight_ = 0;  // submitted or pending, not yet completed
  bool ready_ = false;
  bool big_ = false;
};

}  // namespace nvmf
