// Control-plane methods of NativeTarget: each validates its arguments on the
// main thread, then runs the blocking Target call on the threadpool.
#include <napi.h>

#include "addon/args.h"
#include "addon/auth_wrap.h"
#include "addon/ctl_worker.h"
#include "addon/fault_args.h"
#include "addon/target_wrap.h"
#include "core/controller.h"
#include "core/target.h"

namespace nvmf {

namespace {

OpResult from_ctl(int rc, const CtlError& e) {
  if (rc >= 0) return OpResult{};
  return OpResult::error(e.code.empty() ? "ERR_INTERNAL" : e.code, e.message, e.err ? e.err : -rc);
}

Napi::Object bdev_info_js(Napi::Env env, const BdevInfo& b) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", b.name);
  o.Set("type", b.type);
  if (!b.path.empty()) o.Set("path", b.path);
  if (!b.base.empty()) o.Set("base", b.base);
  o.Set("blockSize", Napi::Number::New(env, b.block_size));
  o.Set("numBlocks", Napi::Number::New(env, double(b.num_blocks)));
  o.Set("sizeBytes", Napi::Number::New(env, double(b.num_blocks) * b.block_size));
  o.Set("direct", Napi::Boolean::New(env, b.direct));
  return o;
}

bool parse_listen(Napi::Object o, ListenAddress* a) {
  uint64_t port = 4420;
  if (!get_str(o, "transport", &a->transport, true)) return false;
  if (!get_str(o, "address", &a->address, true)) return false;
  if (!get_uint(o, "port", 65535, &port, false)) return false;
  if (!get_bool(o, "ipv6", &a->ipv6)) return false;
  a->port = uint16_t(port);
  return true;
}

Napi::Object listen_js(Napi::Env env, const ListenAddress& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("transport", a.transport);
  o.Set("address", a.address);
  o.Set("port", Napi::Number::New(env, a.port));
  return o;
}

}  // namespace

#define LIVE_OR_REJECT(what)                                      \
  Napi::Env env = info.Env();                                     \
  if (!handle_ || handle_->destroy_started || !handle_->target) { \
    return CtlWorker::Reject(                                     \
        env, OpResult::error("ERR_DESTROYED", std::string("target is destroyed; cannot ") + what)); \
  }                                                               \
  std::shared_ptr<Target> t = handle_->target;

Napi::Value TargetWrap::CreateBdev(const Napi::CallbackInfo& info) {
  LIVE_OR_REJECT("create a bdev");
  if (!info[0].IsObject()) return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "bdev options must be an object"));
  Napi::Object o = info[0].As<Napi::Object>();
  BdevInfo b;
  uint64_t bs = 512, nb = 0;
  if (!get_str(o, "name", &b.name, true) || !get_str(o, "type", &b.type, true) ||
      !get_str(o, "path", &b.path, false) || !get_uint(o, "blockSize", 65536, &bs, false) ||
      !get_uint(o, "numBlocks", uint64_t(1) << 52, &nb, false) || !get_bool(o, "direct", &b.direct)) {
    return env.Undefined();
  }
  FaultConfig faults;  // type 'fault': the bdev it wraps and its initial faults
  if (b.type == "fault" && (!get_str(o, "base", &b.base, true) || !parse_faults(o, &faults))) {
    return env.Undefined();
  }
  // uring without an explicit block size: the device's own (files: 512).
  if (b.type == "uring" && o.Get("blockSize").IsUndefined()) bs = 0;
  b.block_size = uint32_t(bs);
  b.num_blocks = nb;
  return CtlWorker::Run(env, "nvmf:createBdev", [t, b, faults]() {
    CtlError e;
    int rc = t->create_bdev(b, &e, &faults);
    OpResult r = from_ctl(rc, e);
    if (rc == 0) {
      auto made = t->find_bdev(b.name);
      BdevInfo got = made ? made->info() : b;
      r.value = [got](Napi::Env env) -> Napi::Value { return bdev_info_js(env, got); };
    }
    return r;
  });
}

Napi::Value TargetWrap::DeleteBdev(const Napi::CallbackInfo& info) {
  LIVE_OR_REJECT("delete a bdev");
  if (!info[0].IsString()) return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "name must be a string"));
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return CtlWorker::Run(env, "nvmf:deleteBdev", [t, name]() {
    CtlError e;
    return from_ctl(t->delete_bdev(name, &e), e);
  });
}

Napi::Value TargetWrap::CreateSubsystem(const Napi::CallbackInfo& info) {
  LIVE_OR_REJECT("create a subsystem");
  if (!info[0].IsObject()) return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "subsystem options must be an object"));
  Napi::Object o = info[0].As<Napi::Object>();
  SubsystemConfig c;
  uint64_t maxns = c.max_namespaces;
  if (!get_str(o, "nqn", &c.nqn, true) || !get_str(o, "serial", &c.serial, false) ||
      !get_str(o, "model", &c.model, false) || !get_bool(o, "allowAnyHost", &c.allow_any_host) ||
      !get_uint(o, "maxNamespaces", 1024, &maxns, false)) {
    return env.Undefined();
  }
  c.max_namespaces = uint32_t(maxns);
  return CtlWorker::Run(env, "nvmf:createSubsystem", [t, c]() {
    CtlError e;
    return from_ctl(t->create_subsystem(c, &e), e);
  });
}

Napi::Value TargetWrap::DeleteSubsystem(const Napi::CallbackInfo& info) {
  LIVE_OR_REJECT("delete a subsystem");
  if (!info[0].IsString()) return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "nqn must be a string"));
  std::string nqn = info[0].As<Napi::String>().Utf8Value();
  return CtlWorker::Run(env, "nvmf:deleteSubsystem", [t, nqn]() {
    CtlError e;
    return from_ctl(t->delete_subsystem(nqn, &e), e);
  });
}

Napi::Value TargetWrap::AddNamespace(const Napi::CallbackInfo& info) {
  LIVE_OR_REJECT("add a namespace");
  if (!info[0].IsString() || !info[1].IsObject()) {
    return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "addNamespace(nqn, options)"));
  }
  std::string nqn = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  std::string bdev;
  uint64_t nsid = 0;
  Namespace ids;
  if (!get_str(o, "bdev", &bdev, true) || !get_uint(o, "nsid", 0xfffffffe, &nsid, false) ||
      !get_bytes(o, "uuid", 16, ids.uuid, &ids.has_uuid) ||
      !get_bytes(o, "nguid", 16, ids.nguid, &ids.has_nguid) ||
      !get_bytes(o, "eui64", 8, ids.eui64, &ids.has_eui64)) {
    return env.Undefined();
  }
  return CtlWorker::Run(env, "nvmf:addNamespace", [t, nqn, bdev, nsid, ids]() {
    CtlError e;
    uint32_t got = 0;
    int rc = t->add_namespace(nqn, bdev, uint32_t(nsid), ids, &got, &e);
    OpResult r = from_ctl(rc, e);
    if (rc == 0) r.value = [got](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, got); };
    return r;
  });
}

Napi::Value TargetWrap::RemoveNamespace(const Napi::CallbackInfo& info) {
  LIVE_OR_REJECT("remove a namespace");
  if (!info[0].IsString() || !info[1].IsNumber()) {
    return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "removeNamespace(nqn, nsid)"));
  }
  std::string nqn = info[0].As<Napi::String>().Utf8Value();
  uint32_t nsid = info[1].As<Napi::Number>().Uint32Value();
  return CtlWorker::Run(env, "nvmf:removeNamespace", [t, nqn, nsid]() {
    CtlError e;
    return from_ctl(t->remove_namespace(nqn, nsid, &e), e);
  });
}

// hostOp(nqn, op, arg, keys): op = 'add' | 'remove' host NQN, 'allowAny'
// boolean, 'setKeys' host NQN; keys = { dhchapKey, dhchapCtrlKey } (DHHC-1
// strings, parsed here on the main thread) for 'add' and 'setKeys'.
Napi::Value TargetWrap::HostOp(const Napi::CallbackInfo& info) {
  LIVE_OR_REJECT("change the allowed hosts");
  if (!info[0].IsString() || !info[1].IsString()) {
    return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "hostOp(nqn, op, arg)"));
  }
  std::string nqn = info[0].As<Napi::String>().Utf8Value();
  std::string op = info[1].As<Napi::String>().Utf8Value();
  std::string host = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  bool flag = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  auth::HostKeys keys;
  if (info.Length() > 3 && info[3].IsObject()) {
    Napi::Object k = info[3].As<Napi::Object>();
    if (!key_arg(env, k.Get("dhchapKey"), "dhchapKey", &keys.host) ||
        !key_arg(env, k.Get("dhchapCtrlKey"), "dhchapCtrlKey", &keys.ctrl)) {
      return env.Undefined();
    }
    if (keys.ctrl && !keys.host) {
      return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT",
                                                    "dhchapCtrlKey needs a dhchapKey too: a host "
                                                    "authenticates itself before the controller"));
    }
  }
  return CtlWorker::Run(env, "nvmf:hostOp", [t, nqn, op, host, flag, keys]() {
    if (!t->running()) return OpResult::error("ERR_DESTROYED", "target is destroyed; cannot change hosts");
    auto s = t->find_subsystem(nqn);
    if (!s || s->type() == SubsystemType::Discovery) {
      return OpResult::error("ERR_NOT_FOUND", "subsystem " + nqn + " does not exist");
    }
    std::string err;
    int rc = 0;
    if (op == "add") rc = s->add_host(HostEntry{host, keys}, &err);
    else if (op == "setKeys") rc = s->set_host_keys(host, keys, &err);
    else if (op == "remove") rc = s->remove_host(host, &err);
    else if (op == "allowAny") s->set_allow_any_host(flag);
    else return OpResult::error("ERR_INVALID_ARGUMENT", "unknown host operation " + op);
    if (rc == -EEXIST) return OpResult::error("ERR_ALREADY_EXISTS", err);
    if (rc < 0) return OpResult::error("ERR_NOT_FOUND", err);
    return OpResult{};
  });
}

Napi::Value TargetWrap::Listen(const Napi::CallbackInfo& info) {
  LIVE_OR_REJECT("listen");
  ListenAddress a;
  if (!info[0].IsObject()) return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "listen options must be an object"));
  if (!parse_listen(info[0].As<Napi::Object>(), &a)) return env.Undefined();
  bool stop = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  return CtlWorker::Run(env, "nvmf:listen", [t, a, stop]() {
    CtlError e;
    return from_ctl(stop ? t->stop_listen(a, &e) : t->listen(a, &e), e);
  });
}

// subsystemListener(nqn, addr, remove)
Napi::Value TargetWrap::SubsystemListener(const Napi::CallbackInfo& info) {
  LIVE_OR_REJECT("change subsystem listeners");
  ListenAddress a;
  if (!info[0].IsString() || !info[1].IsObject()) {
    return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "subsystemListener(nqn, address, remove)"));
  }
  std::string nqn = info[0].As<Napi::String>().Utf8Value();
  if (!parse_listen(info[1].As<Napi::Object>(), &a)) return env.Undefined();
  bool remove = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  return CtlWorker::Run(env, "nvmf:subsystemListener", [t, nqn, a, remove]() {
    if (!t->running()) return OpResult::error("ERR_DESTROYED", "target is destroyed; cannot change listeners");
    auto s = t->find_subsystem(nqn);
    if (!s || s->type() == SubsystemType::Discovery) {
      return OpResult::error("ERR_NOT_FOUND", "subsystem " + nqn + " does not exist");
    }
    std::string err;
    int rc = remove ? s->remove_listener(a, &err) : s->add_listener(a, &err);
    if (rc == -EEXIST) return OpResult::error("ERR_ALREADY_EXISTS", err);
    if (rc < 0) return OpResult::error("ERR_NOT_FOUND", err);
    return OpResult{};
  });
}

// Synchronous snapshot of the configuration (locks only, no reactor calls).
Napi::Value TargetWrap::Config(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto t = live_target(env, "read the configuration");
  if (!t) return env.Undefined();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array bdevs = Napi::Array::New(env);
  uint32_t i = 0;
  for (auto& b : t->bdevs()) bdevs.Set(i++, bdev_info_js(env, b));
  out.Set("bdevs", bdevs);
  Napi::Array ls = Napi::Array::New(env);
  i = 0;
  for (auto& a : t->listeners()) ls.Set(i++, listen_js(env, a));
  out.Set("listeners", ls);
  Napi::Array subs = Napi::Array::New(env);
  i = 0;
  for (auto& s : t->subsystems()) {
    Napi::Object so = Napi::Object::New(env);
    so.Set("nqn", s->nqn());
    so.Set("type", s->type() == SubsystemType::Discovery ? "discovery" : "nvm");
    so.Set("state", subsystem_state_name(s->state()));
    so.Set("serial", s->config().serial);
    so.Set("model", s->config().model);
    so.Set("maxNamespaces", Napi::Number::New(env, s->config().max_namespaces));
    so.Set("allowAnyHost", Napi::Boolean::New(env, s->allow_any_host()));
    Napi::Array hosts = Napi::Array::New(env);
    Napi::Array host_auth = Napi::Array::New(env);
    uint32_t j = 0;
    for (auto& h : s->hosts()) {
      // Whether keys are set, never the keys.
      Napi::Object ha = Napi::Object::New(env);
      ha.Set("nqn", h.nqn);
      ha.Set("dhchapKey", Napi::Boolean::New(env, h.keys.host != nullptr));
      ha.Set("dhchapCtrlKey", Napi::Boolean::New(env, h.keys.ctrl != nullptr));
      host_auth.Set(j, ha);
      hosts.Set(j++, h.nqn);
    }
    so.Set("hosts", hosts);
    so.Set("hostAuth", host_auth);
    Napi::Array sl = Napi::Array::New(env);
    j = 0;
    for (auto& a : s->listeners()) sl.Set(j++, listen_js(env, a));
    so.Set("listeners", sl);
    Napi::Array nss = Napi::Array::New(env);
    j = 0;
    auto table = s->ns_table();
    for (uint32_t nsid = 1; nsid <= table->max_nsid(); nsid++) {
      auto ns = table->get(nsid);
      if (!ns) continue;
      Napi::Object no = Napi::Object::New(env);
      no.Set("nsid", Napi::Number::New(env, nsid));
      no.Set("bdev", ns->bdev->info().name);
      if (ns->has_uuid) no.Set("uuid", Napi::Buffer<uint8_t>::Copy(env, ns->uuid, 16));
      if (ns->has_nguid) no.Set("nguid", Napi::Buffer<uint8_t>::Copy(env, ns->nguid, 16));
      nss.Set(j++, no);
    }
    so.Set("namespaces", nss);
    so.Set("controllers", Napi::Number::New(env, double(s->controllers().size())));
    subs.Set(i++, so);
  }
  out.Set("subsystems", subs);
  return out;
}

// stats(): per poll group, its reactor counters and every qpair.
Napi::Value TargetWrap::Stats(const Napi::CallbackInfo& info) {
  LIVE_OR_REJECT("read stats");
  struct QpairRow {
    uint64_t uid;
    uint16_t qid;
    std::string state, subnqn, hostnqn, peer, transport;
    uint16_t cntlid;
    QpairStats st;
  };
  struct GroupRow {
    int index;
    pid_t tid;
    uint64_t iterations, sleeps, messages;
    int active;
    std::vector<QpairRow> qpairs;
  };
  return CtlWorker::Run(env, "nvmf:stats", [t]() {
    auto rows = std::make_shared<std::vector<GroupRow>>();
    for (int i = 0; i < t->group_count(); i++) {
      auto g = t->group(i);
      GroupRow gr{i, g->reactor().tid(), g->reactor().counters().iterations.load(),
                  g->reactor().counters().sleeps.load(), g->reactor().counters().messages.load(),
                  g->active_qpairs.load(), {}};
      PollGroup* p = g.get();
      g->reactor().call([p, &gr] {
        for (auto& [uid, q] : p->qpairs) {
          QpairRow r{uid, q->qid, qpair_state_name(q->state()), "", q->hostnqn, q->peer,
                     q->transport().ops->name, 0, q->stats};
          if (q->ctrlr) {
            r.subnqn = q->ctrlr->subsystem().nqn();
            r.cntlid = q->ctrlr->cntlid;
          }
          gr.qpairs.push_back(std::move(r));
        }
      });
      rows->push_back(std::move(gr));
    }
    OpResult r;
    r.value = [rows](Napi::Env env) -> Napi::Value {
      Napi::Array arr = Napi::Array::New(env);
      uint32_t i = 0;
      for (auto& g : *rows) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("index", g.index);
        o.Set("tid", Napi::Number::New(env, g.tid));
        o.Set("iterations", Napi::Number::New(env, double(g.iterations)));
        o.Set("sleeps", Napi::Number::New(env, double(g.sleeps)));
        o.Set("messages", Napi::Number::New(env, double(g.messages)));
        o.Set("activeQpairs", Napi::Number::New(env, g.active));
        Napi::Array qs = Napi::Array::New(env);
        uint32_t j = 0;
        for (auto& q : g.qpairs) {
          Napi::Object qo = Napi::Object::New(env);
          qo.Set("id", Napi::Number::New(env, double(q.uid)));
          qo.Set("qid", Napi::Number::New(env, q.qid));
          qo.Set("state", q.state);
          qo.Set("transport", q.transport);
          qo.Set("subnqn", q.subnqn);
          qo.Set("hostnqn", q.hostnqn);
          qo.Set("cntlid", Napi::Number::New(env, q.cntlid));
          qo.Set("peer", q.peer);
          qo.Set("commands", Napi::Number::New(env, double(q.st.commands)));
          qo.Set("bytesRead", Napi::Number::New(env, double(q.st.bytes_read)));
          qo.Set("bytesWritten", Napi::Number::New(env, double(q.st.bytes_written)));
          qo.Set("errors", Napi::Number::New(env, double(q.st.errors)));
          qo.Set("outstanding", Napi::Number::New(env, q.st.outstanding));
          qo.Set("maxOutstanding", Napi::Number::New(env, q.st.max_outstanding));
          qs.Set(j++, qo);
        }
        o.Set("qpairs", qs);
        arr.Set(i++, o);
      }
      return arr;
    };
    return r;
  });
}

}  // namespace nvmf
