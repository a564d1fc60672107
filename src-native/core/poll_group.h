// A poll group is one reactor plus the qpairs it owns. The scheduler (the
// acceptor's choice of group) only ever sees groups that are linked and not
// draining; a group is unlinked *before* its teardown starts (DESIGN.md,
// lesson 2), and every hand-off to it holds a shared_ptr.
#pragma once

#include <atomic>
#include <memory>

#include "core/reactor.h"

namespace nvmf {

class PollGroup {
 public:
  PollGroup(int index, PollMode mode, uint64_t adaptive_idle_ns)
      : reactor_(index, mode, adaptive_idle_ns) {}

  Reactor& reactor() { return reactor_; }
  int index() const { return reactor_.index(); }

  bool draining() const { return draining_.load(std::memory_order_acquire); }
  void mark_draining() { draining_.store(true, std::memory_order_release); }

  // Live qpairs on this group (the scheduler's load metric).
  std::atomic<int> active_qpairs{0};

 private:
  Reactor reactor_;
  std::atomic<bool> draining_{false};
};

}  // namespace nvmf
