#include "core/lifecycle.h"

namespace nvmf {

const char* target_state_name(TargetState s) {
  switch (s) {
    case TargetState::Running: return "running";
    case TargetState::PausingSubsystems: return "pausing-subsystems";
    case TargetState::StoppingListeners: return "stopping-listeners";
    case TargetState::DisconnectingQpairs: return "disconnecting-qpairs";
    case TargetState::DestroyingSubsystems: return "destroying-subsystems";
    case TargetState::DestroyingPollGroups: return "destroying-poll-groups";
    case TargetState::DestroyingTransports: return "destroying-transports";
    case TargetState::Destroyed: return "destroyed";
  }
  return "?";
}

bool target_transition_allowed(TargetState from, TargetState to) {
  // The one legal predecessor of each state.
  switch (to) {
    case TargetState::Running: return false;  // initial state only
    case TargetState::PausingSubsystems: return from == TargetState::Running;
    case TargetState::StoppingListeners: return from == TargetState::PausingSubsystems;
    case TargetState::DisconnectingQpairs: return from == TargetState::StoppingListeners;
    case TargetState::DestroyingSubsystems: return from == TargetState::DisconnectingQpairs;
    case TargetState::DestroyingPollGroups: return from == TargetState::DestroyingSubsystems;
    case TargetState::DestroyingTransports: return from == TargetState::DestroyingPollGroups;
    case TargetState::Destroyed: return from == TargetState::DestroyingTransports;
  }
  return false;
}

}  // namespace nvmf
