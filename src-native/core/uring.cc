#include "core/uring.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace nvmf {

namespace {

// The CQ is sized well above the SQ: many I/Os can be in flight while only a
// batch is prepared per loop iteration, and a roomy CQ keeps the kernel off
// its (slower, allocating) overflow list. Overflow is still handled in poll().
constexpr unsigned kCqPerSqe = 4;

int queue_init(unsigned entries, unsigned flags, io_uring* ring) {
  io_uring_params p{};
  p.flags = flags | IORING_SETUP_CQSIZE;
  p.cq_entries = entries * kCqPerSqe;
  return io_uring_queue_init_params(entries, ring, &p);
}

// Hands the prepared SQEs to the kernel; returns true when it took some.
// -EBUSY/-EAGAIN (CQ overflow backlog, no memory for requests) and -EINTR
// leave them queued for the next poll(). liburing has already published the
// SQ tail, so whatever the kernel has not consumed is what stays pending.
bool submit_pending(io_uring* ring, unsigned* pending) {
  if (*pending == 0) return false;
  int rc = io_uring_submit(ring);
  *pending = io_uring_sq_ready(ring);
  return rc > 0;
}

// Runs the callback of every visible CQE, then releases them in one store.
unsigned reap(io_uring* ring, unsigned* inflight) {
  unsigned head;
  unsigned n = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(ring, head, cqe) {
    auto* op = reinterpret_cast<UringOp*>(io_uring_cqe_get_data(cqe));
    --*inflight;
    n++;
    // The CQE stays valid during the callback (not advanced yet); callbacks
    // may prepare new SQEs (resubmit a short read, start the next I/O).
    op->cb(op, cqe->res, cqe);
  }
  if (n > 0) io_uring_cq_advance(ring, n);
  return n;
}

}  // namespace

Uring::~Uring() {
  // fini() is the orderly path. If it never ran (init failed half way, or the
  // owner skipped it) release what is ours without touching the reactor: in
  // PollGroup the reactor member is destroyed before this one, and its
  // thread has been joined by then, so the poller can never run again.
  // Closing the eventfd also drops it from any epoll set still alive.
  if (ready_) io_uring_queue_exit(&ring_);
  if (efd_ >= 0) close(efd_);
}

int Uring::init(Reactor& reactor, unsigned entries, bool big) {
  if (ready_) return big && !big_ ? -EINVAL : 0;
  const unsigned size_flags = big ? (IORING_SETUP_SQE128 | IORING_SETUP_CQE32) : 0;
  // Only this reactor ever submits, and it enters the kernel every loop
  // iteration (epoll_wait), so completions need no IPI to the running task:
  // SINGLE_ISSUER|COOP_TASKRUN cut the kernel's locking and interrupts.
  // Kernels before 6.0 reject them with -EINVAL; they are only an optimization.
  int rc = queue_init(entries, size_flags | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
                      &ring_);
  if (rc == -EINVAL) rc = queue_init(entries, size_flags, &ring_);
  if (rc < 0) return rc;

  // The eventfd wakes an interrupt-mode reactor on completions; the poller
  // reaps every iteration in the busy modes.
  efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  rc = efd_ < 0 ? -errno : io_uring_register_eventfd(&ring_, efd_);
  if (rc == 0) rc = reactor.add_fd(efd_, EPOLLIN, this);
  if (rc < 0) {
    if (efd_ >= 0) close(efd_);
    efd_ = -1;
    io_uring_queue_exit(&ring_);
    ring_ = io_uring{};
    return rc;
  }
  // A busy-polling reactor reaps every iteration anyway; an eventfd write per
  // completion would only cost kernel time and a read per loop.
  if (reactor.mode() == PollMode::Poll) io_uring_cq_eventfd_toggle(&ring_, false);
  poller_ = reactor.add_poller([this] { return poll(); });
  reactor_ = &reactor;
  big_ = big;
  ready_ = true;
  pending_ = 0;
  inflight_ = 0;
  return 0;
}

void Uring::fini() {
  if (!ready_) return;
  reactor_->remove_poller(poller_);
  reactor_->del_fd(efd_);
  close(efd_);
  efd_ = -1;
  io_uring_queue_exit(&ring_);
  ring_ = io_uring{};
  reactor_ = nullptr;
  ready_ = false;
}

io_uring_sqe* Uring::get_sqe(UringOp* op) {
  if (!ready_) return nullptr;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // SQ full: hand the prepared batch to the kernel now and retry once.
    submit_pending(&ring_, &pending_);
    sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return nullptr;
  }
  // Stale fields from an earlier use of this slot would change the meaning
  // of the next command (the big half carries NVMe passthrough data).
  std::memset(static_cast<void*>(sqe), 0, big_ ? 2 * sizeof(io_uring_sqe) : sizeof(io_uring_sqe));
  io_uring_sqe_set_data(sqe, op);
  // Prepared from a timer or a poller that runs after ours, the SQE would wait
  // for a wake-up that never comes in interrupt mode; keep the loop spinning.
  if (pending_++ == 0) reactor_->wake_soon();
  inflight_++;
  return sqe;
}

int Uring::poll() {
  if (!ready_) return 0;
  // SQEs the kernel refused for now (-EBUSY) count as work: the loop must
  // not go to sleep on them, nothing else would wake it to retry.
  int work = submit_pending(&ring_, &pending_) || pending_ > 0 ? 1 : 0;
  unsigned n = reap(&ring_, &inflight_);
  // The kernel parks CQEs that did not fit on an overflow list; it moves
  // them to the ring only when asked (an enter with GETEVENTS).
  while (io_uring_cq_has_overflow(&ring_)) {
    io_uring_get_events(&ring_);
    unsigned more = reap(&ring_, &inflight_);
    if (more == 0) break;
    n += more;
  }
  return work + int(n);
}

void Uring::on_fd_event(uint32_t /*events*/) {
  uint64_t v;
  // Nonblocking: the count is only a wake-up; the CQ is the truth.
  ssize_t r = read(efd_, &v, sizeof v);
  (void)r;
  poll();
}

}  // namespace nvmf
