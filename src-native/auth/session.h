// The controller's side of one DH-HMAC-CHAP transaction on one queue
// (NVMe Base Specification, "DH-HMAC-CHAP protocol"):
//
//   Auth Send    AUTH_Negotiate        Negotiate -> Challenge
//   Auth Receive Challenge             Challenge -> Reply
//   Auth Send    Reply                 Reply     -> Success1
//   Auth Receive Success1              Success1  -> Done, or -> Success2 (bidirectional)
//   Auth Send    Success2              Success2  -> Done
//
// Pure protocol logic: no queue, no timer, no I/O, so it can be driven by
// tests and fuzzers byte for byte. Every field of every message is checked.
// A failure found in an Auth Send does not fail that command (the host
// would learn nothing): it is recorded, and the next Auth Receive carries
// AUTH_Failure1 with the reason code explanation; after that (or after the
// host's AUTH_Failure2) the transaction is over and the queue must end.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "auth/crypto.h"
#include "auth/host_keys.h"
#include "auth/messages.h"
#include "auth/policy.h"

namespace nvmf::auth {

// "failed", "protocol-unusable", "concat-mismatch", "hash-unusable",
// "dhgroup-unusable", "incorrect-payload", "incorrect-message"; "none" for
// None and "unknown" for anything else. Stable: events and errors carry it.
const char* failure_reason_name(FailureReason r);

class ControllerSession {
 public:
  enum class Step : uint8_t {
    Negotiate,  // waiting for AUTH_Negotiate (Auth Send)
    Challenge,  // negotiated: the next Auth Receive returns the Challenge
    Reply,      // Challenge sent: waiting for the Reply (or the host's Failure2)
    Success1,   // Reply verified: the next Auth Receive returns Success1
    Success2,   // Success1 carried R2: waiting for Success2 (or Failure2)
    Failure1,   // failed: the next Auth Receive returns AUTH_Failure1
    Done,       // authenticated
    Failed,     // Failure1 delivered or Failure2 received
  };

  enum class Outcome : uint8_t {
    Continue,       // complete the command; the transaction goes on
    Authenticated,  // complete the command; the queue is authenticated
    Failed,         // complete the command, then end the queue
  };

  // `keys.host` may be null (the host has no key): the transaction then
  // fails with reason "failed" once negotiated.
  ControllerSession(const AuthPolicy& policy, HostKeys keys, std::string hostnqn,
                    std::string subnqn);
  ~ControllerSession();
  ControllerSession(const ControllerSession&) = delete;
  ControllerSession& operator=(const ControllerSession&) = delete;

  // Authentication Send: `msg` holds exactly the TL bytes the host sent.
  Outcome on_send(std::span<const uint8_t> msg);

  // Authentication Receive: writes the next message into `out` (the AL
  // bytes the host allows) and returns its length. A message that does not
  // fit becomes AUTH_Failure1 (incorrect payload); when even that does not
  // fit, returns -EMSGSIZE and the transaction is Failed.
  int on_recv(std::span<uint8_t> out, Outcome* outcome);

  Step step() const { return step_; }
  FailureReason reason() const { return reason_; }
  // One line saying what went wrong, for events. Never contains secrets.
  const std::string& detail() const { return detail_; }
  // The failure was the host's AUTH_Failure2 (it rejected the controller).
  bool failure_from_host() const { return from_host_; }
  HashId hash() const { return hash_; }
  DhGroupId dh_group() const { return group_; }
  bool negotiated() const { return negotiated_; }
  bool bidirectional() const { return cvalid_; }

 private:
  Outcome negotiate(std::span<const uint8_t> msg);
  Outcome reply(std::span<const uint8_t> msg);
  Outcome success2(std::span<const uint8_t> msg);
  Outcome failure2(std::span<const uint8_t> msg);
  int write_challenge(std::span<uint8_t> out);
  int write_success1(std::span<uint8_t> out);
  int write_failure1(std::span<uint8_t> out);
  void fail(FailureReason r, std::string detail);
  // Drops the keys and every ephemeral secret: the transaction is over.
  void release();

  const AuthPolicy policy_;
  HostKeys keys_;
  const std::string hostnqn_;
  const std::string subnqn_;

  Step step_ = Step::Negotiate;
  FailureReason reason_ = FailureReason::None;
  std::string detail_;
  bool from_host_ = false;

  bool have_tid_ = false;
  uint16_t t_id_ = 0;
  bool negotiated_ = false;
  HashId hash_ = HashId::None;
  DhGroupId group_ = DhGroupId::Null;
  uint32_t s1_ = 0;
  uint8_t c1_[kMaxDigestLength]{};
  DhKeyPair dh_;
  bool cvalid_ = false;
  uint8_t r2_[kMaxDigestLength]{};
};

const char* session_step_name(ControllerSession::Step s);

}  // namespace nvmf::auth
