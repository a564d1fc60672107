#include "host/sync_loop.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

#include "host/clock.h"

namespace nvmf::host {

SyncLoop::~SyncLoop() {
  if (epfd_ >= 0) ::close(epfd_);
}

int SyncLoop::init() {
  if (epfd_ >= 0) return 0;
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  return epfd_ < 0 ? -errno : 0;
}

int SyncLoop::watch(int fd, uint32_t events, FdHandler* h) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int SyncLoop::rewatch(int fd, uint32_t events, FdHandler* h) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void SyncLoop::unwatch(int fd) { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

uint64_t SyncLoop::add_timer(uint64_t delay_ns, std::function<void()> fn) {
  uint64_t id = next_id_++;
  uint64_t d = mono_ns() + delay_ns;
  timers_.emplace(std::make_pair(d, id), std::move(fn));
  deadline_of_[id] = d;
  return id;
}

void SyncLoop::cancel_timer(uint64_t id) {
  auto it = deadline_of_.find(id);
  if (it == deadline_of_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  deadline_of_.erase(it);
}

int SyncLoop::run_timers() {
  int n = 0;
  uint64_t now = mono_ns();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto it = timers_.begin();
    std::function<void()> fn = std::move(it->second);
    deadline_of_.erase(it->first.second);
    timers_.erase(it);
    fn();
    n++;
  }
  return n;
}

int SyncLoop::run_once(int timeout_ms) {
  if (!timers_.empty()) {
    uint64_t now = mono_ns();
    uint64_t d = timers_.begin()->first.first;
    int t = d <= now ? 0 : int((d - now + 999999) / 1000000);
    if (timeout_ms < 0 || t < timeout_ms) timeout_ms = t;
  }
  epoll_event evs[32];
  int n = epoll_wait(epfd_, evs, 32, timeout_ms);
  int work = 0;
  for (int i = 0; i < n; i++) {
    static_cast<FdHandler*>(evs[i].data.ptr)->on_fd_event(evs[i].events);
    work++;
  }
  return work + run_timers();
}

bool SyncLoop::run_until(const std::function<bool()>& done, int64_t timeout_ms) {
  uint64_t end = mono_ns() + uint64_t(timeout_ms) * 1000000ull;
  while (!done()) {
    uint64_t now = mono_ns();
    if (now >= end) return false;
    uint64_t left_ms = (end - now + 999999) / 1000000;
    run_once(int(left_ms > 1000 ? 1000 : left_ms));
  }
  return true;
}

}  // namespace nvmf::host
