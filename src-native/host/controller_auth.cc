// DH-HMAC-CHAP on the host side, one transaction per queue:
//   Auth Send AUTH_Negotiate -> Auth Receive Challenge -> Auth Send Reply
//   -> Auth Receive Success1 -> (bidirectional) Auth Send Success2.
// The controller's AUTH_Failure1 ends it with ERR_AUTH_FAILED and the
// reason the controller gave; a controller message we reject (a bad
// Challenge, a wrong response R2) is answered with AUTH_Failure2 first, so
// the controller learns why, and then ends it the same way.
#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "auth/session.h"
#include "host/auth_ctx.h"

namespace nvmf::host {

namespace {

using auth::DecodeError;
using auth::DecodeMode;
using auth::FailureReason;

bool offered(const std::vector<uint8_t>& ids, uint8_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

uint8_t reason_of(DecodeError e) { return uint8_t(auth::failure_reason_for(e)); }

std::string reason_text(uint8_t r) {
  char b[96];
  std::snprintf(b, sizeof b, "reason 0x%02x: %s", unsigned(r),
                auth::failure_reason_message(FailureReason(r)));
  return b;
}

}  // namespace

void HostController::after_connect(uint16_t qid, uint16_t authreq, std::function<void()> next) {
  if (authreq & kAuthreqAscr) {
    fail_controller(HostError::auth(queue_label(qid) +
                                    ": the controller requires secure channel concatenation "
                                    "(AUTHREQ.ASCR), which this host does not support"));
    return;
  }
  // With a controller key we authenticate even unasked: the point of that
  // key is not to trust a controller that cannot prove it knows it.
  if (!(authreq & kAuthreqAtr) && !opts_.dhchap_ctrl_key) {
    next();
    return;
  }
  stage_ = qid == 0 ? "DH-HMAC-CHAP on the admin queue" : "DH-HMAC-CHAP on the I/O queues";
  authenticate(qid, [this, next = std::move(next)](const HostError& e) {
    if (state_ != State::Connecting) return;  // ended meanwhile; it reported itself
    if (!e.ok()) {
      fail_controller(e);
      return;
    }
    next();
  });
}

void HostController::authenticate(uint16_t qid, DoneFn done) {
  if (auth_.size() <= qid) auth_.resize(size_t(qid) + 1);
  if (!auth_[qid]) auth_[qid] = std::make_unique<AuthCtx>(qid);
  AuthCtx& a = *auth_[qid];
  if (a.active) {
    done(HostError::invalid(queue_label(qid) + ": an authentication is already in progress"));
    return;
  }
  if (!opts_.dhchap_key) {
    done(HostError::auth(queue_label(qid) + ": subsystem " + opts_.subnqn +
                         " requires DH-HMAC-CHAP authentication; pass dhchapKey"));
    return;
  }
  a.active = true;
  a.gen++;
  a.done = std::move(done);
  a.key = opts_.dhchap_key;
  a.ctrl_key = opts_.dhchap_ctrl_key;
  a.t_id = auth_tid_++;
  a.hash = auth::HashId::None;
  a.bidirectional = false;
  auth::Negotiate n;
  n.t_id = a.t_id;
  n.sc_c = 0;
  n.hash_count = uint8_t(std::min<size_t>(opts_.auth_hashes.size(), auth::kMaxIdList));
  std::copy_n(opts_.auth_hashes.begin(), n.hash_count, n.hash_ids.begin());
  n.dh_group_count = uint8_t(std::min<size_t>(opts_.auth_dhgroups.size(), auth::kMaxIdList));
  std::copy_n(opts_.auth_dhgroups.begin(), n.dh_group_count, n.dh_group_ids.begin());
  int len = auth::encode_negotiate(n, a.send_buf, sizeof a.send_buf);
  if (len < 0) {
    auth_finish(a, HostError::invalid(queue_label(qid) + ": cannot encode AUTH_Negotiate"));
    return;
  }
  auth_send(a, uint32_t(len), &HostController::auth_negotiated);
}

void HostController::auth_send(AuthCtx& a, uint32_t len, AuthStep next) {
  HostCmd c;
  c.sqe = make_auth_send(len);
  c.data = a.send_buf;
  c.len = len;
  c.dir = XferDir::H2C;
  const uint16_t qid = a.qid;
  const uint64_t gen = a.gen;
  exec_internal(qid, c, [this, qid, gen, next](const HostCompletion& hc) {
    AuthCtx* x = qid < auth_.size() ? auth_[qid].get() : nullptr;
    if (x && x->active && x->gen == gen) (this->*next)(*x, hc);
  });
}

void HostController::auth_recv(AuthCtx& a, AuthStep next) {
  HostCmd c;
  c.sqe = make_auth_recv(AuthCtx::kRecvLen);
  c.data = a.recv_buf;
  c.len = AuthCtx::kRecvLen;
  c.dir = XferDir::C2H;
  std::fill(std::begin(a.recv_buf), std::end(a.recv_buf), uint8_t(0));
  const uint16_t qid = a.qid;
  const uint64_t gen = a.gen;
  exec_internal(qid, c, [this, qid, gen, next](const HostCompletion& hc) {
    AuthCtx* x = qid < auth_.size() ? auth_[qid].get() : nullptr;
    if (x && x->active && x->gen == gen) (this->*next)(*x, hc);
  });
}

HostError HostController::auth_cmd_error(AuthCtx& a, bool send, const HostCompletion& hc) {
  SqEntry sqe = send ? make_auth_send(0) : make_auth_recv(0);
  HostError e = error_of(a.qid, sqe, hc);
  if (!e.ok() && hc.err == 0) e.message += " (" + queue_label(a.qid) + ", DH-HMAC-CHAP)";
  return e;
}

void HostController::auth_finish(AuthCtx& a, HostError e) {
  a.active = false;
  a.gen++;
  a.wipe();
  DoneFn d = std::move(a.done);
  a.done = nullptr;
  if (d) d(e);
}

bool HostController::auth_failure1(AuthCtx& a, size_t len) {
  auth::MessageHeader h;
  if (auth::decode_header(a.recv_buf, len, &h) != DecodeError::Ok ||
      h.auth_type != uint8_t(auth::AuthType::Common) ||
      h.auth_id != uint8_t(auth::MessageId::Failure1)) {
    return false;
  }
  auth::Failure f;
  if (auth::decode_failure(a.recv_buf, len, &f, DecodeMode::AllowTrailing) != DecodeError::Ok) {
    auth_finish(a, HostError::auth(queue_label(a.qid) +
                                   ": DH-HMAC-CHAP authentication failed: the controller sent a "
                                   "truncated AUTH_Failure1"));
    return true;
  }
  auth_finish(a, HostError::auth(queue_label(a.qid) +
                                     ": DH-HMAC-CHAP authentication failed: the controller sent "
                                     "AUTH_Failure1 (" +
                                     reason_text(uint8_t(f.explanation)) + ")",
                                 auth::failure_reason_name(f.explanation)));
  return true;
}

void HostController::auth_reject(AuthCtx& a, uint8_t reason, std::string why) {
  a.reject_reason = reason;
  a.reject_why = std::move(why);
  auth::Failure f;
  f.id = auth::MessageId::Failure2;
  f.t_id = a.t_id;
  f.explanation = FailureReason(reason);
  int len = auth::encode_failure(f, a.send_buf, sizeof a.send_buf);
  if (len < 0) {
    auth_failure2_sent(a, HostCompletion{});
    return;
  }
  auth_send(a, uint32_t(len), &HostController::auth_failure2_sent);
}

void HostController::auth_failure2_sent(AuthCtx& a, const HostCompletion&) {
  // Whether or not the controller took it, the transaction failed.
  const uint8_t r = a.reject_reason;
  std::string why = std::move(a.reject_why);
  auth_finish(a, HostError::auth(queue_label(a.qid) + ": DH-HMAC-CHAP authentication failed: " +
                                     why + "; sent AUTH_Failure2 (" + reason_text(r) + ")",
                                 auth::failure_reason_name(FailureReason(r))));
}

void HostController::auth_negotiated(AuthCtx& a, const HostCompletion& hc) {
  HostError e = auth_cmd_error(a, true, hc);
  if (!e.ok()) {
    auth_finish(a, std::move(e));
    return;
  }
  auth_recv(a, &HostController::auth_on_challenge);
}

void HostController::auth_on_challenge(AuthCtx& a, const HostCompletion& hc) {
  HostError e = auth_cmd_error(a, false, hc);
  if (!e.ok()) {
    auth_finish(a, std::move(e));
    return;
  }
  const size_t n = std::min<size_t>(hc.bytes ? hc.bytes : AuthCtx::kRecvLen, AuthCtx::kRecvLen);
  if (auth_failure1(a, n)) return;
  auth::Challenge ch;
  DecodeError de = auth::decode_challenge(a.recv_buf, n, &ch, DecodeMode::AllowTrailing);
  if (de != DecodeError::Ok) {
    auth_reject(a, reason_of(de),
                std::string("the controller's Challenge is invalid: ") + auth::decode_error_message(de));
    return;
  }
  if (ch.t_id != a.t_id) {
    auth_reject(a, uint8_t(FailureReason::IncorrectPayload),
                "the controller's Challenge names transaction " + std::to_string(ch.t_id) +
                    ", not " + std::to_string(a.t_id));
    return;
  }
  if (!offered(opts_.auth_hashes, uint8_t(ch.hash))) {
    auth_reject(a, uint8_t(FailureReason::HashUnusable),
                std::string("the controller chose ") + auth::hash_name(ch.hash) +
                    ", which this host did not offer");
    return;
  }
  if (!offered(opts_.auth_dhgroups, uint8_t(ch.dh_group))) {
    auth_reject(a, uint8_t(FailureReason::DhGroupUnusable),
                std::string("the controller chose ") + auth::dh_group_name(ch.dh_group) +
                    ", which this host did not offer");
    return;
  }
  a.hash = ch.hash;
  const size_t hl = auth::hash_length(ch.hash);

  // Our half of the key agreement and the shared secret.
  auth::SecureBuffer session_key;
  uint8_t dhv[auth::kMaxDhValueLength];
  size_t dhvlen = 0;
  if (ch.dh_group != auth::DhGroupId::Null) {
    auth::DhKeyPair kp;
    int rc = kp.generate(ch.dh_group);
    if (rc >= 0) rc = kp.public_value(dhv);
    if (rc >= 0) {
      dhvlen = size_t(rc);
      rc = kp.shared_secret(ch.dh_value, session_key);
    }
    if (rc == -EKEYREJECTED) {
      auth_reject(a, uint8_t(FailureReason::Failed), "the controller's DH value is out of range");
      return;
    }
    if (rc < 0) {
      auth_reject(a, uint8_t(FailureReason::Failed), "DH key agreement failed");
      return;
    }
  }

  // R1 answers the controller's challenge with our key.
  auth::SecureBuffer kh;
  uint8_t r1[auth::kMaxDigestLength];
  auth::ResponseInput in;
  in.hash = ch.hash;
  in.challenge = ch.challenge;
  in.session_key = session_key.span();
  in.seqnum = ch.seqnum;
  in.transaction_id = a.t_id;
  in.sc_c = 0;
  in.host_nqn = opts_.hostnqn;
  in.subsys_nqn = opts_.subnqn;
  int rc = auth::transformed_key(*a.key, opts_.hostnqn, kh);
  in.key = kh.span();
  if (rc >= 0) rc = auth::host_response(in, {r1, hl});
  kh.clear();
  if (rc < 0) {
    auth_reject(a, uint8_t(FailureReason::Failed), "cannot compute the host response");
    return;
  }

  // Bidirectional: our challenge C2, and the answer we will expect.
  uint8_t c2[auth::kMaxDigestLength]{};
  uint32_t s2 = 0;
  if (a.ctrl_key) {
    a.bidirectional = true;
    if (auth_seq_ == 0) {
      uint8_t b[4];
      if (auth::random_bytes(b) == 0) auth_seq_ = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
    }
    if (++auth_seq_ == 0) auth_seq_ = 1;  // 0 means "no sequence number"
    s2 = auth_seq_;
    auth::SecureBuffer kc;
    rc = auth::random_bytes({c2, hl});
    if (rc >= 0) rc = auth::transformed_key(*a.ctrl_key, opts_.subnqn, kc);
    in.key = kc.span();
    in.challenge = {c2, hl};
    in.seqnum = s2;
    if (rc >= 0) rc = auth::controller_response(in, {a.r2, hl});
    if (rc < 0) {
      auth_reject(a, uint8_t(FailureReason::Failed), "cannot compute the expected controller response");
      return;
    }
  }

  auth::Reply r;
  r.t_id = a.t_id;
  r.hl = uint8_t(hl);
  r.cvalid = a.bidirectional;
  r.seqnum = s2;
  r.response = {r1, hl};
  if (a.bidirectional) r.challenge2 = {c2, hl};
  r.dh_value = {dhv, dhvlen};
  int len = auth::encode_reply(r, a.send_buf, sizeof a.send_buf);
  auth::secure_wipe(r1, sizeof r1);
  if (len < 0) {
    auth_reject(a, uint8_t(FailureReason::Failed), "cannot encode the Reply");
    return;
  }
  auth_send(a, uint32_t(len), &HostController::auth_replied);
}

void HostController::auth_replied(AuthCtx& a, const HostCompletion& hc) {
  HostError e = auth_cmd_error(a, true, hc);
  if (!e.ok()) {
    auth_finish(a, std::move(e));
    return;
  }
  auth_recv(a, &HostController::auth_on_success1);
}

void HostController::auth_on_success1(AuthCtx& a, const HostCompletion& hc) {
  HostError e = auth_cmd_error(a, false, hc);
  if (!e.ok()) {
    auth_finish(a, std::move(e));
    return;
  }
  const size_t n = std::min<size_t>(hc.bytes ? hc.bytes : AuthCtx::kRecvLen, AuthCtx::kRecvLen);
  if (auth_failure1(a, n)) return;
  auth::Success1 s;
  DecodeError de = auth::decode_success1(a.recv_buf, n, &s, DecodeMode::AllowTrailing);
  if (de != DecodeError::Ok) {
    auth_reject(a, reason_of(de),
                std::string("the controller's Success1 is invalid: ") + auth::decode_error_message(de));
    return;
  }
  const size_t hl = auth::hash_length(a.hash);
  if (s.t_id != a.t_id || s.hl != hl) {
    auth_reject(a, uint8_t(FailureReason::IncorrectPayload),
                "the controller's Success1 has the wrong transaction id or hash length");
    return;
  }
  if (!a.bidirectional) {
    auth_finish(a, HostError{});
    return;
  }
  if (!s.rvalid) {
    auth_reject(a, uint8_t(FailureReason::Failed),
                "the controller did not answer the host's challenge (RVALID 0)");
    return;
  }
  if (!auth::constant_time_equal({a.r2, hl}, s.response)) {
    auth_reject(a, uint8_t(FailureReason::Failed),
                "the controller's response does not match dhchapCtrlKey (the controller could not "
                "prove its identity)");
    return;
  }
  auth::Success2 m;
  m.t_id = a.t_id;
  int len = auth::encode_success2(m, a.send_buf, sizeof a.send_buf);
  if (len < 0) {
    auth_finish(a, HostError::invalid(queue_label(a.qid) + ": cannot encode Success2"));
    return;
  }
  auth_send(a, uint32_t(len), &HostController::auth_success2_sent);
}

void HostController::auth_success2_sent(AuthCtx& a, const HostCompletion& hc) {
  auth_finish(a, auth_cmd_error(a, true, hc));
}

void HostController::reauthenticate(std::shared_ptr<const auth::DhchapKey> key,
                                    std::shared_ptr<const auth::DhchapKey> ctrl_key,
                                    bool replace_keys, DoneFn done) {
  if (state_ != State::Live) {
    done(HostError::connection(opts_.target + ": the controller is not connected", ENOTCONN));
    return;
  }
  if (replace_keys) {
    opts_.dhchap_key = std::move(key);
    opts_.dhchap_ctrl_key = std::move(ctrl_key);
  }
  if (!opts_.dhchap_key) {
    done(HostError::invalid(opts_.target + ": no dhchapKey to authenticate with"));
    return;
  }
  reauth_next(0, std::make_shared<DoneFn>(std::move(done)));
}

void HostController::reauth_next(uint16_t qid, std::shared_ptr<DoneFn> done) {
  if (state_ != State::Live) {
    (*done)(failure_.ok() ? HostError::connection(opts_.target + ": the controller is not connected",
                                                  ENOTCONN)
                          : failure_);
    return;
  }
  if (qid > nio_ || (qid > 0 && discovery_)) {
    (*done)(HostError{});
    return;
  }
  authenticate(qid, [this, qid, done](const HostError& e) {
    if (!e.ok()) {
      // The controller ends a queue that failed; fail the whole controller
      // now, with the reason, rather than with a connection error later.
      if (e.code && std::string_view(e.code) == "ERR_AUTH_FAILED" && state_ == State::Live) {
        fail_controller(e);
      }
      (*done)(e);
      return;
    }
    reauth_next(uint16_t(qid + 1), done);
  });
}

}  // namespace nvmf::host
