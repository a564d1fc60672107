#include "auth/qpair_auth.h"

#include <cstdio>
#include <vector>

#include "core/controller.h"
#include "core/events.h"
#include "core/qpair.h"
#include "core/reactor.h"
#include "core/subsystem.h"
#include "core/target.h"
#include "nvme/exec.h"
#include "nvme/handlers.h"
#include "transport/transport.h"

namespace nvmf {

namespace {

using auth::ControllerSession;
using Outcome = ControllerSession::Outcome;

Target& target_of(Qpair* q) { return q->transport().target; }

QpairAuth& state_of(Qpair* q) {
  if (!q->auth) q->auth = std::make_shared<QpairAuth>();
  return *q->auth;
}

void on_timeout(Qpair* q);

// Bounds the wait for the host's next message; re-armed after each one, so
// a slow host (a VM computing ffdhe8192) has the whole timeout per step,
// and a silent one is dropped. The timer finds the queue again by uid, so
// it is harmless when the queue is gone before it fires.
void arm_timer(Qpair* q, QpairAuth& a) {
  Reactor& r = q->reactor();
  if (a.timer) r.cancel_timer(a.timer);
  a.generation++;
  const uint32_t ms = a.timeout_ms;
  PollGroup* g = &q->group();
  uint64_t uid = q->uid();
  uint64_t gen = a.generation;
  a.timer = r.add_timer(uint64_t(ms) * 1000000ull, [g, uid, gen] {
    Qpair* q = g->find_qpair(uid);
    if (!q || !q->auth || q->auth->generation != gen) return;
    if (q->state() == QpairState::Disconnecting) return;  // ending anyway
    q->auth->timer = 0;
    on_timeout(q);
  });
}

// The transaction is over (either way): no timer, no keys, no secrets.
void end_transaction(Qpair* q, QpairAuth& a) {
  if (a.timer) q->reactor().cancel_timer(a.timer);
  a.timer = 0;
  a.generation++;
  a.session.reset();
}

void start_transaction(Qpair* q, QpairAuth& a) {
  Subsystem& s = q->ctrlr->subsystem();
  std::shared_ptr<const auth::AuthPolicy> policy = target_of(q).auth_policy();
  a.session = std::make_unique<ControllerSession>(*policy, s.host_keys(q->hostnqn), q->hostnqn,
                                                  s.nqn());
  // A Connect with AUTHREQ armed the timer already; a re-authentication
  // on an enabled queue starts its own.
  a.reauth = q->state() == QpairState::Enabled;
  if (a.reauth || !a.timer) {
    a.start_ns = now_ns();
    a.timeout_ms = policy->timeout_ms;
  }
}

std::string event_json(Qpair* q, const QpairAuth& a, const ControllerSession* s) {
  const bool neg = s && s->negotiated();
  std::string j = "{\"subnqn\":" + json_str(q->ctrlr ? q->ctrlr->subsystem().nqn() : std::string()) +
                  ",\"hostnqn\":" + json_str(q->hostnqn) + ",\"qid\":" + std::to_string(q->qid) +
                  ",\"cntlid\":" + std::to_string(q->ctrlr ? q->ctrlr->cntlid : 0) +
                  ",\"peer\":" + json_str(q->peer) + ",\"digest\":" +
                  (neg ? json_str(auth::hash_name(s->hash())) : std::string("null")) +
                  ",\"dhgroup\":" +
                  (neg ? json_str(auth::dh_group_name(s->dh_group())) : std::string("null")) +
                  ",\"bidirectional\":" + (s && s->bidirectional() ? "true" : "false") +
                  ",\"reauth\":" + (a.reauth ? "true" : "false");
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.3f", double(now_ns() - a.start_ns) / 1e6);
  j += ",\"ms\":";
  j += ms;
  return j;
}

void emit_success(Qpair* q, QpairAuth& a) {
  std::string j = event_json(q, a, a.session.get()) + "}";
  target_of(q).events().emit("auth-success", std::move(j));
}

// `failure`: "AUTH_Failure1" (we rejected the host), "AUTH_Failure2" (the
// host rejected us), or "timeout".
void emit_failure(Qpair* q, QpairAuth& a, const char* failure) {
  const ControllerSession* s = a.session.get();
  auth::FailureReason r = s ? s->reason() : auth::FailureReason::None;
  std::string j = event_json(q, a, s);
  if (std::string_view(failure) == "timeout") {
    j += ",\"reason\":\"timeout\",\"reasonCode\":null";
  } else {
    j += ",\"reason\":" + json_str(auth::failure_reason_name(r)) +
         ",\"reasonCode\":" + std::to_string(unsigned(r));
  }
  j += ",\"failure\":" + json_str(failure) + ",\"detail\":" +
       json_str(s ? s->detail() : std::string("no message from the host")) + "}";
  target_of(q).events().emit("auth-failure", std::move(j));
}

void authenticated(Qpair* q, QpairAuth& a) {
  emit_success(q, a);
  end_transaction(q, a);
  // Before the response goes out, so the host's next command finds the
  // queue enabled.
  if (q->state() == QpairState::Authenticating) {
    q->set_state(QpairState::Enabled);
    if (q->qid == 0 && q->ctrlr) q->ctrlr->keep_alive();  // KATO starts now (see auth_connect)
  }
}

void on_timeout(Qpair* q) {
  QpairAuth& a = *q->auth;
  const bool verdict_pending =
      a.session && a.session->step() == ControllerSession::Step::Failure1;
  emit_failure(q, a, "timeout");
  end_transaction(q, a);
  // An unauthenticated queue, or a failed re-authentication whose verdict
  // the host never fetched, ends. A re-authentication the host abandoned
  // half way is not fatal: the queue had authenticated before.
  if (q->state() == QpairState::Authenticating || verdict_pending) {
    qpair_disconnect(q, "DH-HMAC-CHAP authentication timed out");
  }
}

void exec_send(Request* req, QpairAuth& a, uint32_t tl) {
  Qpair* q = req->qpair;
  std::vector<uint8_t> msg(tl);
  if (req->copy_from_iov(msg.data(), tl) != tl) {
    request_complete_status(req, GenericSc::DataSglLengthInvalid);
    return;
  }
  Outcome o = a.session->on_send(msg);
  switch (o) {
    case Outcome::Continue:
      arm_timer(q, a);
      request_complete_status(req, GenericSc::Success);
      return;
    case Outcome::Authenticated:
      authenticated(q, a);
      request_complete_status(req, GenericSc::Success);
      return;
    case Outcome::Failed:
      // The host's AUTH_Failure2: confirm its Auth Send, then end the queue
      // (the completion is queued first and flushed by the disconnect).
      emit_failure(q, a, "AUTH_Failure2");
      end_transaction(q, a);
      request_complete_status(req, GenericSc::Success);
      qpair_disconnect(q, "the host rejected the controller (AUTH_Failure2)");
      return;
  }
}

void exec_recv(Request* req, QpairAuth& a, uint32_t al) {
  Qpair* q = req->qpair;
  uint8_t buf[auth::kMaxMessageLength];
  const size_t cap = al < sizeof buf ? al : sizeof buf;
  Outcome o = Outcome::Continue;
  int n = a.session->on_recv({buf, cap}, &o);
  if (n < 0) {
    // Not even AUTH_Failure1 fits: fail the command itself.
    emit_failure(q, a, "AUTH_Failure1");
    end_transaction(q, a);
    request_complete_status(req, GenericSc::InvalidField);
    qpair_disconnect(q, "DH-HMAC-CHAP authentication failed");
    return;
  }
  switch (o) {
    case Outcome::Continue:
      arm_timer(q, a);
      complete_with_data(req, buf, size_t(n));
      return;
    case Outcome::Authenticated:
      authenticated(q, a);
      complete_with_data(req, buf, size_t(n));
      return;
    case Outcome::Failed:
      // Lesson 1: AUTH_Failure1 is this command's data, completed through
      // the normal path; the disconnect starts only once that response is
      // queued, and the transport flushes it before closing.
      emit_failure(q, a, "AUTH_Failure1");
      end_transaction(q, a);
      complete_with_data(req, buf, size_t(n));
      qpair_disconnect(q, "DH-HMAC-CHAP authentication failed");
      return;
  }
}

}  // namespace

uint16_t auth_connect(Qpair* q, const Subsystem& s, const std::string& hostnqn) {
  if (!s.host_keys(hostnqn).host) return 0;
  QpairAuth& a = state_of(q);
  a.reauth = false;
  a.start_ns = now_ns();
  a.timeout_ms = target_of(q).auth_policy()->timeout_ms;
  arm_timer(q, a);
  // A host keeps the controller alive only once it is up, and a slow host
  // may spend longer than KATO on the DH computation (a virtual machine on
  // ffdhe8192): the authentication timeout bounds this phase instead, and
  // the keep-alive timer starts when it succeeds. The admin queue lives on
  // the controller's reactor: this one.
  if (q->qid == 0 && q->ctrlr && q->ctrlr->keep_alive_timer) {
    q->reactor().cancel_timer(q->ctrlr->keep_alive_timer);
    q->ctrlr->keep_alive_timer = 0;
  }
  return kAuthreqAtr;
}

void auth_exec(Request* req) {
  Qpair* q = req->qpair;
  auto cmd = sqe_as<AuthSendCmd>(req->cmd);  // AuthRecvCmd has the same layout
  const bool send = FabricsType(req->cmd.fctype()) == FabricsType::AuthSend;
  if (cmd.spsp0 != auth::kSpsp0 || cmd.spsp1 != auth::kSpsp1) {
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  // TL / AL must describe exactly the data the command carries.
  const uint32_t len = cmd.tl;
  const XferDir want = send ? XferDir::HostToCtrl : XferDir::CtrlToHost;
  if (len == 0 || len != req->length || req->xfer != want) {
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  if (!q->ctrlr) {
    request_complete_status(req, GenericSc::CommandSequenceError);
    return;
  }
  QpairAuth& a = state_of(q);
  if (!a.session) start_transaction(q, a);
  if (send) {
    exec_send(req, a, len);
  } else {
    exec_recv(req, a, len);
  }
}

}  // namespace nvmf
