#include "core/target.h"

#include <cstdio>
#include <cstdlib>

namespace nvmf {

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

Target::Target(const TargetOptions& opts, std::shared_ptr<EventSink> sink)
    : opts_(opts), sink_(std::move(sink)) {}

Target::~Target() {
  // The owner must have run shutdown(); do it here as a last resort so no
  // thread outlives the object.
  shutdown();
}

int Target::create(const TargetOptions& opts, std::shared_ptr<EventSink> sink,
                   std::shared_ptr<Target>* out) {
  std::shared_ptr<Target> t(new Target(opts, std::move(sink)));
  for (int i = 0; i < opts.reactors; i++) {
    auto g = std::make_shared<PollGroup>(i, opts.poll_mode, opts.adaptive_idle_us * 1000);
    int rc = g->reactor().start();
    if (rc < 0) {
      // Unwind: the groups started so far are stopped by shutdown().
      t->groups_.push_back(std::move(g));
      t->linked_ = t->groups_;
      t->shutdown();
      return rc;
    }
    t->groups_.push_back(std::move(g));
  }
  t->linked_ = t->groups_;
  *out = std::move(t);
  return 0;
}

TargetState Target::state() const {
  std::lock_guard<std::mutex> g(mu_);
  return state_;
}

void Target::set_state(TargetState s) {
  std::lock_guard<std::mutex> g(mu_);
  // A broken transition is a programming error: the stages below are the
  // only writer and run in order. Checked in every build type.
  if (!target_transition_allowed(state_, s)) {
    fprintf(stderr, "nvmf-target: illegal target transition %s -> %s\n",
            target_state_name(state_), target_state_name(s));
    abort();
  }
  state_ = s;
}

std::shared_ptr<PollGroup> Target::pick_group() {
  std::lock_guard<std::mutex> g(mu_);
  std::shared_ptr<PollGroup> best;
  for (auto& pg : linked_) {
    if (pg->draining()) continue;
    if (!best || pg->active_qpairs.load() < best->active_qpairs.load()) best = pg;
  }
  return best;
}

std::shared_ptr<PollGroup> Target::group(int i) {
  if (i < 0 || i >= int(groups_.size())) return nullptr;
  return groups_[i];
}

void Target::shutdown() {
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (shutting_down_) {
      cv_.wait(lk, [&] { return state_ == TargetState::Destroyed; });
      return;
    }
    shutting_down_ = true;
  }
  run_shutdown_stages();
  cv_.notify_all();
}

void Target::run_shutdown_stages() {
  set_state(TargetState::PausingSubsystems);
  set_state(TargetState::StoppingListeners);
  set_state(TargetState::DisconnectingQpairs);
  set_state(TargetState::DestroyingSubsystems);

  set_state(TargetState::DestroyingPollGroups);
  // Unlink every group from the scheduler before any teardown starts, so no
  // acceptor can pick a group that is going away.
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& pg : linked_) pg->mark_draining();
    linked_.clear();
  }
  for (auto& pg : groups_) pg->reactor().stop_and_join();

  set_state(TargetState::DestroyingTransports);
  set_state(TargetState::Destroyed);
}

}  // namespace nvmf
