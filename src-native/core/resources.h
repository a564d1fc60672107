// Resource accounting: how many qpairs, controllers, request buffers, ... are
// alive, so tests can assert that every scenario (destroy, subsystem removal,
// a client that vanishes) gives everything back.
//
// Two levels: each Target owns a Resources whose `parent` is the process-wide
// one, and every change is applied to both; the process-wide totals stay
// readable after a target is destroyed. Counters change only when objects are
// created or destroyed (never per I/O), so plain relaxed atomics are cheap.
//
// Outstanding requests do change per I/O: they are counted per poll group by
// its own reactor (no contended cache line) and summed on demand;
// PollGroupCounters registers each group's counter so the process-wide sum
// includes every live group, and a group destroyed with requests still
// counted leaves them in `leaked_requests` (which must stay 0).
#pragma once

#include <atomic>
#include <cstdint>

namespace nvmf {

struct ResourceSnapshot {
  int64_t targets = 0;
  int64_t poll_groups = 0;
  int64_t qpairs = 0;
  int64_t controllers = 0;
  int64_t outstanding_requests = 0;
  int64_t request_buffers = 0;
  int64_t request_buffer_bytes = 0;
  int64_t registered_buffers = 0;  // memory registrations (RDMA MRs); 0 on TCP
  int64_t bdevs = 0;
  int64_t leaked_requests = 0;     // requests freed uncompleted
};

class Resources {
 public:
  using Field = std::atomic<int64_t> Resources::*;

  std::atomic<int64_t> targets{0};
  std::atomic<int64_t> poll_groups{0};
  std::atomic<int64_t> qpairs{0};
  std::atomic<int64_t> controllers{0};
  std::atomic<int64_t> request_buffers{0};
  std::atomic<int64_t> request_buffer_bytes{0};
  std::atomic<int64_t> registered_buffers{0};
  std::atomic<int64_t> bdevs{0};
  std::atomic<int64_t> leaked_requests{0};

  explicit Resources(Resources* parent = nullptr) : parent_(parent) {}
  Resources(const Resources&) = delete;
  Resources& operator=(const Resources&) = delete;

  // Applies `delta` here and to the process-wide totals.
  void add(Field f, int64_t delta) {
    (this->*f).fetch_add(delta, std::memory_order_relaxed);
    if (parent_) (parent_->*f).fetch_add(delta, std::memory_order_relaxed);
  }
  // The counters above (outstanding_requests is summed by the caller).
  ResourceSnapshot snapshot() const;

 private:
  Resources* const parent_;
};

// The process-wide totals (never destroyed, so safe during exit).
Resources& process_resources();
// The process-wide snapshot, outstanding requests of every live group included.
ResourceSnapshot process_resource_snapshot();

// A poll group's outstanding-request counter. Written only by the group's
// reactor (load + store, no read-modify-write), read from any thread.
class PollGroupCounters {
 public:
  PollGroupCounters();
  ~PollGroupCounters();
  PollGroupCounters(const PollGroupCounters&) = delete;
  PollGroupCounters& operator=(const PollGroupCounters&) = delete;

  void request_started() { bump(1); }
  void request_finished() { bump(-1); }
  int64_t outstanding() const { return outstanding_.load(std::memory_order_relaxed); }

 private:
  void bump(int64_t d) {
    outstanding_.store(outstanding_.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  std::atomic<int64_t> outstanding_{0};
};

}  // namespace nvmf
