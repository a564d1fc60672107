// Fabrics commands (opcode 7Fh): Connect, Property Get/Set, Authentication
// Send/Receive, Disconnect.
//
// Connect on an admin queue creates the controller on this reactor (which
// becomes the controller's reactor). Connect on an I/O queue attaches the
// queue to a controller that may live on another reactor: the request goes
// there and back by message, and on return the qpair is looked up again by
// uid, because it may have disconnected in the meantime.
#include <cstddef>
#include <cstring>

#include "auth/qpair_auth.h"
#include "core/controller.h"
#include "core/events.h"
#include "core/target.h"
#include "nvme/exec.h"
#include "nvme/handlers.h"
#include "transport/transport.h"

namespace nvmf {

namespace {

// IPO values of Connect Invalid Parameters: byte offsets of the bad field.
constexpr uint16_t kIpoQid = offsetof(FabricsConnectCmd, qid);
constexpr uint16_t kIpoSqsize = offsetof(FabricsConnectCmd, sqsize);
constexpr uint16_t kIpoHostid = offsetof(FabricsConnectData, hostid);
constexpr uint16_t kIpoCntlid = offsetof(FabricsConnectData, cntlid);
constexpr uint16_t kIpoSubnqn = offsetof(FabricsConnectData, subnqn);
constexpr uint16_t kIpoHostnqn = offsetof(FabricsConnectData, hostnqn);

// A discovery controller whose host asked for no keep alive would live as
// long as its connection; like Linux, give it a generous timeout instead.
constexpr uint32_t kDiscoveryDefaultKatoMs = 120000;

struct ConnectArgs {
  FabricsConnectCmd cmd{};
  FabricsConnectData data{};
  std::string subnqn;
  std::string hostnqn;
};

void fail_connect(Request* req, Status s, ConnectParamIn where, uint16_t ipo) {
  req->cpl.dw0 = connect_rsp_invalid_param(where, ipo);
  request_complete_status(req, s);
}

void fail_param(Request* req, ConnectParamIn where, uint16_t ipo) {
  fail_connect(req, FabricsSc::ConnectInvalidParameters, where, ipo);
}

// An NQN field must be NUL terminated inside its 256 bytes and hold 1..223
// characters.
bool read_nqn(const char (&field)[kNqnFieldLen], std::string* out) {
  if (!std::memchr(field, 0, kNqnFieldLen)) return false;
  std::string_view v = bounded_str(field, kNqnFieldLen);
  if (v.empty() || v.size() > kNqnMaxLen) return false;
  out->assign(v);
  return true;
}

// Decodes and validates the parts of a Connect that need no lookup.
// Completes req and returns false on error.
bool parse_connect(Request* req, ConnectArgs* a) {
  a->cmd = sqe_as<FabricsConnectCmd>(req->cmd);
  if (a->cmd.recfmt != 0) {
    request_complete_status(req, FabricsSc::ConnectIncompatibleFormat);
    return false;
  }
  if (req->xfer != XferDir::HostToCtrl || req->length != sizeof(FabricsConnectData) ||
      req->copy_from_iov(&a->data, sizeof a->data) != sizeof a->data) {
    request_complete_status(req, GenericSc::DataSglLengthInvalid);
    return false;
  }
  if (!read_nqn(a->data.subnqn, &a->subnqn)) {
    fail_param(req, ConnectParamIn::Data, kIpoSubnqn);
    return false;
  }
  if (!read_nqn(a->data.hostnqn, &a->hostnqn)) {
    fail_param(req, ConnectParamIn::Data, kIpoHostnqn);
    return false;
  }
  return true;
}

// Whether the subsystem is offered on the listener this qpair came in on.
// Unknown local address: we cannot tell, so we do not refuse.
bool arrived_on_allowed_listener(Qpair* q, const Subsystem& s) {
  std::string addr;
  uint16_t port = 0;
  if (!split_host_port(q->local, &addr, &port)) return true;
  // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6 addresses.
  if (addr.rfind("::ffff:", 0) == 0 && addr.find('.') != std::string::npos) addr.erase(0, 7);
  ListenAddress la;
  la.transport = q->transport().ops->name;
  la.port = port;
  la.ipv6 = addr.find(':') != std::string::npos;
  la.address = addr;
  if (s.listener_allowed(la)) return true;
  // A listener on a wildcard address accepts on every local address.
  la.address = la.ipv6 ? "::" : "0.0.0.0";
  if (s.listener_allowed(la)) return true;
  la.address = "::";  // dual-stack wildcard serving IPv4 too
  return s.listener_allowed(la);
}

// Finds the subsystem and checks that this host may use it here. Completes
// req and returns null on error.
std::shared_ptr<Subsystem> connect_subsystem(Request* req, const ConnectArgs& a) {
  Qpair* q = req->qpair;
  std::shared_ptr<Subsystem> s = q->transport().target.find_subsystem(a.subnqn);
  bool usable = s && s->state() != SubsystemState::Inactive &&
                s->state() != SubsystemState::Deactivating;
  // The discovery subsystem is reachable on every listener, by every host.
  if (usable && s->type() == SubsystemType::Nvm && !arrived_on_allowed_listener(q, *s)) {
    usable = false;
  }
  if (!usable) {
    fail_param(req, ConnectParamIn::Data, kIpoSubnqn);
    return nullptr;
  }
  if (!s->host_allowed(a.hostnqn)) {
    fail_connect(req, FabricsSc::ConnectInvalidHost, ConnectParamIn::Data, kIpoHostnqn);
    return nullptr;
  }
  return s;
}

// Authentication hook: the AUTHREQ bits to return for this Connect. Nonzero
// puts the queue in Authenticating until DH-HMAC-CHAP succeeds. The auth
// layer decides from the host's keys in the subsystem.
uint16_t connect_authreq(Qpair* q, const Subsystem& s, const std::string& hostnqn) {
  return auth_connect(q, s, hostnqn);
}

void emit_host_connect(Qpair* q, const Subsystem& s, uint16_t cntlid) {
  std::string json = "{\"subnqn\":" + json_str(s.nqn()) + ",\"hostnqn\":" + json_str(q->hostnqn) +
                     ",\"cntlid\":" + std::to_string(cntlid) + ",\"qid\":" + std::to_string(q->qid) +
                     ",\"peer\":" + json_str(q->peer) +
                     ",\"transport\":" + json_str(q->transport().ops->name) + "}";
  q->transport().target.events().emit("host-connect", std::move(json));
}

// The Connect succeeded: the queue is bound to its controller (q->ctrlr).
void queue_connected(Request* req, const ConnectArgs& a, const Subsystem& s, uint16_t cntlid) {
  Qpair* q = req->qpair;
  // The Connect itself was the queue's first entry.
  q->sqhd = uint16_t(1 % q->sq_size);
  q->sq_flow_control = !(a.cmd.cattr & kCattrDisableSqFlow);
  q->connected_ns = now_ns();
  uint16_t authreq = connect_authreq(q, s, a.hostnqn);
  q->set_state(authreq ? QpairState::Authenticating : QpairState::Enabled);
  req->cpl.dw0 = connect_rsp_success(cntlid, authreq);
  emit_host_connect(q, s, cntlid);
  request_complete_status(req, GenericSc::Success);
}

// Forgets a Connect that failed, so the host may try again on this queue.
void connect_abandoned(Qpair* q) {
  q->qid = 0;
  q->sq_size = 0;
  q->hostnqn.clear();
}

void connect_admin(Request* req, const ConnectArgs& a, std::shared_ptr<Subsystem> s) {
  Qpair* q = req->qpair;
  if (a.data.cntlid != kCntlidDynamic) {  // we implement the dynamic model only
    fail_param(req, ConnectParamIn::Data, kIpoCntlid);
    return;
  }
  uint32_t max_depth = q->transport().opts.max_admin_queue_depth;
  if (a.cmd.sqsize == 0 || uint32_t(a.cmd.sqsize) + 1 > max_depth) {
    fail_param(req, ConnectParamIn::Command, kIpoSqsize);
    return;
  }
  auto c = std::make_shared<Controller>(s, q, a.hostnqn, a.data.hostid);
  uint16_t cntlid = s->register_controller(c);
  if (!cntlid) {
    request_complete_status(req, FabricsSc::ConnectControllerBusy, false);
    return;
  }
  c->cntlid = cntlid;
  c->kato_ms = a.cmd.kato;
  if (s->type() == SubsystemType::Discovery && c->kato_ms == 0) c->kato_ms = kDiscoveryDefaultKatoMs;
  q->qid = 0;
  q->sq_size = uint32_t(a.cmd.sqsize) + 1;
  q->hostnqn = a.hostnqn;
  q->ctrlr = c;
  c->keep_alive();
  queue_connected(req, a, *s, cntlid);
}

// What an I/O Connect carries to the controller's reactor and back.
struct IoConnect {
  ConnectArgs args;
  std::shared_ptr<Subsystem> subsys;
  std::shared_ptr<PollGroup> group;  // the qpair's
  uint64_t uid = 0;                  // the qpair's
  // Dereferenced only back on the qpair's reactor, after find_qpair(uid)
  // proved the qpair alive: a live qpair never frees an uncompleted request.
  Request* req = nullptr;
  Status status;
  uint32_t dw0 = 0;
  uint16_t cntlid = 0;
};

// Back on the qpair's reactor.
void io_connect_done(const std::shared_ptr<Controller>& c, const IoConnect& x) {
  Qpair* q = x.group->find_qpair(x.uid);
  if (!q) {
    // Gone meanwhile: undo the attach, nobody is left to answer.
    if (x.status.ok()) {
      c->group().reactor().post([c, qid = x.args.cmd.qid, uid = x.uid] {
        c->detach_io_qpair(qid, uid);
      });
    }
    return;
  }
  Request* req = x.req;
  if (!x.status.ok()) {
    connect_abandoned(q);
    req->cpl.dw0 = x.dw0;
    request_complete_status(req, x.status);
    return;
  }
  // From here qpair_destroyed() detaches the queue.
  q->ctrlr = c;
  if (q->state() != QpairState::Connecting) {
    request_complete_status(req, GenericSc::AbortedSqDeletion, false);
    return;
  }
  queue_connected(req, x.args, *x.subsys, x.cntlid);
}

// On the controller's reactor.
void io_connect_on_ctrlr(const std::shared_ptr<Controller>& c, IoConnect x) {
  const FabricsConnectData& d = x.args.data;
  bool alive = c->admin_qpair && c->admin_qpair->state() == QpairState::Enabled;
  if (!alive || c->hostnqn != x.args.hostnqn) {
    x.status = FabricsSc::ConnectInvalidParameters;
    x.dw0 = connect_rsp_invalid_param(ConnectParamIn::Data, kIpoCntlid);
  } else if (std::memcmp(c->hostid, d.hostid, sizeof d.hostid) != 0) {
    x.status = FabricsSc::ConnectInvalidParameters;
    x.dw0 = connect_rsp_invalid_param(ConnectParamIn::Data, kIpoHostid);
  } else {
    x.status = c->attach_io_qpair(x.args.cmd.qid, uint32_t(x.args.cmd.sqsize) + 1, x.group, x.uid);
    if (!x.status.ok()) x.dw0 = connect_rsp_invalid_param(ConnectParamIn::Command, kIpoQid);
  }
  x.cntlid = c->cntlid;
  std::shared_ptr<PollGroup> g = x.group;
  bool ok = x.status.ok();
  uint16_t qid = x.args.cmd.qid;
  uint64_t uid = x.uid;
  if (!g->reactor().post([c, x] { io_connect_done(c, x); }) && ok) {
    c->detach_io_qpair(qid, uid);
  }
}

void connect_io(Request* req, const ConnectArgs& a, std::shared_ptr<Subsystem> s) {
  Qpair* q = req->qpair;
  if (s->type() == SubsystemType::Discovery) {  // no I/O queues there
    fail_param(req, ConnectParamIn::Command, kIpoQid);
    return;
  }
  if (a.cmd.sqsize == 0 || uint32_t(a.cmd.sqsize) + 1 > q->max_queue_depth) {
    fail_param(req, ConnectParamIn::Command, kIpoSqsize);
    return;
  }
  std::shared_ptr<Controller> c = s->find_controller(a.data.cntlid);
  if (!c) {
    fail_param(req, ConnectParamIn::Data, kIpoCntlid);
    return;
  }
  // Marks the Connect as in progress (see exec_connect).
  q->qid = a.cmd.qid;
  q->sq_size = uint32_t(a.cmd.sqsize) + 1;
  q->hostnqn = a.hostnqn;
  IoConnect x;
  x.args = a;
  x.subsys = std::move(s);
  x.group = q->group_ref();
  x.uid = q->uid();
  x.req = req;
  if (!c->group().reactor().post([c, x] { io_connect_on_ctrlr(c, x); })) {
    connect_abandoned(q);
    request_complete_status(req, FabricsSc::ConnectControllerBusy, false);
  }
}

void exec_connect(Request* req) {
  Qpair* q = req->qpair;
  // One Connect per queue; sq_size != 0 means one is already in progress.
  if (q->state() != QpairState::Connecting || q->sq_size != 0) {
    request_complete_status(req, GenericSc::CommandSequenceError);
    return;
  }
  ConnectArgs a;
  if (!parse_connect(req, &a)) return;
  std::shared_ptr<Subsystem> s = connect_subsystem(req, a);
  if (!s) return;
  if (a.cmd.qid == 0) {
    connect_admin(req, a, std::move(s));
  } else {
    connect_io(req, a, std::move(s));
  }
}

// ---------------------------------------------------------------------------
// Properties.

// CC written by the host: enable, disable (reset) and shutdown.
void write_cc(Controller& c, uint32_t v) {
  uint32_t old = c.cc;
  c.cc = v;
  if (cc::en(v) && !cc::en(old)) {
    // Queue entry sizes and page size must be what we support; a
    // discovery controller has no I/O queues, so its entry sizes do not
    // matter.
    bool nvm = c.subsystem().type() == SubsystemType::Nvm;
    bool ok = cc::css(v) == 0 && cc::mps(v) == 0 && cc::ams(v) == 0 &&
              (!nvm || (cc::iosqes(v) == cc::kIosqes && cc::iocqes(v) == cc::kIocqes));
    c.csts = ok ? (c.csts | csts::kRdy) & ~csts::kCfs : csts::kCfs;
  } else if (!cc::en(v) && cc::en(old)) {
    // Controller reset: not ready, shutdown status cleared.
    c.csts = 0;
  }
  if (cc::shn(v) != cc::kShnNone && cc::shn(old) == cc::kShnNone) {
    // Nothing is cached in the controller itself: shutdown completes at once.
    c.csts = csts::with_shst(c.csts, csts::kShstComplete);
  } else if (cc::shn(v) == cc::kShnNone && cc::shn(old) != cc::kShnNone) {
    c.csts = csts::with_shst(c.csts, csts::kShstNormal);
  }
}

// Property commands belong on the admin queue of an enabled queue pair.
bool property_allowed(Request* req) {
  Qpair* q = req->qpair;
  if (q->state() == QpairState::Authenticating) {
    request_complete_status(req, FabricsSc::AuthRequired);
    return false;
  }
  if (q->state() != QpairState::Enabled || !q->ctrlr) {
    request_complete_status(req, GenericSc::CommandSequenceError);
    return false;
  }
  if (q->qid != 0) {
    request_complete_status(req, GenericSc::InvalidOpcode);
    return false;
  }
  return true;
}

void exec_property_get(Request* req) {
  if (!property_allowed(req)) return;
  Controller& c = *req->qpair->ctrlr;
  auto cmd = sqe_as<PropertyGetCmd>(req->cmd);
  bool wide = cmd.is_8_bytes();
  uint64_t v;
  // Each property has one size; a mismatched size is an invalid field.
  switch (PropOffset(cmd.ofst)) {
    case PropOffset::Cap: v = c.cap; break;
    case PropOffset::Vs: v = c.vs; break;
    case PropOffset::Cc: v = c.cc; break;
    case PropOffset::Csts: v = c.csts; break;
    default:
      request_complete_status(req, GenericSc::InvalidField);
      return;
  }
  if (wide != (PropOffset(cmd.ofst) == PropOffset::Cap)) {
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  req->cpl.set_u64(v);
  request_complete_status(req, GenericSc::Success);
}

void exec_property_set(Request* req) {
  if (!property_allowed(req)) return;
  auto cmd = sqe_as<PropertySetCmd>(req->cmd);
  // CC is the only writable property we have (no NVM Subsystem Reset).
  if (PropOffset(cmd.ofst) != PropOffset::Cc || cmd.is_8_bytes()) {
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  write_cc(*req->qpair->ctrlr, uint32_t(cmd.value));
  request_complete_status(req, GenericSc::Success);
}

// ---------------------------------------------------------------------------
// Authentication and Disconnect.

// DH-HMAC-CHAP: the auth layer (auth/qpair_auth.cc) runs the transaction,
// both while the queue is Authenticating and for a host-initiated
// re-authentication on an enabled queue.
void exec_auth(Request* req) {
  Qpair* q = req->qpair;
  if (q->state() != QpairState::Authenticating && q->state() != QpairState::Enabled) {
    request_complete_status(req, GenericSc::CommandSequenceError);
    return;
  }
  auto cmd = sqe_as<AuthSendCmd>(req->cmd);  // same layout as AuthRecvCmd
  if (cmd.secp != kSecpDhchap) {
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  auth_exec(req);
}

void exec_disconnect(Request* req) {
  Qpair* q = req->qpair;
  if (q->state() != QpairState::Enabled && q->state() != QpairState::Authenticating) {
    request_complete_status(req, GenericSc::CommandSequenceError);
    return;
  }
  // The response is queued first; the transport's disconnect flushes it and
  // confirms delivery before the connection closes.
  request_complete_status(req, GenericSc::Success);
  qpair_disconnect(q, "host disconnect");
}

}  // namespace

void exec_fabrics(Request* req) {
  switch (FabricsType(req->cmd.fctype())) {
    case FabricsType::Connect: exec_connect(req); return;
    case FabricsType::PropertyGet: exec_property_get(req); return;
    case FabricsType::PropertySet: exec_property_set(req); return;
    case FabricsType::AuthSend:
    case FabricsType::AuthRecv: exec_auth(req); return;
    case FabricsType::Disconnect: exec_disconnect(req); return;
  }
  // Before Connect only Connect is meaningful; afterwards an unknown type is
  // an unknown command.
  Status s = req->qpair->state() == QpairState::Connecting ? Status(GenericSc::CommandSequenceError)
                                                           : Status(GenericSc::InvalidOpcode);
  request_complete_status(req, s);
}

}  // namespace nvmf
