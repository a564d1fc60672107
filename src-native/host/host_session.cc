#include "host/host_session.h"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>

namespace nvmf::host {

namespace {

HostError closed_error() {
  return HostError::connection("host connection is closed", ENOTCONN);
}

std::string json_escape(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", u);
      out += b;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

// HostLoop on the session's reactor: fds in its epoll set, its timers.
class HostSession::ReactorLoop : public HostLoop {
 public:
  explicit ReactorLoop(Reactor& r) : r_(r) {}
  int watch(int fd, uint32_t events, FdHandler* h) override { return r_.add_fd(fd, events, h); }
  int rewatch(int fd, uint32_t events, FdHandler* h) override { return r_.mod_fd(fd, events, h); }
  void unwatch(int fd) override { r_.del_fd(fd); }
  uint64_t add_timer(uint64_t delay_ns, std::function<void()> fn) override {
    return r_.add_timer(delay_ns, std::move(fn));
  }
  void cancel_timer(uint64_t id) override { r_.cancel_timer(id); }

 private:
  Reactor& r_;
};

HostSession::HostSession(EventFn events)
    : events_(std::move(events)), reactor_(0, PollMode::Interrupt, 0) {
  loop_ = std::make_unique<ReactorLoop>(reactor_);
}

int HostSession::create(EventFn events, std::shared_ptr<HostSession>* out) {
  std::shared_ptr<HostSession> s(new HostSession(std::move(events)));
  int rc = s->reactor_.start();
  if (rc < 0) {
    s->reactor_.stop_and_join();
    s->closed_ = true;
    return rc;
  }
  *out = std::move(s);
  return 0;
}

HostSession::~HostSession() { close_and_join(false); }

// Reactor messages capture `this`, never a shared_ptr: the session outlives
// its reactor thread (close_and_join() joins it before destruction), and a
// last reference dropped on the reactor would make it join itself.

void HostSession::connect(HostControllerOptions opts, ConnectFn done) {
  auto fn = [this, opts = std::move(opts), done]() mutable {
    if (ctrl_) {
      done(HostError{"ERR_BUSY", "the host is already connected", 0, -1, {}}, ConnectInfo{});
      return;
    }
    ctrl_ = std::make_unique<HostController>(*loop_, std::move(opts));
    ctrl_->set_on_failed([this](const HostError& e) {
      if (events_) {
        events_("disconnected", std::string("{\"code\":") + json_escape(e.code ? e.code : "ERR_CONNECTION") +
                                    ",\"message\":" + json_escape(e.message) + "}");
      }
    });
    HostController* c = ctrl_.get();
    c->connect([c, done](const HostError& e) {
      ConnectInfo info;
      if (e.ok()) {
        info.cntlid = c->cntlid();
        info.io_queues = c->io_queue_count();
        info.queue_depth = c->io_queue_depth();
        info.max_transfer = c->max_transfer();
        info.incapsule = c->io_incapsule();
        info.discovery = c->discovery();
        info.kato_ms = c->options().kato_ms;
      }
      done(e, info);
    });
  };
  if (!post(std::move(fn))) done(closed_error(), ConnectInfo{});
}

void HostSession::exec(uint16_t qid, const HostCmd& cmd, ExecFn done) {
  auto fn = [this, qid, cmd, done]() {
    if (!ctrl_) {
      done(HostError::connection("the host is not connected", ENOTCONN), HostCompletion{});
      return;
    }
    ctrl_->exec(qid, cmd, [qid, sqe = cmd.sqe, done](const HostCompletion& hc) {
      done(HostController::error_of(qid, sqe, hc), hc);
    });
  };
  if (!post(std::move(fn))) done(closed_error(), HostCompletion{});
}

void HostSession::get_log_page(uint8_t lid, uint8_t lsp, uint64_t offset, uint32_t nsid,
                               uint8_t* buf, uint32_t len, DoneFn done) {
  auto fn = [this, lid, lsp, offset, nsid, buf, len, done]() {
    if (!ctrl_) {
      done(HostError::connection("the host is not connected", ENOTCONN));
      return;
    }
    if (!ctrl_->live()) {
      done(ctrl_->state() == HostController::State::Failed
               ? HostError::connection(ctrl_->failure().message, ENOTCONN)
               : HostError::connection("the host is not connected", ENOTCONN));
      return;
    }
    ctrl_->get_log_page(lid, lsp, offset, nsid, buf, len, done);
  };
  if (!post(std::move(fn))) done(closed_error());
}

void HostSession::reauthenticate(std::shared_ptr<const auth::DhchapKey> key,
                                 std::shared_ptr<const auth::DhchapKey> ctrl_key,
                                 bool replace_keys, DoneFn done) {
  auto fn = [this, key = std::move(key), ctrl_key = std::move(ctrl_key), replace_keys, done]() mutable {
    if (!ctrl_) {
      done(HostError::connection("the host is not connected", ENOTCONN));
      return;
    }
    ctrl_->reauthenticate(std::move(key), std::move(ctrl_key), replace_keys, done);
  };
  if (!post(std::move(fn))) done(closed_error());
}

void HostSession::discovery_log(LogFn done) {
  auto fn = [this, done]() {
    if (!ctrl_ || !ctrl_->live()) {
      done(ctrl_ && ctrl_->state() == HostController::State::Failed
               ? HostError::connection(ctrl_->failure().message, ENOTCONN)
               : HostError::connection("the host is not connected", ENOTCONN),
           {});
      return;
    }
    ctrl_->read_discovery_log(done);
  };
  if (!post(std::move(fn))) done(closed_error(), {});
}

void HostSession::close_and_join(bool graceful) {
  std::lock_guard<std::mutex> g(close_mu_);
  if (closed_) return;
  closed_ = true;
  if (graceful) {
    // Shared state: if the wait gives up, the late callback must not touch
    // this stack frame.
    struct Wait {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
    };
    auto w = std::make_shared<Wait>();
    auto signal = [w] {
      std::lock_guard<std::mutex> lk(w->mu);
      w->done = true;
      w->cv.notify_all();
    };
    bool posted = post([this, signal] {
      if (!ctrl_) {
        signal();
        return;
      }
      ctrl_->close(true, signal);
    });
    if (posted) {
      std::unique_lock<std::mutex> lk(w->mu);
      w->cv.wait_for(lk, std::chrono::seconds(5), [&] { return w->done; });
    }
  }
  // Destroying the controller fails whatever is still outstanding, on the
  // reactor, before the thread ends.
  post([this] { ctrl_.reset(); });
  reactor_.stop_and_join();
  ctrl_.reset();  // only if the post was refused; the thread is gone now
}

}  // namespace nvmf::host
