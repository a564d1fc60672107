// A HostLoop on a private epoll set, driven by the caller's thread: connect
// a HostController, then run_until() its callbacks report what you wait for.
// For the perf tool, the fio engine and native tests; the JS binding uses a
// Reactor instead.
#pragma once

#include <functional>
#include <map>
#include <unordered_map>

#include "host/host_loop.h"

namespace nvmf::host {

class SyncLoop : public HostLoop {
 public:
  SyncLoop() = default;
  ~SyncLoop() override;
  SyncLoop(const SyncLoop&) = delete;
  SyncLoop& operator=(const SyncLoop&) = delete;

  int init();  // -errno

  // Waits up to timeout_ms (-1 = until a timer or event) and dispatches fd
  // events and due timers. Returns how many it dispatched.
  int run_once(int timeout_ms);
  // Runs until done() is true (true) or timeout_ms passed (false).
  bool run_until(const std::function<bool()>& done, int64_t timeout_ms);

  int watch(int fd, uint32_t events, FdHandler* h) override;
  int rewatch(int fd, uint32_t events, FdHandler* h) override;
  void unwatch(int fd) override;
  uint64_t add_timer(uint64_t delay_ns, std::function<void()> fn) override;
  void cancel_timer(uint64_t id) override;

 private:
  int run_timers();

  int epfd_ = -1;
  uint64_t next_id_ = 1;
  std::map<std::pair<uint64_t, uint64_t>, std::function<void()>> timers_;  // (deadline, id)
  std::unordered_map<uint64_t, uint64_t> deadline_of_;
};

}  // namespace nvmf::host
