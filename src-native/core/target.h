// The native target: owns poll groups (reactor threads) and, in later layers,
// transports, listeners, subsystems and bdevs. Its shutdown is one ordered,
// synchronous state machine (lifecycle.h) that every path uses: destroy()
// from JavaScript (on a helper thread), GC (scheduled), and the environment
// cleanup hook (inline, at exit).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/events.h"
#include "core/lifecycle.h"
#include "core/poll_group.h"

namespace nvmf {

struct TargetOptions {
  int reactors = 1;
  PollMode poll_mode = PollMode::Adaptive;
  uint64_t adaptive_idle_us = 200;  // spin this long after the last work
};

class Target : public std::enable_shared_from_this<Target> {
 public:
  // Starts the reactors. Returns -errno; on failure nothing is left running.
  static int create(const TargetOptions& opts, std::shared_ptr<EventSink> sink,
                    std::shared_ptr<Target>* out);
  ~Target();

  // The ordered shutdown. Synchronous, idempotent and thread-safe: a second
  // caller waits for the first to finish. Never call it from a reactor.
  void shutdown();

  TargetState state() const;
  bool running() const { return state() == TargetState::Running; }
  const TargetOptions& options() const { return opts_; }

  // The live poll group with the fewest active qpairs, or nullptr when none
  // is live (shutdown has begun). The returned reference pins the group.
  std::shared_ptr<PollGroup> pick_group();
  std::shared_ptr<PollGroup> group(int i);
  int group_count() const { return int(groups_.size()); }

  EventSink& events() { return *sink_; }

 private:
  explicit Target(const TargetOptions& opts, std::shared_ptr<EventSink> sink);
  void set_state(TargetState s);
  void run_shutdown_stages();

  const TargetOptions opts_;
  std::shared_ptr<EventSink> sink_;

  mutable std::mutex mu_;  // guards state_, shutting_down_, linked_
  std::condition_variable cv_;
  TargetState state_ = TargetState::Running;
  bool shutting_down_ = false;

  // All groups (owned) and the ones the scheduler may choose (linked).
  std::vector<std::shared_ptr<PollGroup>> groups_;
  std::vector<std::shared_ptr<PollGroup>> linked_;
};

}  // namespace nvmf
