// A poll group is one reactor plus the qpairs it owns. The scheduler (the
// acceptor's choice of group) only ever sees groups that are linked and not
// draining; a group is unlinked *before* its teardown starts (DESIGN.md,
// lesson 2), and every hand-off to it holds a shared_ptr.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <unordered_map>

#include "core/reactor.h"
#include "core/resources.h"
#include "core/uring.h"

namespace nvmf {

class Qpair;
struct TransportOps;

// A transport's per-group state (socket set, RDMA CQ, ...).
class TransportGroup {
 public:
  virtual ~TransportGroup() = default;
};

class PollGroup {
 public:
  PollGroup(int index, PollMode mode, uint64_t adaptive_idle_ns)
      : reactor_(index, mode, adaptive_idle_ns) {
    process_resources().poll_groups.fetch_add(1, std::memory_order_relaxed);
  }
  ~PollGroup() { process_resources().poll_groups.fetch_sub(1, std::memory_order_relaxed); }

  Reactor& reactor() { return reactor_; }
  int index() const { return reactor_.index(); }

  bool draining() const { return draining_.load(std::memory_order_acquire); }
  void mark_draining() { draining_.store(true, std::memory_order_release); }

  // Live qpairs on this group (the scheduler's load metric).
  std::atomic<int> active_qpairs{0};
  // Commands between request_exec and request_complete (resources()).
  PollGroupCounters counters;

  // ---- reactor thread only ----
  Uring uring;                                   // backend I/O of this group
  bool closed = false;  // disconnect_all ran: hand-offs are refused (fd closed)
  std::unordered_map<uint64_t, Qpair*> qpairs;   // live qpairs by uid
  std::map<const TransportOps*, std::unique_ptr<TransportGroup>> tgroups;
  Qpair* find_qpair(uint64_t uid) {
    auto it = qpairs.find(uid);
    return it == qpairs.end() ? nullptr : it->second;
  }

 private:
  Reactor reactor_;
  std::atomic<bool> draining_{false};
};

}  // namespace nvmf
