#include "auth/session.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace nvmf::auth {

namespace {

std::string hex8(uint8_t v) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", unsigned(v));
  return b;
}

std::string id_list(std::span<const uint8_t> ids, bool hashes) {
  std::string s;
  for (uint8_t id : ids) {
    if (!s.empty()) s += ",";
    const char* n = hashes ? (hash_id_valid(id) ? hash_name(HashId(id)) : nullptr)
                           : dh_group_name(DhGroupId(id));
    s += n ? n : hex8(id);
  }
  return s.empty() ? "none" : s;
}

bool contains(std::span<const uint8_t> ids, uint8_t id) {
  for (uint8_t x : ids) {
    if (x == id) return true;
  }
  return false;
}

}  // namespace

const char* failure_reason_name(FailureReason r) {
  switch (r) {
    case FailureReason::None: return "none";
    case FailureReason::Failed: return "failed";
    case FailureReason::ProtocolUnusable: return "protocol-unusable";
    case FailureReason::ConcatMismatch: return "concat-mismatch";
    case FailureReason::HashUnusable: return "hash-unusable";
    case FailureReason::DhGroupUnusable: return "dhgroup-unusable";
    case FailureReason::IncorrectPayload: return "incorrect-payload";
    case FailureReason::IncorrectMessage: return "incorrect-message";
  }
  return "unknown";
}

const char* session_step_name(ControllerSession::Step s) {
  using S = ControllerSession::Step;
  switch (s) {
    case S::Negotiate: return "negotiate";
    case S::Challenge: return "challenge";
    case S::Reply: return "reply";
    case S::Success1: return "success1";
    case S::Success2: return "success2";
    case S::Failure1: return "failure1";
    case S::Done: return "done";
    case S::Failed: return "failed";
  }
  return "?";
}

ControllerSession::ControllerSession(const AuthPolicy& policy, HostKeys keys, std::string hostnqn,
                                     std::string subnqn)
    : policy_(policy),
      keys_(std::move(keys)),
      hostnqn_(std::move(hostnqn)),
      subnqn_(std::move(subnqn)) {}

ControllerSession::~ControllerSession() { release(); }

void ControllerSession::release() {
  keys_ = HostKeys{};
  dh_ = DhKeyPair{};
  secure_wipe(c1_, sizeof c1_);
  secure_wipe(r2_, sizeof r2_);
}

void ControllerSession::fail(FailureReason r, std::string detail) {
  // The first failure is the one reported; later messages cannot change it.
  if (step_ == Step::Failure1 || step_ == Step::Failed) return;
  step_ = Step::Failure1;
  reason_ = r;
  detail_ = std::move(detail);
  release();
}

ControllerSession::Outcome ControllerSession::on_send(std::span<const uint8_t> msg) {
  if (step_ == Step::Failure1 || step_ == Step::Failed || step_ == Step::Done) {
    if (step_ == Step::Done) fail(FailureReason::IncorrectMessage, "message after the transaction ended");
    return Outcome::Continue;
  }
  MessageHeader h;
  DecodeError e = decode_header(msg.data(), msg.size(), &h);
  if (e != DecodeError::Ok) {
    fail(failure_reason_for(e), std::string("host message: ") + decode_error_message(e) +
                                    (msg.size() >= 2 ? " (AUTH-Type " + hex8(msg[0]) +
                                                           ", AUTH-Id " + hex8(msg[1]) + ")"
                                                     : ""));
    return Outcome::Continue;
  }
  // The first message of a transaction names it; a Failure1 carries it too.
  if (!have_tid_) {
    have_tid_ = true;
    t_id_ = h.t_id;
  }
  switch (MessageId(h.auth_id)) {
    case MessageId::Negotiate: return negotiate(msg);
    case MessageId::Reply: return reply(msg);
    case MessageId::Success2: return success2(msg);
    case MessageId::Failure2: return failure2(msg);
    case MessageId::Challenge:
    case MessageId::Success1:
    case MessageId::Failure1: break;
  }
  fail(FailureReason::IncorrectMessage,
       std::string("host sent ") + message_name(MessageId(h.auth_id)) + ", a controller message");
  return Outcome::Continue;
}

ControllerSession::Outcome ControllerSession::negotiate(std::span<const uint8_t> msg) {
  if (step_ != Step::Negotiate) {
    fail(FailureReason::IncorrectMessage,
         std::string("AUTH_Negotiate while in step ") + session_step_name(step_));
    return Outcome::Continue;
  }
  Negotiate n;
  DecodeError e = decode_negotiate(msg.data(), msg.size(), &n, DecodeMode::Exact);
  if (e != DecodeError::Ok) {
    fail(failure_reason_for(e), std::string("AUTH_Negotiate: ") + decode_error_message(e));
    return Outcome::Continue;
  }
  t_id_ = n.t_id;
  if (n.sc_c != uint8_t(ScC::None)) {
    fail(FailureReason::ConcatMismatch,
         "AUTH_Negotiate asks for secure channel concatenation (SC_C " + hex8(n.sc_c) +
             "), which this target does not offer");
    return Outcome::Continue;
  }
  for (uint8_t i = 0; i < policy_.ndigests && hash_ == HashId::None; i++) {
    if (contains(n.hashes(), uint8_t(policy_.digests[i]))) hash_ = policy_.digests[i];
  }
  if (hash_ == HashId::None) {
    fail(FailureReason::HashUnusable,
         "no hash function in common (host offers " + id_list(n.hashes(), true) + ")");
    return Outcome::Continue;
  }
  bool have_group = false;
  for (uint8_t i = 0; i < policy_.ndhgroups && !have_group; i++) {
    if (contains(n.dh_groups(), uint8_t(policy_.dhgroups[i]))) {
      group_ = policy_.dhgroups[i];
      have_group = true;
    }
  }
  if (!have_group) {
    fail(FailureReason::DhGroupUnusable,
         "no DH group in common (host offers " + id_list(n.dh_groups(), false) + ")");
    return Outcome::Continue;
  }
  negotiated_ = true;
  if (!keys_.host) {
    fail(FailureReason::Failed, "no DH-HMAC-CHAP key is configured for host " + hostnqn_);
    return Outcome::Continue;
  }
  step_ = Step::Challenge;
  return Outcome::Continue;
}

int ControllerSession::write_challenge(std::span<uint8_t> out) {
  const size_t hl = hash_length(hash_);
  uint8_t s1[4];
  if (random_bytes({c1_, hl}) < 0 || random_bytes(s1) < 0) {
    fail(FailureReason::Failed, "random number generator failed");
    return write_failure1(out);
  }
  s1_ = uint32_t(s1[0]) | uint32_t(s1[1]) << 8 | uint32_t(s1[2]) << 16 | uint32_t(s1[3]) << 24;
  if (s1_ == 0) s1_ = 1;  // 0 means "no sequence number"
  uint8_t dhv[kMaxDhValueLength];
  size_t dhvlen = 0;
  if (group_ != DhGroupId::Null) {
    int rc = dh_.generate(group_);
    if (rc == 0) rc = dh_.public_value(dhv);
    if (rc < 0) {
      fail(FailureReason::Failed, std::string("cannot generate a ") + dh_group_name(group_) + " key pair");
      return write_failure1(out);
    }
    dhvlen = size_t(rc);
  }
  Challenge m;
  m.t_id = t_id_;
  m.hash = hash_;
  m.dh_group = group_;
  m.seqnum = s1_;
  m.challenge = {c1_, hl};
  m.dh_value = {dhv, dhvlen};
  int n = encode_challenge(m, out.data(), out.size());
  if (n == -ENOSPC) {
    fail(FailureReason::IncorrectPayload,
         "Auth Receive allocation length " + std::to_string(out.size()) +
             " is too small for the Challenge (" +
             std::to_string(sizeof(wire::ChallengeHeader) + hl + dhvlen) + " bytes)");
    return write_failure1(out);
  }
  if (n < 0) {
    fail(FailureReason::Failed, "cannot encode the Challenge");
    return write_failure1(out);
  }
  step_ = Step::Reply;
  return n;
}

ControllerSession::Outcome ControllerSession::reply(std::span<const uint8_t> msg) {
  if (step_ != Step::Reply) {
    fail(FailureReason::IncorrectMessage,
         std::string("DH-HMAC-CHAP_Reply while in step ") + session_step_name(step_));
    return Outcome::Continue;
  }
  Reply r;
  DecodeError e = decode_reply(msg.data(), msg.size(), &r, DecodeMode::Exact);
  if (e != DecodeError::Ok) {
    fail(failure_reason_for(e), std::string("DH-HMAC-CHAP_Reply: ") + decode_error_message(e));
    return Outcome::Continue;
  }
  if (r.t_id != t_id_) {
    fail(FailureReason::IncorrectPayload, "DH-HMAC-CHAP_Reply: T_ID " + std::to_string(r.t_id) +
                                              " differs from the transaction's " +
                                              std::to_string(t_id_));
    return Outcome::Continue;
  }
  const size_t hl = hash_length(hash_);
  if (r.hl != hl) {
    fail(FailureReason::IncorrectPayload, "DH-HMAC-CHAP_Reply: HL " + std::to_string(r.hl) +
                                              " does not match " + hash_name(hash_));
    return Outcome::Continue;
  }
  if (r.dh_value.size() != dh_group_size(group_)) {
    fail(FailureReason::IncorrectPayload,
         "DH-HMAC-CHAP_Reply: DHVLEN " + std::to_string(r.dh_value.size()) + " does not match " +
             dh_group_name(group_) + " (" + std::to_string(dh_group_size(group_)) + ")");
    return Outcome::Continue;
  }
  cvalid_ = r.cvalid;  // reported in events even when the reply fails
  if (r.cvalid && !keys_.ctrl) {
    fail(FailureReason::Failed,
         "the host asks to authenticate the controller, but host " + hostnqn_ +
             " has no controller key");
    return Outcome::Continue;
  }
  SecureBuffer session_key;
  if (group_ != DhGroupId::Null) {
    int rc = dh_.shared_secret(r.dh_value, session_key);
    dh_ = DhKeyPair{};  // the ephemeral private key is needed no more
    if (rc == -EKEYREJECTED) {
      fail(FailureReason::Failed, "DH-HMAC-CHAP_Reply: the host's DH value is out of range");
      return Outcome::Continue;
    }
    if (rc < 0) {
      fail(FailureReason::Failed, "cannot compute the DH shared secret");
      return Outcome::Continue;
    }
  }
  SecureBuffer kh;
  if (transformed_key(*keys_.host, hostnqn_, kh) < 0) {
    fail(FailureReason::Failed, "cannot transform the host key");
    return Outcome::Continue;
  }
  ResponseInput in;
  in.hash = hash_;
  in.key = kh.span();
  in.challenge = {c1_, hl};
  in.session_key = session_key.span();
  in.seqnum = s1_;
  in.transaction_id = t_id_;
  in.sc_c = 0;
  in.host_nqn = hostnqn_;
  in.subsys_nqn = subnqn_;
  uint8_t expect[kMaxDigestLength];
  int rc = host_response(in, {expect, hl});
  kh.clear();
  const bool match = rc == 0 && constant_time_equal({expect, hl}, r.response);
  secure_wipe(expect, sizeof expect);
  if (rc < 0) {
    fail(FailureReason::Failed, "cannot compute the host response");
    return Outcome::Continue;
  }
  if (!match) {
    fail(FailureReason::Failed, "the host's response does not match its key");
    return Outcome::Continue;
  }
  if (cvalid_) {
    SecureBuffer kc;
    if (transformed_key(*keys_.ctrl, subnqn_, kc) < 0) {
      fail(FailureReason::Failed, "cannot transform the controller key");
      return Outcome::Continue;
    }
    in.key = kc.span();
    in.challenge = r.challenge2;
    in.seqnum = r.seqnum;
    if (controller_response(in, {r2_, hl}) < 0) {
      fail(FailureReason::Failed, "cannot compute the controller response");
      return Outcome::Continue;
    }
  }
  step_ = Step::Success1;
  return Outcome::Continue;
}

int ControllerSession::write_success1(std::span<uint8_t> out) {
  const size_t hl = hash_length(hash_);
  Success1 m;
  m.t_id = t_id_;
  m.hl = uint8_t(hl);
  m.rvalid = cvalid_;
  if (cvalid_) m.response = {r2_, hl};
  int n = encode_success1(m, out.data(), out.size());
  if (n == -ENOSPC) {
    fail(FailureReason::IncorrectPayload, "Auth Receive allocation length " +
                                              std::to_string(out.size()) +
                                              " is too small for Success1");
    return write_failure1(out);
  }
  if (n < 0) {
    fail(FailureReason::Failed, "cannot encode Success1");
    return write_failure1(out);
  }
  step_ = cvalid_ ? Step::Success2 : Step::Done;
  if (step_ == Step::Done) release();
  return n;
}

int ControllerSession::write_failure1(std::span<uint8_t> out) {
  Failure m;
  m.id = MessageId::Failure1;
  m.t_id = t_id_;
  m.reason_code = kReasonCodeFailed;
  m.explanation = reason_ == FailureReason::None ? FailureReason::Failed : reason_;
  step_ = Step::Failed;
  release();
  int n = encode_failure(m, out.data(), out.size());
  return n < 0 ? -EMSGSIZE : n;
}

int ControllerSession::on_recv(std::span<uint8_t> out, Outcome* outcome) {
  int n;
  switch (step_) {
    case Step::Challenge: n = write_challenge(out); break;
    case Step::Success1: n = write_success1(out); break;
    case Step::Failure1: n = write_failure1(out); break;
    case Step::Failed:
      // Nothing more to say; the queue is ending.
      *outcome = Outcome::Failed;
      return write_failure1(out);
    default:
      fail(FailureReason::IncorrectMessage,
           std::string("Auth Receive while waiting for the host (step ") +
               session_step_name(step_) + ")");
      n = write_failure1(out);
      break;
  }
  *outcome = step_ == Step::Failed ? Outcome::Failed
             : step_ == Step::Done ? Outcome::Authenticated
                                   : Outcome::Continue;
  return n;
}

ControllerSession::Outcome ControllerSession::success2(std::span<const uint8_t> msg) {
  if (step_ != Step::Success2) {
    fail(FailureReason::IncorrectMessage,
         std::string("DH-HMAC-CHAP_Success2 while in step ") + session_step_name(step_));
    return Outcome::Continue;
  }
  Success2 m;
  DecodeError e = decode_success2(msg.data(), msg.size(), &m, DecodeMode::Exact);
  if (e != DecodeError::Ok) {
    fail(failure_reason_for(e), std::string("DH-HMAC-CHAP_Success2: ") + decode_error_message(e));
    return Outcome::Continue;
  }
  if (m.t_id != t_id_) {
    fail(FailureReason::IncorrectPayload, "DH-HMAC-CHAP_Success2: T_ID " + std::to_string(m.t_id) +
                                              " differs from the transaction's " +
                                              std::to_string(t_id_));
    return Outcome::Continue;
  }
  step_ = Step::Done;
  release();
  return Outcome::Authenticated;
}

ControllerSession::Outcome ControllerSession::failure2(std::span<const uint8_t> msg) {
  // The host answers a controller message it rejects: the Challenge, or a
  // Success1 whose response R2 did not match.
  if (step_ != Step::Reply && step_ != Step::Success2) {
    fail(FailureReason::IncorrectMessage,
         std::string("AUTH_Failure2 while in step ") + session_step_name(step_));
    return Outcome::Continue;
  }
  Failure m;
  DecodeError e = decode_failure(msg.data(), msg.size(), &m, DecodeMode::Exact);
  if (e != DecodeError::Ok) {
    fail(failure_reason_for(e), std::string("AUTH_Failure2: ") + decode_error_message(e));
    return Outcome::Continue;
  }
  if (m.t_id != t_id_) {
    fail(FailureReason::IncorrectPayload, "AUTH_Failure2: T_ID " + std::to_string(m.t_id) +
                                              " differs from the transaction's " +
                                              std::to_string(t_id_));
    return Outcome::Continue;
  }
  const bool after_success1 = step_ == Step::Success2;
  step_ = Step::Failed;
  from_host_ = true;
  reason_ = m.explanation;
  detail_ = std::string("the host rejected the ") +
            (after_success1 ? "controller's response" : "Challenge") +
            " with AUTH_Failure2 (" + failure_reason_message(m.explanation) + ")";
  release();
  return Outcome::Failed;
}

}  // namespace nvmf::auth
