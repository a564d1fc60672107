#include "core/reactor.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>

namespace nvmf {

const char* poll_mode_name(PollMode m) {
  switch (m) {
    case PollMode::Poll: return "poll";
    case PollMode::Interrupt: return "interrupt";
    case PollMode::Adaptive: return "adaptive";
  }
  return "?";
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

Reactor::Reactor(int index, PollMode mode, uint64_t adaptive_idle_ns)
    : index_(index), mode_(mode), adaptive_idle_ns_(adaptive_idle_ns) {}

Reactor::~Reactor() {
  // stop_and_join() must have run; be safe if start() failed half way.
  if (thread_.joinable()) stop_and_join();
  if (evfd_ >= 0) close(evfd_);
  if (epfd_ >= 0) close(epfd_);
}

int Reactor::start() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return -errno;
  evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (evfd_ < 0) return -errno;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the message eventfd
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev) < 0) return -errno;
  {
    std::lock_guard<std::mutex> g(mq_mu_);
    accepting_ = true;
  }
  try {
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    std::lock_guard<std::mutex> g(mq_mu_);
    accepting_ = false;
    return -EAGAIN;
  }
  thread_id_ = thread_.get_id();
  // Wait until the thread runs, so tid() is valid once start() returns.
  while (tid_.load() == 0) std::this_thread::yield();
  return 0;
}

bool Reactor::post(Message m) {
  {
    std::lock_guard<std::mutex> g(mq_mu_);
    if (!accepting_) return false;
    mq_.push_back(std::move(m));
  }
  // Only a sleeping reactor needs the eventfd kick; a spinning one sees the
  // queue on its next iteration. sleeping_ is set before the reactor's last
  // queue check, so a message is never stranded.
  if (sleeping_.load(std::memory_order_seq_cst)) {
    uint64_t one = 1;
    ssize_t r = write(evfd_, &one, sizeof one);
    (void)r;
  }
  return true;
}

bool Reactor::call(const Message& m) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool posted = post([&] {
    m();
    std::lock_guard<std::mutex> g(mu);
    done = true;
    cv.notify_one();
  });
  if (!posted) return false;
  std::unique_lock<std::mutex> lk(mu);
  cv.wait(lk, [&] { return done; });
  return true;
}

void Reactor::stop_and_join() {
  if (joined_) return;
  {
    std::lock_guard<std::mutex> g(mq_mu_);
    accepting_ = false;
  }
  stop_.store(true, std::memory_order_seq_cst);
  if (evfd_ >= 0) {
    uint64_t one = 1;
    ssize_t r = write(evfd_, &one, sizeof one);
    (void)r;
  }
  if (thread_.joinable()) thread_.join();
  joined_ = true;
}

int Reactor::add_fd(int fd, uint32_t events, FdHandler* h) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int Reactor::mod_fd(int fd, uint32_t events, FdHandler* h) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int Reactor::del_fd(int fd) {
  return epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr) < 0 ? -errno : 0;
}

uint64_t Reactor::add_poller(PollerFn fn) {
  uint64_t id = next_id_++;
  pollers_.push_back({id, std::move(fn)});
  return id;
}

void Reactor::remove_poller(uint64_t id) {
  for (auto& p : pollers_) {
    if (p.id == id) p.fn = nullptr;  // compacted after the current pass
  }
}

uint64_t Reactor::add_timer(uint64_t delay_ns, TimerFn fn) {
  uint64_t id = next_id_++;
  uint64_t deadline = now_ns() + delay_ns;
  timers_.emplace(std::make_pair(deadline, id), std::move(fn));
  timer_deadline_[id] = deadline;
  return id;
}

void Reactor::cancel_timer(uint64_t id) {
  auto it = timer_deadline_.find(id);
  if (it == timer_deadline_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timer_deadline_.erase(it);
}

int Reactor::run_messages() {
  std::vector<Message> batch;
  {
    std::lock_guard<std::mutex> g(mq_mu_);
    if (mq_.empty()) return 0;
    batch.swap(mq_);
  }
  for (auto& m : batch) m();
  counters_.messages.fetch_add(batch.size(), std::memory_order_relaxed);
  return int(batch.size());
}

int Reactor::run_pollers() {
  int work = 0;
  bool dead = false;
  // Index loop: a poller may add pollers while running.
  for (size_t i = 0; i < pollers_.size(); i++) {
    if (!pollers_[i].fn) {
      dead = true;
      continue;
    }
    PollerFn& fn = pollers_[i].fn;
    work += fn();
  }
  if (dead) {
    std::erase_if(pollers_, [](const Poller& p) { return !p.fn; });
  }
  return work;
}

int Reactor::run_timers(uint64_t now) {
  int work = 0;
  while (!timers_.empty()) {
    auto it = timers_.begin();
    if (it->first.first > now) break;
    TimerFn fn = std::move(it->second);
    timer_deadline_.erase(it->first.second);
    timers_.erase(it);
    fn();
    work++;
  }
  return work;
}

int Reactor::next_timer_timeout_ms(uint64_t now) const {
  if (timers_.empty()) return -1;
  uint64_t d = timers_.begin()->first.first;
  if (d <= now) return 0;
  uint64_t ms = (d - now + 999999) / 1000000;
  return ms > 60000 ? 60000 : int(ms);
}

int Reactor::wait_events(int timeout_ms) {
  epoll_event evs[64];
  int n = epoll_wait(epfd_, evs, 64, timeout_ms);
  if (n <= 0) return 0;
  int work = 0;
  for (int i = 0; i < n; i++) {
    auto* h = static_cast<FdHandler*>(evs[i].data.ptr);
    if (h == nullptr) {
      uint64_t v;
      ssize_t r = read(evfd_, &v, sizeof v);
      (void)r;
      continue;
    }
    h->on_fd_event(evs[i].events);
    work++;
  }
  return work;
}

void Reactor::run() {
  tid_.store(pid_t(syscall(SYS_gettid)));
  uint64_t last_work = now_ns();
  while (true) {
    int work = run_messages();
    if (stop_.load(std::memory_order_acquire)) {
      // Drain what was queued before stop (the queue is closed now).
      while (run_messages() > 0) {
      }
      break;
    }
    work += wait_events(0);
    work += run_pollers();
    uint64_t now = now_ns();
    work += run_timers(now);
    counters_.iterations.fetch_add(1, std::memory_order_relaxed);
    if (work > 0 || busy_hint_) {
      busy_hint_ = false;
      last_work = now;
      continue;
    }
    if (mode_ == PollMode::Poll) continue;
    if (mode_ == PollMode::Adaptive && now - last_work < adaptive_idle_ns_) continue;

    // Block. Announce sleeping first, then re-check the queue, so a post()
    // that raced with us either is seen here or kicks the eventfd.
    sleeping_.store(true, std::memory_order_seq_cst);
    bool pending;
    {
      std::lock_guard<std::mutex> g(mq_mu_);
      pending = !mq_.empty();
    }
    if (!pending && !stop_.load(std::memory_order_seq_cst)) {
      counters_.sleeps.fetch_add(1, std::memory_order_relaxed);
      int w = wait_events(next_timer_timeout_ms(now_ns()));
      if (w > 0) last_work = now_ns();
    }
    sleeping_.store(false, std::memory_order_seq_cst);
  }
  // Anything posted after accepting_ went false was refused by post(), so
  // nothing is lost here.
}

}  // namespace nvmf
