// HostController: queues on the loop, command submission, keep-alive,
// command timeouts, failure and close. The connect sequence is in
// controller_connect.cc, log pages in log_page.cc.
#include "host/controller.h"

#include <sys/epoll.h>

#include <cerrno>
#include <cstring>

#include "host/auth_ctx.h"  // complete type for auth_'s destructor

namespace nvmf::host {

struct HostController::QueueCtx : public FdHandler {
  QueueCtx(HostController* c, const HostQueueConfig& cfg)
      : ctrl(c), owned(make_host_queue(cfg, c)), q(*owned) {}
  void on_fd_event(uint32_t events) override { ctrl->on_queue_event(*this, events); }

  HostController* ctrl;
  std::unique_ptr<HostQueue> owned;  // TCP or RDMA (host/queue.h)
  HostQueue& q;
  bool watched = false;
  uint32_t events = 0;
  // Commands waiting for a free CID (exec() only), in order.
  std::deque<HostCmd> waitlist;
};

// Carries a std::function through the queue's function-pointer callback.
struct HostController::Thunk {
  CmdFn fn;
};

void HostController::thunk_done(void* ctx, const HostCompletion& c) {
  std::unique_ptr<Thunk> t(static_cast<Thunk*>(ctx));
  t->fn(c);
}

const char* controller_state_name(HostController::State s) {
  switch (s) {
    case HostController::State::Idle: return "idle";
    case HostController::State::Connecting: return "connecting";
    case HostController::State::Live: return "live";
    case HostController::State::Closing: return "closing";
    case HostController::State::Closed: return "closed";
    case HostController::State::Failed: return "failed";
  }
  return "?";
}

HostController::HostController(HostLoop& loop, HostControllerOptions opts)
    : loop_(loop), opts_(std::move(opts)) {}

HostController::~HostController() {
  if (state_ != State::Closed && state_ != State::Failed) state_ = State::Closed;
  teardown(ECONNABORTED, opts_.target + ": host controller destroyed");
  // Whoever waits for a close must hear about it.
  auto waiters = std::move(close_waiters_);
  for (auto& w : waiters) w();
}

std::string HostController::queue_label(uint16_t qid) const {
  return opts_.target + (qid == 0 ? " (admin queue)" : " (I/O queue " + std::to_string(qid) + ")");
}

HostQueue* HostController::queue(uint16_t qid) {
  return qid < queues_.size() && queues_[qid] ? &queues_[qid]->q : nullptr;
}

// ---------------------------------------------------------------------------
// Queues on the loop.

HostController::QueueCtx* HostController::add_queue(uint16_t qid, uint16_t depth,
                                                    uint32_t incapsule) {
  HostQueueConfig cfg;
  cfg.label = queue_label(qid);
  cfg.qid = qid;
  cfg.depth = depth;
  cfg.hdgst = opts_.hdgst;
  cfg.ddgst = opts_.ddgst;
  cfg.max_incapsule = incapsule;
  cfg.transport = opts_.transport;
  cfg.sgl_descriptors = opts_.sgl_descriptors;
  if (queues_.size() <= qid) queues_.resize(size_t(qid) + 1);
  queues_[qid] = std::make_unique<QueueCtx>(this, cfg);
  return queues_[qid].get();
}

// TCP connect and epoll registration. Returns -errno (nothing registered).
int HostController::start_queue(QueueCtx& c) {
  int rc = c.q.connect(reinterpret_cast<const sockaddr*>(&opts_.addr), opts_.addrlen);
  if (rc < 0) return rc;
  if (c.q.failed()) return -c.q.fail_errno();
  c.events = EPOLLIN | EPOLLRDHUP | (c.q.want_write() ? EPOLLOUT : 0u);
  rc = loop_.watch(c.q.fd(), c.events, &c);
  if (rc < 0) return rc;
  c.watched = true;
  return 0;
}

void HostController::on_queue_event(QueueCtx& c, uint32_t events) {
  c.q.poll(events);
  drain(c);
}

void HostController::on_queue_interest(HostQueue& q) {
  QueueCtx* c = queues_[q.qid()].get();
  if (!c->watched) return;
  uint32_t ev = EPOLLIN | EPOLLRDHUP | (q.want_write() ? EPOLLOUT : 0u);
  if (ev == c->events) return;
  c->events = ev;
  loop_.rewatch(q.fd(), ev, c);
}

void HostController::on_queue_failed(HostQueue& q) {
  QueueCtx* c = queues_[q.qid()].get();
  // Before the queue closes its fd: epoll must not keep a pointer to us.
  if (c->watched) {
    loop_.unwatch(q.fd());
    c->watched = false;
  }
  if (state_ == State::Connecting || state_ == State::Live || state_ == State::Closing) {
    // A target that rejects an authentication sends AUTH_Failure1 on that
    // queue and then closes it, which may close the others (the admin queue
    // takes the controller with it). The verdict may be waiting, unread,
    // on another socket: read what already arrived before calling this a
    // connection failure.
    bool authenticating = false;
    for (auto& a : auth_) authenticating |= a && a->active;
    if (authenticating) {
      for (auto& o : queues_) {
        if (o && o.get() != c && !o->q.failed()) o->q.poll(0);
        if (state_ != State::Connecting && state_ != State::Live && state_ != State::Closing) return;
      }
    }
    HostError e = q.fail_errno() == ETIMEDOUT
                      ? HostError::timeout(q.fail_reason())
                      : HostError::connection(q.fail_reason(), q.fail_errno());
    fail_controller(std::move(e));
  }
}

void HostController::drain(QueueCtx& c) {
  while (!c.waitlist.empty() && !c.q.full()) {
    HostCmd cmd = c.waitlist.front();
    c.waitlist.pop_front();
    int rc = c.q.submit(cmd);
    if (rc == -EAGAIN) {
      c.waitlist.push_front(cmd);
      return;
    }
    if (rc < 0) {
      HostCompletion hc;
      hc.err = rc;
      hc.reason = c.q.failed() ? c.q.fail_reason().c_str() : "queue is not connected";
      cmd.fn(cmd.ctx, hc);
    }
  }
}

// ---------------------------------------------------------------------------
// Submission.

int HostController::submit(uint16_t qid, const HostCmd& cmd) {
  if (state_ != State::Live) return -ENOTCONN;
  if (qid >= queues_.size() || !queues_[qid]) return -EINVAL;
  return queues_[qid]->q.submit(cmd);
}

void HostController::exec(uint16_t qid, const HostCmd& cmd, CmdFn fn) {
  HostCompletion hc;
  if (state_ != State::Live) {
    hc.err = -ENOTCONN;
    hc.reason = state_ == State::Failed ? failure_.message.c_str() : "controller is not connected";
    fn(hc);
    return;
  }
  if (qid >= queues_.size() || !queues_[qid] || (qid > 0 && qid > nio_)) {
    hc.err = -EINVAL;
    hc.reason = "no such queue";
    fn(hc);
    return;
  }
  if (!cmd.keep_dptr && max_xfer_ != 0 && cmd.len > max_xfer_) {
    hc.err = -EMSGSIZE;
    hc.reason = "transfer exceeds the controller's maximum data transfer size (MDTS)";
    fn(hc);
    return;
  }
  exec_internal(qid, cmd, std::move(fn));
}

void HostController::exec_internal(uint16_t qid, const HostCmd& cmd, CmdFn fn) {
  QueueCtx& c = *queues_[qid];
  HostCmd k = cmd;
  k.fn = &thunk_done;
  k.ctx = new Thunk{std::move(fn)};
  // Keep order: behind anything already waiting.
  int rc = c.waitlist.empty() ? c.q.submit(k) : -EAGAIN;
  if (rc == -EAGAIN) {
    c.waitlist.push_back(k);
    return;
  }
  if (rc < 0) {
    HostCompletion hc;
    hc.err = rc;
    hc.reason = c.q.failed() ? c.q.fail_reason().c_str()
                             : rc == -EINVAL ? "invalid command" : "queue is not connected";
    thunk_done(k.ctx, hc);
  }
}

HostError HostController::error_of(uint16_t qid, const SqEntry& sqe, const HostCompletion& c) {
  if (c.err == -ETIMEDOUT) return HostError::timeout(c.reason ? c.reason : "command timed out");
  if (c.err == -EINVAL || c.err == -EMSGSIZE) {
    return HostError::invalid(command_name(qid == 0, sqe) + ": " + (c.reason ? c.reason : "invalid"));
  }
  if (c.err != 0) {
    return HostError::connection(c.reason ? c.reason : strerror(-c.err), -c.err);
  }
  int st = status_of(c.cqe);
  if (st != 0) return HostError::nvme(status_message(qid == 0, sqe, st), st);
  return HostError{};
}

// ---------------------------------------------------------------------------
// Keep alive and command timeouts.

void HostController::arm_keep_alive() {
  if (opts_.kato_ms == 0 || state_ != State::Live) return;
  // Half the timeout, as the Linux host does, so one late reply is harmless.
  uint64_t period = uint64_t(opts_.kato_ms) * 1000000ull / 2;
  if (period < 50000000ull) period = 50000000ull;
  ka_timer_ = loop_.add_timer(period, [this] {
    ka_timer_ = 0;
    send_keep_alive();
  });
}

void HostController::send_keep_alive() {
  if (state_ != State::Live) return;
  if (!ka_outstanding_) {
    ka_outstanding_ = true;
    HostCmd c;
    c.sqe = make_keep_alive();
    exec_internal(0, c, [this, sqe = c.sqe](const HostCompletion& hc) {
      ka_outstanding_ = false;
      if (state_ != State::Live || hc.err != 0) return;  // a queue failure reports itself
      HostError e = error_of(0, sqe, hc);
      if (!e.ok()) fail_controller(std::move(e));
    });
  }
  arm_keep_alive();
}

void HostController::arm_tick() {
  if (opts_.command_timeout_ms == 0 || state_ != State::Live) return;
  uint64_t period = uint64_t(opts_.command_timeout_ms) * 1000000ull / 4;
  if (period > 1000000000ull) period = 1000000000ull;
  if (period < 10000000ull) period = 10000000ull;
  tick_timer_ = loop_.add_timer(period, [this] {
    tick_timer_ = 0;
    on_tick();
  });
}

void HostController::on_tick() {
  if (state_ != State::Live) return;
  uint64_t now = mono_ns();
  uint64_t limit = uint64_t(opts_.command_timeout_ms) * 1000000ull;
  for (auto& c : queues_) {
    if (!c) continue;
    uint64_t oldest = c->q.oldest_submit_ns();
    if (oldest != 0 && now - oldest > limit) {
      // The target may still send data for the late command, so the buffer
      // cannot be handed back while the connection lives: fail the queue
      // (and with it the controller).
      c->q.fail(ETIMEDOUT, queue_label(c->q.qid()) + ": a command timed out after " +
                               std::to_string(opts_.command_timeout_ms) + " ms");
      return;
    }
  }
  arm_tick();
}

void HostController::cancel_timers() {
  for (uint64_t* t : {&connect_timer_, &ready_timer_, &ka_timer_, &tick_timer_, &close_timer_}) {
    if (*t != 0) loop_.cancel_timer(*t);
    *t = 0;
  }
}

// ---------------------------------------------------------------------------
// Failure and close.

void HostController::fail_controller(HostError e) {
  if (state_ == State::Failed || state_ == State::Closed || state_ == State::Idle) return;
  const State was = state_;
  state_ = State::Failed;
  failure_ = e;
  teardown(ECONNABORTED, e.message);
  if (was == State::Connecting) {
    DoneFn d = std::move(connect_done_);
    connect_done_ = nullptr;
    if (d) d(e);
  } else if (was == State::Closing) {
    finish_close();
  } else if (on_failed_) {
    DoneFn f = std::move(on_failed_);
    on_failed_ = nullptr;
    f(e);
  }
}

void HostController::teardown(int err, const std::string& why) {
  cancel_timers();
  for (auto& c : queues_) {
    if (c) c->q.fail(err, why);  // no-op for a queue that failed already
  }
  for (auto& c : queues_) {
    if (!c) continue;
    while (!c->waitlist.empty()) {
      HostCmd cmd = c->waitlist.front();
      c->waitlist.pop_front();
      HostCompletion hc;
      hc.err = -err;
      hc.reason = why.c_str();
      cmd.fn(cmd.ctx, hc);
    }
  }
}

void HostController::close(bool graceful, std::function<void()> done) {
  if (state_ == State::Closing) {
    close_waiters_.push_back(std::move(done));
    return;
  }
  if (state_ != State::Live || !graceful) {
    if (state_ == State::Connecting) {
      // An abandoned connect still reports once.
      fail_controller(HostError::connection(opts_.target + ": connection closed by the host", ECONNABORTED));
    }
    if (state_ != State::Failed) state_ = State::Closed;
    teardown(ECONNABORTED, opts_.target + ": connection closed by the host");
    done();
    return;
  }
  state_ = State::Closing;
  close_waiters_.push_back(std::move(done));
  cancel_timers();
  // Normal shutdown notification: the target can drop the controller at
  // once instead of waiting for the keep alive timeout. Bounded wait.
  HostCmd c;
  c.sqe = make_property_set(PropOffset::Cc, (cc_ & ~(0x3u << 14)) | (uint32_t(cc::kShnNormal) << 14), false);
  exec_internal(0, c, [this](const HostCompletion&) { finish_close(); });
  close_timer_ = loop_.add_timer(2000000000ull, [this] {
    close_timer_ = 0;
    finish_close();
  });
}

void HostController::finish_close() {
  if (state_ != State::Closing && state_ != State::Failed) return;
  if (state_ == State::Closing) state_ = State::Closed;
  teardown(ECONNABORTED, opts_.target + ": connection closed by the host");
  auto waiters = std::move(close_waiters_);
  close_waiters_.clear();
  for (auto& w : waiters) w();
}

}  // namespace nvmf::host
