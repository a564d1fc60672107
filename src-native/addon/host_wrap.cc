#include "addon/host_wrap.h"

#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "addon/auth_wrap.h"
#include "host/discovery_log.h"
#include "host/identify_decode.h"
#include "transport/rdma_verbs.h"

namespace nvmf {

using host::HostCmd;
using host::HostCompletion;
using host::HostError;
using host::HostSession;
using HXfer = host::XferDir;

namespace {

// ---------------------------------------------------------------------------
// Argument checks. Each throws ERR_INVALID_ARGUMENT naming the argument and
// returns false; callers return at once (C++ exceptions are off).

bool invalid(Napi::Env env, const std::string& msg) {
  make_error(env, "ERR_INVALID_ARGUMENT", msg).ThrowAsJavaScriptException();
  return false;
}

// An integer in [lo, hi], given as a Number (exact) or a BigInt.
bool arg_uint(Napi::Env env, Napi::Value v, const std::string& name, uint64_t lo, uint64_t hi,
              uint64_t* out) {
  uint64_t x = 0;
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0) {
      return invalid(env, name + " must be a non-negative integer");
    }
    x = uint64_t(d);
  } else if (v.IsBigInt()) {
    bool lossless = false;
    x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) return invalid(env, name + " must fit in 64 bits");
  } else {
    return invalid(env, name + " must be an integer");
  }
  if (x < lo || x > hi) {
    return invalid(env, name + " must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  *out = x;
  return true;
}

// Optional: leaves *out alone when undefined.
bool opt_uint(Napi::Object o, const char* key, uint64_t lo, uint64_t hi, uint64_t* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return true;
  return arg_uint(o.Env(), v, std::string("options.") + key, lo, hi, out);
}

bool opt_bool(Napi::Object o, const char* key, bool* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return true;
  if (!v.IsBoolean()) return invalid(o.Env(), std::string("options.") + key + " must be a boolean");
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

bool arg_string(Napi::Env env, Napi::Value v, const std::string& name, size_t max_len,
                std::string* out) {
  if (!v.IsString()) return invalid(env, name + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty() || s.size() > max_len) {
    return invalid(env, name + " must be 1 to " + std::to_string(max_len) + " bytes long");
  }
  *out = std::move(s);
  return true;
}

// A Buffer / Uint8Array: its bytes (which the caller pins while in use).
bool arg_bytes(Napi::Env env, Napi::Value v, const std::string& name, uint8_t** p, size_t* n) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return invalid(env, name + " must be a Buffer or Uint8Array");
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  *p = a.Data();
  *n = a.ByteLength();
  if (*n > 0 && *p == nullptr) return invalid(env, name + " is detached");
  return true;
}

// ---------------------------------------------------------------------------
// Results.

OpResult to_result(const HostError& e) {
  OpResult r = OpResult::error(e.code ? e.code : "ERR_INTERNAL", e.message, e.err);
  r.nvme_status = e.nvme_status;
  r.reason = e.reason;
  return r;
}

// False while the environment is terminating (worker.terminate()): then
// every N-API call that could run JS fails, and node-addon-api (built
// without C++ exceptions) aborts the process on the failed throw that
// follows. A raw property set is such a call, with a status instead.
// This only narrows the window (terminate() flips the flag from another
// thread); the build must also define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS,
// which makes node-addon-api ignore those failed throws.
bool can_run_js(Napi::Env env) {
  napi_value o, u;
  if (napi_create_object(env, &o) != napi_ok || napi_get_undefined(env, &u) != napi_ok) return false;
  return napi_set_named_property(env, o, "probe", u) == napi_ok;
}

// Main thread: settles promise `id` unless the environment is going away.
void settle_now(Napi::Env env, const std::shared_ptr<JsBridge>& bridge, uint64_t id,
                const OpResult& r) {
  if (can_run_js(env)) bridge->settle_main(env, id, r);
}

// Any thread: settles promise `id` on the main thread, then drops its pin
// (the command is complete: nothing uses the buffer any more).
// Captures only a weak handle: the last reference to a handle must never be
// dropped off the main thread (its pins are N-API references).
void settle(const std::weak_ptr<HostHandle>& wh, const std::shared_ptr<JsBridge>& bridge,
            uint64_t id, OpResult r) {
  bridge->post_main([wh, bridge, id, r = std::move(r)](Napi::Env env) {
    settle_now(env, bridge, id, r);
    if (auto h = wh.lock()) h->pins.erase(id);
  });
}

Napi::Value buffer_copy(Napi::Env env, const uint8_t* p, size_t n) {
  return Napi::Buffer<uint8_t>::Copy(env, p, n);
}

Napi::Value u64_value(Napi::Env env, uint64_t v) {
  // Numbers are exact up to 2^53; beyond that a BigInt keeps every bit.
  if (v <= 9007199254740991ull) return Napi::Number::New(env, double(v));
  return Napi::BigInt::New(env, v);
}

Napi::Object identify_ctrl_object(Napi::Env env, const std::vector<uint8_t>& raw,
                                  uint64_t max_transfer) {
  IdentifyController id;
  std::memcpy(&id, raw.data(), sizeof id);
  Napi::Object o = Napi::Object::New(env);
  o.Set("vid", id.vid);
  o.Set("ssvid", id.ssvid);
  o.Set("sn", host::ascii_field(id.sn, sizeof id.sn));
  o.Set("mn", host::ascii_field(id.mn, sizeof id.mn));
  o.Set("fr", host::ascii_field(id.fr, sizeof id.fr));
  o.Set("cmic", id.cmic);
  o.Set("mdts", id.mdts);
  o.Set("maxTransferBytes", u64_value(env, max_transfer));
  o.Set("cntlid", id.cntlid);
  o.Set("ver", Napi::Number::New(env, id.ver));
  o.Set("version", host::version_string(id.ver));
  o.Set("oaes", Napi::Number::New(env, id.oaes));
  o.Set("ctratt", Napi::Number::New(env, id.ctratt));
  o.Set("cntrltype", id.cntrltype);
  o.Set("oacs", id.oacs);
  o.Set("acl", id.acl);
  o.Set("aerl", id.aerl);
  o.Set("lpa", id.lpa);
  o.Set("elpe", id.elpe);
  o.Set("kas", id.kas);
  o.Set("sqes", id.sqes);
  o.Set("cqes", id.cqes);
  o.Set("maxcmd", id.maxcmd);
  o.Set("nn", Napi::Number::New(env, id.nn));
  o.Set("oncs", id.oncs);
  o.Set("fuses", id.fuses);
  o.Set("vwc", id.vwc);
  o.Set("sgls", Napi::Number::New(env, id.sgls));
  o.Set("subnqn", host::ascii_field(id.subnqn, sizeof id.subnqn));
  o.Set("ioccsz", Napi::Number::New(env, id.ioccsz));
  o.Set("iorcsz", Napi::Number::New(env, id.iorcsz));
  o.Set("icdoff", id.icdoff);
  o.Set("fcatt", id.fcatt);
  o.Set("msdbd", id.msdbd);
  o.Set("ofcs", id.ofcs);
  o.Set("raw", buffer_copy(env, raw.data(), raw.size()));
  return o;
}

Napi::Object identify_ns_object(Napi::Env env, uint32_t nsid, const std::vector<uint8_t>& raw,
                                const std::vector<uint8_t>* desc) {
  IdentifyNamespace ns;
  std::memcpy(&ns, raw.data(), sizeof ns);
  host::NamespaceInfo i =
      host::decode_namespace(ns, desc ? desc->data() : nullptr, desc ? desc->size() : 0);
  Napi::Object o = Napi::Object::New(env);
  o.Set("nsid", Napi::Number::New(env, nsid));
  o.Set("nsze", u64_value(env, i.nsze));
  o.Set("ncap", u64_value(env, i.ncap));
  o.Set("nuse", u64_value(env, i.nuse));
  o.Set("nsfeat", i.nsfeat);
  o.Set("nlbaf", i.nlbaf);
  o.Set("flbas", i.flbas);
  o.Set("lbaFormat", i.lbaf_index);
  o.Set("blockSize", Napi::Number::New(env, i.block_size));
  o.Set("metadataSize", i.metadata_size);
  o.Set("nmic", i.nmic);
  o.Set("dlfeat", i.dlfeat);
  o.Set("nguid", host::hex_string(i.nguid, 16));
  o.Set("eui64", host::hex_string(i.eui64, 8));
  if (i.has_uuid) o.Set("uuid", host::uuid_string(i.uuid));
  o.Set("raw", buffer_copy(env, raw.data(), raw.size()));
  return o;
}

Napi::Object completion_object(Napi::Env env, const HostCompletion& c) {
  Napi::Object cqe = Napi::Object::New(env);
  cqe.Set("dw0", Napi::Number::New(env, c.cqe.dw0));
  cqe.Set("dw1", Napi::Number::New(env, c.cqe.dw1));
  cqe.Set("sqhd", c.cqe.sqhd);
  cqe.Set("sqid", c.cqe.sqid);
  cqe.Set("cid", c.cqe.cid);
  cqe.Set("status", c.cqe.status);
  Napi::Object o = Napi::Object::New(env);
  o.Set("cqe", cqe);
  o.Set("status", host::status_of(c.cqe));
  o.Set("bytes", Napi::Number::New(env, c.bytes));
  return o;
}

// ---------------------------------------------------------------------------
// Close and environment teardown.

void finish_close(Napi::Env env, const std::shared_ptr<HostHandle>& h) {
  h->closed = true;
  h->connected = false;
  // Every command finished before the session was joined, so nothing uses
  // these buffers any more; normally the map is empty already.
  h->pins.clear();
  if (AddonData* d = addon_data(env)) {
    d->hosts.erase(h);
    d->reap(false);
  }
  for (uint64_t id : h->close_waiters) settle_now(env, h->bridge, id, OpResult{});
  h->close_waiters.clear();
  h->bridge->close();
}

// Closes the session on a helper thread (close_and_join blocks), then
// finishes on the main thread. Never joins on the main thread.
void start_close(Napi::Env env, const std::shared_ptr<HostHandle>& h, bool graceful) {
  if (!h->session) {
    finish_close(env, h);
    return;
  }
  AddonData* d = addon_data(env);
  d->reap(false);
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::weak_ptr<HostHandle> wh = h;
  std::shared_ptr<HostSession> session = h->session;
  std::shared_ptr<JsBridge> bridge = h->bridge;
  std::thread th([session, bridge, wh, graceful, done]() mutable {
    session->close_and_join(graceful);
    session.reset();
    bridge->post_main([wh](Napi::Env env) {
      if (auto h = wh.lock()) finish_close(env, h);
    });
    done->store(true);
  });
  d->destroyers.push_back({std::move(th), done});
}

// Runs before AddonData's own hook (hooks run in reverse order of
// registration): closes every live host synchronously, joining its thread,
// then drops the pins while the environment can still delete references.
void host_cleanup_hook(void* arg) {
  auto* d = static_cast<AddonData*>(arg);
  auto hosts = std::move(d->hosts);
  d->hosts.clear();
  for (auto& h : hosts) {
    h->closing = true;
    h->closed = true;
    if (h->bridge) h->bridge->mark_dead();
    if (h->session) h->session->close_and_join(false);
    h->pins.clear();
  }
}

}  // namespace

// ---------------------------------------------------------------------------

void HostWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "NativeHost",
      {
          InstanceMethod<&HostWrap::Connect>("connect"),
          InstanceMethod<&HostWrap::Identify>("identify"),
          InstanceMethod<&HostWrap::IdentifyNamespace>("identifyNamespace"),
          InstanceMethod<&HostWrap::ActiveNamespaces>("activeNamespaces"),
          InstanceMethod<&HostWrap::Read>("read"),
          InstanceMethod<&HostWrap::Write>("write"),
          InstanceMethod<&HostWrap::Compare>("compare"),
          InstanceMethod<&HostWrap::Flush>("flush"),
          InstanceMethod<&HostWrap::WriteZeroes>("writeZeroes"),
          InstanceMethod<&HostWrap::Deallocate>("deallocate"),
          InstanceMethod<&HostWrap::GetLogPage>("getLogPage"),
          InstanceMethod<&HostWrap::Discover>("discover"),
          InstanceMethod<&HostWrap::RawAdmin>("rawAdmin"),
          InstanceMethod<&HostWrap::RawIo>("rawIo"),
          InstanceMethod<&HostWrap::Close>("close"),
          InstanceMethod<&HostWrap::Info>("info"),
          InstanceMethod<&HostWrap::Reauthenticate>("reauthenticate"),
      });
  exports.Set("NativeHost", ctor);
  napi_add_env_cleanup_hook(env, &host_cleanup_hook, addon_data(env));
}

// new NativeHost(emit)
HostWrap::HostWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HostWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    invalid(env, "NativeHost(emit) expects a function");
    return;
  }
  auto h = std::make_shared<HostHandle>();
  h->bridge = JsBridge::create(env, info[0].As<Napi::Function>());
  handle_ = h;
  addon_data(env)->hosts.insert(h);
}

HostWrap::~HostWrap() {
  // Finalizer: detach and schedule, never join here.
  auto h = std::move(handle_);
  if (!h || h->closing || h->closed) return;
  AddonData* d = addon_data(Env());
  if (d == nullptr || d->hosts.count(h) == 0) return;  // the cleanup hook owns it
  h->closing = true;
  start_close(Env(), h, false);
}

std::shared_ptr<HostSession> HostWrap::live(Napi::Env env, const char* what) {
  const char* why = nullptr;
  if (!handle_ || handle_->closing || handle_->closed) {
    why = "host is closed";
  } else if (!handle_->connected || !handle_->session) {
    why = handle_->connecting ? "host is still connecting" : "host is not connected";
  }
  if (why != nullptr) {
    make_error(env, "ERR_CONNECTION", std::string(why) + "; cannot " + what)
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  return handle_->session;
}

// connect({ transport, address, port, subnqn, hostnqn, hostid, ioQueues,
//           queueDepth, kato, hdgst, ddgst, timeoutMs, commandTimeoutMs })
Napi::Value HostWrap::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = handle_;
  if (!h || h->closing || h->closed) {
    make_error(env, "ERR_CONNECTION", "host is closed; cannot connect").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (h->connecting || h->connected || h->session) {
    // One connection per NativeHost: replacing a session here would join its
    // thread on the main thread.
    make_error(env, "ERR_BUSY", h->connected || h->connecting
                                    ? "host is already connected"
                                    : "a host connects once; create a new one")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 1 || !info[0].IsObject()) {
    invalid(env, "connect(options) expects an object");
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  host::HostControllerOptions opts;

  Napi::Value tr = o.Get("transport");
  if (!tr.IsUndefined()) {
    if (!tr.IsString()) {
      invalid(env, "options.transport must be a string");
      return env.Undefined();
    }
    std::string t = tr.As<Napi::String>().Utf8Value();
    if (t == "rdma") {
      // rdma-core is loaded on first use; say what is missing up front.
      std::string why;
      if (rdma::verbs_usable(nullptr, &why) < 0) {
        make_error(env, "ERR_TRANSPORT_UNAVAILABLE", "transport 'rdma': " + why).ThrowAsJavaScriptException();
        return env.Undefined();
      }
      opts.transport = host::HostTransport::Rdma;
    } else if (t != "tcp") {
      make_error(env, "ERR_TRANSPORT_UNAVAILABLE",
                 "transport '" + t + "' is not supported by the host library (only 'tcp' and 'rdma')")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  std::string address;
  if (!arg_string(env, o.Get("address"), "options.address", 255, &address)) return env.Undefined();
  uint64_t port = 4420;
  if (!opt_uint(o, "port", 1, 65535, &port)) return env.Undefined();
  // Numeric only: a name lookup would block; lib/host.ts resolves names.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_s = std::to_string(port);
  if (getaddrinfo(address.c_str(), port_s.c_str(), &hints, &res) != 0 || res == nullptr) {
    invalid(env, "options.address must be a numeric IPv4 or IPv6 address (got '" + address + "')");
    return env.Undefined();
  }
  std::memcpy(&opts.addr, res->ai_addr, res->ai_addrlen);
  opts.addrlen = res->ai_addrlen;
  bool v6 = res->ai_family == AF_INET6;
  freeaddrinfo(res);
  opts.target = (v6 ? "[" + address + "]" : address) + ":" + port_s;

  if (!arg_string(env, o.Get("subnqn"), "options.subnqn", kNqnMaxLen, &opts.subnqn)) return env.Undefined();
  if (!arg_string(env, o.Get("hostnqn"), "options.hostnqn", kNqnMaxLen, &opts.hostnqn)) return env.Undefined();
  Napi::Value hid = o.Get("hostid");
  if (hid.IsUndefined()) {
    std::random_device rd;
    for (int i = 0; i < 16; i += 4) put_le32(opts.hostid + i, rd());
  } else {
    uint8_t* p;
    size_t n;
    if (!arg_bytes(env, hid, "options.hostid", &p, &n)) return env.Undefined();
    if (n != 16) {
      invalid(env, "options.hostid must be 16 bytes");
      return env.Undefined();
    }
    std::memcpy(opts.hostid, p, 16);
  }
  uint64_t v = opts.io_queues;
  if (!opt_uint(o, "ioQueues", 0, 128, &v)) return env.Undefined();
  opts.io_queues = uint16_t(v);
  v = opts.queue_depth;
  if (!opt_uint(o, "queueDepth", 2, 4096, &v)) return env.Undefined();
  opts.queue_depth = uint16_t(v);
  v = opts.kato_ms;
  if (!opt_uint(o, "kato", 0, 3600000, &v)) return env.Undefined();
  opts.kato_ms = uint32_t(v);
  v = opts.connect_timeout_ms;
  if (!opt_uint(o, "timeoutMs", 1, 3600000, &v)) return env.Undefined();
  opts.connect_timeout_ms = uint32_t(v);
  v = opts.command_timeout_ms;
  if (!opt_uint(o, "commandTimeoutMs", 0, 3600000, &v)) return env.Undefined();
  opts.command_timeout_ms = uint32_t(v);
  if (!opt_bool(o, "hdgst", &opts.hdgst) || !opt_bool(o, "ddgst", &opts.ddgst)) return env.Undefined();
  v = opts.sgl_descriptors;
  if (!opt_uint(o, "sglDescriptors", 1, 16, &v)) return env.Undefined();
  opts.sgl_descriptors = uint8_t(v);
  v = opts.max_incapsule;
  if (!opt_uint(o, "maxInCapsuleBytes", 0, 131072, &v)) return env.Undefined();
  opts.max_incapsule = uint32_t(v);
  if (!key_arg(env, o.Get("dhchapKey"), "options.dhchapKey", &opts.dhchap_key) ||
      !key_arg(env, o.Get("dhchapCtrlKey"), "options.dhchapCtrlKey", &opts.dhchap_ctrl_key)) {
    return env.Undefined();
  }
  if (opts.dhchap_ctrl_key && !opts.dhchap_key) {
    invalid(env, "options.dhchapCtrlKey needs options.dhchapKey too");
    return env.Undefined();
  }
  {
    // What the host offers in AUTH_Negotiate, in the policy's format.
    auth::AuthPolicy offer;
    offer.digests = {auth::HashId::Sha256, auth::HashId::Sha384, auth::HashId::Sha512};
    offer.dhgroups = {auth::DhGroupId::Null,      auth::DhGroupId::Ffdhe2048,
                      auth::DhGroupId::Ffdhe3072, auth::DhGroupId::Ffdhe4096,
                      auth::DhGroupId::Ffdhe6144, auth::DhGroupId::Ffdhe8192};
    if (!policy_arg(env, o.Get("auth"), "options.auth", &offer)) return env.Undefined();
    opts.auth_hashes.clear();
    for (uint8_t i = 0; i < offer.ndigests; i++) opts.auth_hashes.push_back(uint8_t(offer.digests[i]));
    opts.auth_dhgroups.clear();
    for (uint8_t i = 0; i < offer.ndhgroups; i++) opts.auth_dhgroups.push_back(uint8_t(offer.dhgroups[i]));
  }

  std::shared_ptr<JsBridge> bridge = h->bridge;
  std::shared_ptr<HostSession> s;
  int rc = HostSession::create(
      [bridge](const char* name, std::string json) { bridge->emit(name, std::move(json)); }, &s);
  if (rc < 0) {
    make_error(env, "ERR_RESOURCE", std::string("cannot start the host thread: ") + strerror(-rc), -rc)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  uint64_t id = bridge->begin(std::move(def));
  h->session = s;
  h->connecting = true;
  std::weak_ptr<HostHandle> wh = h;
  s->connect(std::move(opts), [wh, bridge, id](const HostError& e, const host::ConnectInfo& ci) {
    OpResult r;
    bool ok = e.ok();
    if (!ok) {
      r = to_result(e);
    } else {
      r.value = [ci](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("cntlid", ci.cntlid);
        o.Set("ioQueues", ci.io_queues);
        o.Set("queueDepth", ci.queue_depth);
        o.Set("maxTransferBytes", u64_value(env, ci.max_transfer));
        o.Set("inCapsuleBytes", Napi::Number::New(env, ci.incapsule));
        o.Set("discovery", ci.discovery);
        o.Set("kato", Napi::Number::New(env, ci.kato_ms));
        return o;
      };
    }
    bridge->post_main([wh, bridge, id, ok, ci, r = std::move(r)](Napi::Env env) {
      if (auto h = wh.lock()) {
        h->connecting = false;
        if (ok && !h->closing && !h->closed) {
          h->connected = true;
          h->io_queues = ci.io_queues;
          h->max_transfer = ci.max_transfer;
        }
      }
      settle_now(env, bridge, id, r);
    });
  });
  return p;
}

Napi::Value HostWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  auto h = handle_;
  const char* state = !h || h->closed ? "closed"
                      : h->closing    ? "closing"
                      : h->connected  ? "connected"
                      : h->connecting ? "connecting"
                                      : "idle";
  o.Set("state", state);
  if (h) {
    o.Set("ioQueues", h->io_queues);
    o.Set("maxTransferBytes", u64_value(env, h->max_transfer));
    if (h->session) o.Set("tid", Napi::Number::New(env, h->session->reactor_tid()));
  }
  return o;
}

Napi::Value HostWrap::Identify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env, "identify");
  if (!s) return env.Undefined();
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  auto h = handle_;
  uint64_t id = h->bridge->begin(std::move(def));
  auto buf = std::make_shared<std::vector<uint8_t>>(kIdentifyDataLen, 0);
  HostCmd c;
  c.sqe = host::make_identify(Cns::Controller, 0);
  c.data = buf->data();
  c.len = uint32_t(buf->size());
  c.dir = HXfer::C2H;
  std::weak_ptr<HostHandle> wh = h;
  auto bridge = h->bridge;
  uint64_t mx = h->max_transfer;
  s->exec(0, c, [wh, bridge, id, buf, mx](const HostError& e, const HostCompletion&) {
    OpResult r;
    if (!e.ok()) {
      r = to_result(e);
    } else {
      r.value = [buf, mx](Napi::Env env) -> Napi::Value { return identify_ctrl_object(env, *buf, mx); };
    }
    settle(wh, bridge, id, std::move(r));
  });
  return p;
}

// identifyNamespace(nsid): Identify Namespace, then the namespace
// identification descriptors (for the UUID; optional, a refusal is ignored).
Napi::Value HostWrap::IdentifyNamespace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t nsid;
  if (!arg_uint(env, info[0], "nsid", 1, 0xfffffffe, &nsid)) return env.Undefined();
  auto s = live(env, "identify a namespace");
  if (!s) return env.Undefined();
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  auto h = handle_;
  uint64_t id = h->bridge->begin(std::move(def));
  auto ns = std::make_shared<std::vector<uint8_t>>(kIdentifyDataLen, 0);
  HostCmd c;
  c.sqe = host::make_identify(Cns::Namespace, uint32_t(nsid));
  c.data = ns->data();
  c.len = uint32_t(ns->size());
  c.dir = HXfer::C2H;
  std::weak_ptr<HostHandle> wh = h;
  auto bridge = h->bridge;
  // A raw pointer: the callback runs on the session's own reactor, which
  // the session outlives; a shared_ptr dropped there would join itself.
  HostSession* sp = s.get();
  uint32_t n32 = uint32_t(nsid);
  sp->exec(0, c, [wh, bridge, id, ns, sp, n32](const HostError& e, const HostCompletion&) {
    if (!e.ok()) {
      settle(wh, bridge, id, to_result(e));
      return;
    }
    auto desc = std::make_shared<std::vector<uint8_t>>(kIdentifyDataLen, 0);
    HostCmd d;
    d.sqe = host::make_identify(Cns::NsIdDescList, n32);
    d.data = desc->data();
    d.len = uint32_t(desc->size());
    d.dir = HXfer::C2H;
    sp->exec(0, d, [wh, bridge, id, ns, desc, n32](const HostError& e2, const HostCompletion& hc) {
      if (!e2.ok() && e2.nvme_status < 0) {  // the connection failed
        settle(wh, bridge, id, to_result(e2));
        return;
      }
      bool have_desc = e2.ok() && hc.bytes > 0;
      OpResult r;
      r.value = [ns, desc, have_desc, n32](Napi::Env env) -> Napi::Value {
        return identify_ns_object(env, n32, *ns, have_desc ? desc.get() : nullptr);
      };
      settle(wh, bridge, id, std::move(r));
    });
  });
  return p;
}

// activeNamespaces(startNsid = 0) -> up to 1024 NSIDs greater than start.
Napi::Value HostWrap::ActiveNamespaces(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t start = 0;
  if (info.Length() > 0 && !info[0].IsUndefined() &&
      !arg_uint(env, info[0], "startNsid", 0, 0xfffffffd, &start)) {
    return env.Undefined();
  }
  auto s = live(env, "list namespaces");
  if (!s) return env.Undefined();
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  auto h = handle_;
  uint64_t id = h->bridge->begin(std::move(def));
  auto buf = std::make_shared<std::vector<uint8_t>>(kIdentifyDataLen, 0);
  HostCmd c;
  c.sqe = host::make_identify(Cns::ActiveNsList, uint32_t(start));
  c.data = buf->data();
  c.len = uint32_t(buf->size());
  c.dir = HXfer::C2H;
  std::weak_ptr<HostHandle> wh = h;
  auto bridge = h->bridge;
  s->exec(0, c, [wh, bridge, id, buf](const HostError& e, const HostCompletion&) {
    OpResult r;
    if (!e.ok()) {
      r = to_result(e);
    } else {
      r.value = [buf](Napi::Env env) -> Napi::Value {
        std::vector<uint32_t> ids = host::decode_ns_list(buf->data(), buf->size());
        Napi::Array a = Napi::Array::New(env, ids.size());
        for (size_t i = 0; i < ids.size(); i++) a.Set(uint32_t(i), Napi::Number::New(env, ids[i]));
        return a;
      };
    }
    settle(wh, bridge, id, std::move(r));
  });
  return p;
}

// read/write/compare(nsid, slba, nlb, buffer, qid = 1) -> bytes transferred
Napi::Value HostWrap::rw(const Napi::CallbackInfo& info, IoOpc opc, const char* what) {
  Napi::Env env = info.Env();
  uint64_t nsid, slba, nlb, qid = 1;
  uint8_t* data;
  size_t len;
  if (!arg_uint(env, info[0], "nsid", 1, 0xfffffffe, &nsid) ||
      !arg_uint(env, info[1], "slba", 0, UINT64_MAX, &slba) ||
      !arg_uint(env, info[2], "nlb", 1, 65536, &nlb) ||
      !arg_bytes(env, info[3], "buffer", &data, &len)) {
    return env.Undefined();
  }
  if (len == 0 || len > UINT32_MAX) {
    invalid(env, "buffer must hold 1 byte to 4 GiB");
    return env.Undefined();
  }
  auto s = live(env, what);
  if (!s) return env.Undefined();
  auto h = handle_;
  if (h->io_queues == 0) {
    invalid(env, "this controller has no I/O queues (a discovery controller, or ioQueues: 0)");
    return env.Undefined();
  }
  if (info.Length() > 4 && !info[4].IsUndefined() &&
      !arg_uint(env, info[4], "queue", 1, h->io_queues, &qid)) {
    return env.Undefined();
  }
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  uint64_t id = h->bridge->begin(std::move(def));
  h->pins.emplace(id, Napi::Persistent(info[3]));
  HostCmd c;
  c.sqe = host::make_rw(opc, uint32_t(nsid), slba, uint32_t(nlb));
  c.data = data;
  c.len = uint32_t(len);
  c.dir = opc == IoOpc::Read ? HXfer::C2H : HXfer::H2C;
  std::weak_ptr<HostHandle> wh = h;
  auto bridge = h->bridge;
  s->exec(uint16_t(qid), c, [wh, bridge, id](const HostError& e, const HostCompletion& hc) {
    OpResult r;
    if (!e.ok()) {
      r = to_result(e);
    } else {
      uint32_t bytes = hc.bytes;
      r.value = [bytes](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, bytes); };
    }
    settle(wh, bridge, id, std::move(r));
  });
  return p;
}

Napi::Value HostWrap::Read(const Napi::CallbackInfo& info) { return rw(info, IoOpc::Read, "read"); }
Napi::Value HostWrap::Write(const Napi::CallbackInfo& info) { return rw(info, IoOpc::Write, "write"); }
Napi::Value HostWrap::Compare(const Napi::CallbackInfo& info) {
  return rw(info, IoOpc::Compare, "compare");
}

namespace {

// Shared tail of the data-less I/O commands.
Napi::Value run_simple(Napi::Env env, const std::shared_ptr<HostHandle>& h,
                       const std::shared_ptr<HostSession>& s, uint16_t qid, const HostCmd& c,
                       std::shared_ptr<std::vector<DsmRange>> keep = nullptr) {
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  uint64_t id = h->bridge->begin(std::move(def));
  std::weak_ptr<HostHandle> wh = h;
  auto bridge = h->bridge;
  s->exec(qid, c, [wh, bridge, id, keep](const HostError& e, const HostCompletion&) {
    settle(wh, bridge, id, e.ok() ? OpResult{} : to_result(e));
  });
  return p;
}

}  // namespace

// flush(nsid, qid = 1)
Napi::Value HostWrap::Flush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t nsid, qid = 1;
  if (!arg_uint(env, info[0], "nsid", 1, 0xffffffff, &nsid)) return env.Undefined();
  auto s = live(env, "flush");
  if (!s) return env.Undefined();
  auto h = handle_;
  if (h->io_queues == 0) {
    invalid(env, "this controller has no I/O queues");
    return env.Undefined();
  }
  if (info.Length() > 1 && !info[1].IsUndefined() &&
      !arg_uint(env, info[1], "queue", 1, h->io_queues, &qid)) {
    return env.Undefined();
  }
  HostCmd c;
  c.sqe = host::make_flush(uint32_t(nsid));
  return run_simple(env, h, s, uint16_t(qid), c);
}

// writeZeroes(nsid, slba, nlb, qid = 1)
Napi::Value HostWrap::WriteZeroes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t nsid, slba, nlb, qid = 1;
  if (!arg_uint(env, info[0], "nsid", 1, 0xfffffffe, &nsid) ||
      !arg_uint(env, info[1], "slba", 0, UINT64_MAX, &slba) ||
      !arg_uint(env, info[2], "nlb", 1, 65536, &nlb)) {
    return env.Undefined();
  }
  auto s = live(env, "write zeroes");
  if (!s) return env.Undefined();
  auto h = handle_;
  if (h->io_queues == 0) {
    invalid(env, "this controller has no I/O queues");
    return env.Undefined();
  }
  if (info.Length() > 3 && !info[3].IsUndefined() &&
      !arg_uint(env, info[3], "queue", 1, h->io_queues, &qid)) {
    return env.Undefined();
  }
  HostCmd c;
  c.sqe = host::make_write_zeroes(uint32_t(nsid), slba, uint32_t(nlb));
  return run_simple(env, h, s, uint16_t(qid), c);
}

// deallocate(nsid, [{ slba, nlb }, ...], qid = 1): Dataset Management (AD)
Napi::Value HostWrap::Deallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t nsid, qid = 1;
  if (!arg_uint(env, info[0], "nsid", 1, 0xfffffffe, &nsid)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsArray()) {
    invalid(env, "ranges must be an array of { slba, nlb }");
    return env.Undefined();
  }
  Napi::Array a = info[1].As<Napi::Array>();
  if (a.Length() == 0 || a.Length() > kDsmMaxRanges) {
    invalid(env, "ranges must hold 1 to 256 entries");
    return env.Undefined();
  }
  auto ranges = std::make_shared<std::vector<DsmRange>>(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsObject()) {
      invalid(env, "ranges[" + std::to_string(i) + "] must be { slba, nlb }");
      return env.Undefined();
    }
    uint64_t slba, nlb;
    Napi::Object eo = e.As<Napi::Object>();
    std::string n = "ranges[" + std::to_string(i) + "]";
    if (!arg_uint(env, eo.Get("slba"), n + ".slba", 0, UINT64_MAX, &slba) ||
        !arg_uint(env, eo.Get("nlb"), n + ".nlb", 1, UINT32_MAX, &nlb)) {
      return env.Undefined();
    }
    (*ranges)[i] = DsmRange{0, uint32_t(nlb), slba};
  }
  auto s = live(env, "deallocate");
  if (!s) return env.Undefined();
  auto h = handle_;
  if (h->io_queues == 0) {
    invalid(env, "this controller has no I/O queues");
    return env.Undefined();
  }
  if (info.Length() > 2 && !info[2].IsUndefined() &&
      !arg_uint(env, info[2], "queue", 1, h->io_queues, &qid)) {
    return env.Undefined();
  }
  HostCmd c;
  c.sqe = host::make_dsm_deallocate(uint32_t(nsid), uint32_t(ranges->size()));
  c.data = reinterpret_cast<uint8_t*>(ranges->data());
  c.len = uint32_t(ranges->size() * sizeof(DsmRange));
  c.dir = HXfer::H2C;
  return run_simple(env, h, s, uint16_t(qid), c, ranges);
}

// getLogPage(lid, len, offset = 0, nsid = 0xffffffff, lsp = 0) -> Buffer
Napi::Value HostWrap::GetLogPage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t lid, len, offset = 0, nsid = kNsidAll, lsp = 0;
  if (!arg_uint(env, info[0], "lid", 0, 255, &lid) ||
      !arg_uint(env, info[1], "length", 4, 64ull << 20, &len)) {
    return env.Undefined();
  }
  if (info.Length() > 2 && !info[2].IsUndefined() &&
      !arg_uint(env, info[2], "offset", 0, UINT64_MAX, &offset)) {
    return env.Undefined();
  }
  if (info.Length() > 3 && !info[3].IsUndefined() &&
      !arg_uint(env, info[3], "nsid", 0, 0xffffffff, &nsid)) {
    return env.Undefined();
  }
  if (info.Length() > 4 && !info[4].IsUndefined() && !arg_uint(env, info[4], "lsp", 0, 127, &lsp)) {
    return env.Undefined();
  }
  if (len % 4 != 0 || offset % 4 != 0) {
    invalid(env, "length and offset must be multiples of 4");
    return env.Undefined();
  }
  auto s = live(env, "read a log page");
  if (!s) return env.Undefined();
  auto h = handle_;
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, size_t(len));
  std::memset(out.Data(), 0, out.Length());
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  uint64_t id = h->bridge->begin(std::move(def));
  h->pins.emplace(id, Napi::Persistent(Napi::Value(out)));
  std::weak_ptr<HostHandle> wh = h;
  auto bridge = h->bridge;
  s->get_log_page(uint8_t(lid), uint8_t(lsp), offset, uint32_t(nsid), out.Data(), uint32_t(len),
                  [wh, bridge, id](const HostError& e) {
    OpResult r;
    if (!e.ok()) {
      r = to_result(e);
    } else {
      // Resolves with the pinned Buffer itself (looked up on the main thread).
      r.value = [wh, id](Napi::Env env) -> Napi::Value {
        auto h = wh.lock();
        if (!h) return env.Undefined();
        auto it = h->pins.find(id);
        return it == h->pins.end() ? env.Undefined() : it->second.Value();
      };
    }
    settle(wh, bridge, id, std::move(r));
  });
  return p;
}

// discover() -> [{ trtype, adrfam, subtype, treq, portid, cntlid, asqsz,
//                  eflags, trsvcid, subnqn, traddr, sectype }]
// reauthenticate(keys?): DH-HMAC-CHAP again on every queue; with
// { dhchapKey, dhchapCtrlKey } the host switches to those keys first.
Napi::Value HostWrap::Reauthenticate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env, "re-authenticate");
  if (!s) return env.Undefined();
  std::shared_ptr<const auth::DhchapKey> key, ctrl;
  bool replace = false;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (!key_arg(env, o.Get("dhchapKey"), "keys.dhchapKey", &key) ||
        !key_arg(env, o.Get("dhchapCtrlKey"), "keys.dhchapCtrlKey", &ctrl)) {
      return env.Undefined();
    }
    if (!key) {
      invalid(env, "keys.dhchapKey is required");
      return env.Undefined();
    }
    replace = true;
  }
  auto h = handle_;
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  uint64_t id = h->bridge->begin(std::move(def));
  std::weak_ptr<HostHandle> wh = h;
  auto bridge = h->bridge;
  s->reauthenticate(std::move(key), std::move(ctrl), replace, [wh, bridge, id](const HostError& e) {
    settle(wh, bridge, id, e.ok() ? OpResult{} : to_result(e));
  });
  return p;
}

Napi::Value HostWrap::Discover(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = live(env, "read the discovery log");
  if (!s) return env.Undefined();
  auto h = handle_;
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  uint64_t id = h->bridge->begin(std::move(def));
  std::weak_ptr<HostHandle> wh = h;
  auto bridge = h->bridge;
  s->discovery_log([wh, bridge, id](const HostError& e, std::vector<uint8_t> log) {
    OpResult r;
    if (!e.ok()) {
      settle(wh, bridge, id, to_result(e));
      return;
    }
    auto entries = std::make_shared<std::vector<host::DiscoveryEntry>>();
    uint64_t genctr = 0;
    std::string err;
    if (!host::parse_discovery_log(log.data(), log.size(), &genctr, entries.get(), &err)) {
      settle(wh, bridge, id, OpResult::error("ERR_IO", err));
      return;
    }
    r.value = [entries, genctr](Napi::Env env) -> Napi::Value {
      Napi::Array a = Napi::Array::New(env, entries->size());
      for (size_t i = 0; i < entries->size(); i++) {
        const host::DiscoveryEntry& d = (*entries)[i];
        Napi::Object o = Napi::Object::New(env);
        o.Set("trtype", d.trtype);
        o.Set("adrfam", d.adrfam);
        o.Set("subtype", d.subtype);
        o.Set("treq", d.treq);
        o.Set("portid", d.portid);
        o.Set("cntlid", d.cntlid);
        o.Set("asqsz", d.asqsz);
        o.Set("eflags", d.eflags);
        o.Set("trsvcid", d.trsvcid);
        o.Set("subnqn", d.subnqn);
        o.Set("traddr", d.traddr);
        o.Set("sectype", d.tcp_sectype);
        a.Set(uint32_t(i), o);
      }
      Napi::Object res = Napi::Object::New(env);
      res.Set("genctr", u64_value(env, genctr));
      res.Set("entries", a);
      return res;
    };
    settle(wh, bridge, id, std::move(r));
  });
  return p;
}

// rawAdmin(sqe, data?, opts?) / rawIo(qid, sqe, data?, opts?)
//   opts: { dir?: 'none' | 'h2c' | 'c2h', keepDptr?: boolean }
// Resolves with { cqe, status, bytes } whatever the NVMe status (protocol
// tests look at it); rejects only when no completion arrived.
Napi::Value HostWrap::raw(const Napi::CallbackInfo& info, uint16_t qid, size_t a0) {
  Napi::Env env = info.Env();
  uint8_t* sqe_p;
  size_t sqe_n;
  if (!arg_bytes(env, info[a0], "sqe", &sqe_p, &sqe_n)) return env.Undefined();
  if (sqe_n != sizeof(SqEntry)) {
    invalid(env, "sqe must be 64 bytes");
    return env.Undefined();
  }
  HostCmd c;
  std::memcpy(&c.sqe, sqe_p, sizeof c.sqe);
  Napi::Value data_v = info.Length() > a0 + 1 ? info[a0 + 1] : env.Undefined();
  bool has_data = !data_v.IsUndefined() && !data_v.IsNull();
  uint8_t* data = nullptr;
  size_t len = 0;
  if (has_data && !arg_bytes(env, data_v, "data", &data, &len)) return env.Undefined();
  if (len > UINT32_MAX) {
    invalid(env, "data is too large");
    return env.Undefined();
  }
  HXfer dir = len > 0 ? host::opcode_dir(c.sqe) : HXfer::None;
  Napi::Value ov = info.Length() > a0 + 2 ? info[a0 + 2] : env.Undefined();
  if (!ov.IsUndefined()) {
    if (!ov.IsObject()) {
      invalid(env, "opts must be an object");
      return env.Undefined();
    }
    Napi::Object o = ov.As<Napi::Object>();
    Napi::Value dv = o.Get("dir");
    if (!dv.IsUndefined()) {
      std::string d = dv.IsString() ? dv.As<Napi::String>().Utf8Value() : "";
      if (d == "none") dir = HXfer::None;
      else if (d == "h2c") dir = HXfer::H2C;
      else if (d == "c2h") dir = HXfer::C2H;
      else {
        invalid(env, "opts.dir must be 'none', 'h2c' or 'c2h'");
        return env.Undefined();
      }
    }
    if (!opt_bool(o, "keepDptr", &c.keep_dptr)) return env.Undefined();
  }
  if (len > 0 && dir == HXfer::None) {
    invalid(env, "data given but the opcode moves none; pass opts.dir");
    return env.Undefined();
  }
  if (dir != HXfer::None && len == 0) dir = HXfer::None;
  auto s = live(env, "send a raw command");
  if (!s) return env.Undefined();
  auto h = handle_;
  if (qid > h->io_queues) {
    invalid(env, "queue " + std::to_string(qid) + " does not exist (" +
                     std::to_string(h->io_queues) + " I/O queues)");
    return env.Undefined();
  }
  c.data = data;
  c.len = uint32_t(len);
  c.dir = dir;
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  uint64_t id = h->bridge->begin(std::move(def));
  if (has_data) h->pins.emplace(id, Napi::Persistent(data_v));
  std::weak_ptr<HostHandle> wh = h;
  auto bridge = h->bridge;
  s->exec(qid, c, [wh, bridge, id](const HostError& e, const HostCompletion& hc) {
    OpResult r;
    if (!e.ok() && e.nvme_status < 0) {
      r = to_result(e);
    } else {
      r.value = [hc](Napi::Env env) -> Napi::Value { return completion_object(env, hc); };
    }
    settle(wh, bridge, id, std::move(r));
  });
  return p;
}

Napi::Value HostWrap::RawAdmin(const Napi::CallbackInfo& info) { return raw(info, 0, 0); }

Napi::Value HostWrap::RawIo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t qid;
  if (!arg_uint(env, info[0], "qid", 1, 65534, &qid)) return env.Undefined();
  return raw(info, uint16_t(qid), 1);
}

// close(): idempotent; concurrent callers share one close. Outstanding
// commands reject with ERR_CONNECTION before it resolves.
Napi::Value HostWrap::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  auto h = handle_;
  if (!h || h->closed) {
    def.Resolve(env.Undefined());
    return p;
  }
  uint64_t id = h->bridge->begin(std::move(def));
  h->close_waiters.push_back(id);
  if (h->closing) return p;
  h->closing = true;
  start_close(env, h, true);
  return p;
}

}  // namespace nvmf
