// Target lifecycle: an explicit enum with a transition table. The destroy
// order of DESIGN.md is the sequence of states below; each state has exactly
// one legal predecessor, so a stage can never be skipped or reordered.
#pragma once

#include <cstdint>

namespace nvmf {

enum class TargetState : uint8_t {
  Running,
  PausingSubsystems,     // new I/O held, in-flight I/O drained
  StoppingListeners,     // listen sockets / cm ids closed
  DisconnectingQpairs,   // final responses flushed and confirmed
  DestroyingSubsystems,  // subsystems and controllers freed
  DestroyingPollGroups,  // each group unlinked first, then drained and joined
  DestroyingTransports,  // transports (RDMA PD/CQ/channel) and bdevs
  Destroyed,
};

const char* target_state_name(TargetState s);

// True when `to` may follow `from`.
bool target_transition_allowed(TargetState from, TargetState to);

}  // namespace nvmf
