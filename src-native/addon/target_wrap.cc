#include "addon/target_wrap.h"

#include "addon/auth_wrap.h"

#include <string>

namespace nvmf {

namespace {

bool parse_poll_mode(const std::string& s, PollMode* out) {
  if (s == "poll") *out = PollMode::Poll;
  else if (s == "interrupt") *out = PollMode::Interrupt;
  else if (s == "adaptive") *out = PollMode::Adaptive;
  else return false;
  return true;
}

// Reads an optional integer option; throws ERR_INVALID_ARGUMENT naming it.
bool opt_int(Napi::Object o, const char* key, int64_t lo, int64_t hi, int64_t* out,
             const char* path = "options.") {
  Napi::Env env = o.Env();
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return true;
  if (!v.IsNumber()) {
    make_error(env, "ERR_INVALID_ARGUMENT", std::string(path) + key + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != double(int64_t(d)) || d < double(lo) || d > double(hi)) {
    make_error(env, "ERR_INVALID_ARGUMENT",
               std::string(path) + key + " must be an integer from " + std::to_string(lo) +
                   " to " + std::to_string(hi))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = int64_t(d);
  return true;
}

}  // namespace

void TargetWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "NativeTarget",
      {
          InstanceMethod<&TargetWrap::Destroy>("destroy"),
          InstanceMethod<&TargetWrap::GetState>("state"),
          InstanceMethod<&TargetWrap::Ref>("ref"),
          InstanceMethod<&TargetWrap::Unref>("unref"),
          InstanceMethod<&TargetWrap::ReactorInfo>("reactorInfo"),
          InstanceMethod<&TargetWrap::CreateBdev>("createBdev"),
          InstanceMethod<&TargetWrap::DeleteBdev>("deleteBdev"),
          InstanceMethod<&TargetWrap::CreateSubsystem>("createSubsystem"),
          InstanceMethod<&TargetWrap::DeleteSubsystem>("deleteSubsystem"),
          InstanceMethod<&TargetWrap::AddNamespace>("addNamespace"),
          InstanceMethod<&TargetWrap::RemoveNamespace>("removeNamespace"),
          InstanceMethod<&TargetWrap::HostOp>("hostOp"),
          InstanceMethod<&TargetWrap::Listen>("listen"),
          InstanceMethod<&TargetWrap::SubsystemListener>("subsystemListener"),
          InstanceMethod<&TargetWrap::Config>("config"),
          InstanceMethod<&TargetWrap::Stats>("stats"),
          InstanceMethod<&TargetWrap::BdevFaults>("bdevFaults"),
          InstanceMethod<&TargetWrap::GetResources>("resources"),
          InstanceMethod<&TargetWrap::SetAuthPolicy>("setAuthPolicy"),
      });
  addon_data(env)->target_ctor = Napi::Persistent(ctor);
  exports.Set("NativeTarget", ctor);
}

// new NativeTarget(options, emit)
TargetWrap::TargetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TargetWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    make_error(env, "ERR_INVALID_ARGUMENT", "NativeTarget(options, emit) expects an object and a function")
        .ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  TargetOptions opts;
  int64_t v = opts.reactors;
  if (!opt_int(o, "reactors", 1, 64, &v)) return;
  opts.reactors = int(v);
  v = int64_t(opts.adaptive_idle_us);
  if (!opt_int(o, "adaptiveIdleUs", 0, 10000000, &v)) return;
  opts.adaptive_idle_us = uint64_t(v);
  v = int64_t(opts.transport.handshake_timeout_ms);
  if (!opt_int(o, "handshakeTimeoutMs", 0, 3600000, &v)) return;
  opts.transport.handshake_timeout_ms = uint32_t(v);
  // options.inCapsuleDataSize: IOCCSZ counts 16-byte units.
  v = int64_t(opts.transport.in_capsule_data);
  if (!opt_int(o, "inCapsuleDataSize", 4096, 131072, &v)) return;
  if (v % 16) {
    make_error(env, "ERR_INVALID_ARGUMENT", "options.inCapsuleDataSize must be a multiple of 16")
        .ThrowAsJavaScriptException();
    return;
  }
  opts.transport.in_capsule_data = uint32_t(v);
  v = int64_t(opts.disconnect_timeout_ms);
  if (!opt_int(o, "disconnectTimeoutMs", 100, 600000, &v)) return;
  opts.disconnect_timeout_ms = uint32_t(v);
  // options.rdma: { srq?: boolean, srqDepth?: number } (lib/target.ts
  // validates it first; this is the backstop).
  if (Napi::Value rv = o.Get("rdma"); !rv.IsUndefined()) {
    if (!rv.IsObject()) {
      make_error(env, "ERR_INVALID_ARGUMENT", "options.rdma must be an object").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object r = rv.As<Napi::Object>();
    Napi::Value srq = r.Get("srq");
    if (!srq.IsUndefined() && !srq.IsBoolean()) {
      make_error(env, "ERR_INVALID_ARGUMENT", "options.rdma.srq must be a boolean").ThrowAsJavaScriptException();
      return;
    }
    int64_t d = 4096;
    if (!opt_int(r, "srqDepth", 64, 65536, &d, "options.rdma.")) return;
    if (srq.IsBoolean() && srq.As<Napi::Boolean>().Value()) opts.transport.rdma_srq_depth = uint32_t(d);
  }
  Napi::Value pm = o.Get("pollMode");
  if (!pm.IsUndefined()) {
    if (!pm.IsString() || !parse_poll_mode(pm.As<Napi::String>().Utf8Value(), &opts.poll_mode)) {
      make_error(env, "ERR_INVALID_ARGUMENT",
                 "options.pollMode must be 'poll', 'interrupt' or 'adaptive'")
          .ThrowAsJavaScriptException();
      return;
    }
  }

  if (!policy_arg(env, o.Get("auth"), "options.auth", &opts.auth)) return;

  auto h = std::make_shared<TargetHandle>();
  h->bridge = JsBridge::create(env, info[1].As<Napi::Function>());
  int rc = Target::create(opts, h->bridge, &h->target);
  if (rc < 0) {
    h->bridge->close();
    make_error(env, "ERR_RESOURCE",
               std::string("cannot start target reactors: ") + strerror(-rc), -rc)
        .ThrowAsJavaScriptException();
    return;
  }
  handle_ = h;
  addon_data(env)->live.insert(h);
}

TargetWrap::~TargetWrap() {
  // Finalizer: detach and schedule, never join here.
  auto h = std::move(handle_);
  if (!h || h->destroy_started || h->destroyed) return;
  AddonData* d = addon_data(Env());
  if (d == nullptr || d->tearing_down) return;  // the cleanup hook owns it
  h->destroy_started = true;
  d->live.erase(h);
  h->bridge->close();
  d->spawn_destroyer(std::move(h->target), nullptr);
}

std::shared_ptr<Target> TargetWrap::live_target(Napi::Env env, const char* what) {
  if (!handle_ || handle_->destroyed || handle_->destroy_started || !handle_->target) {
    make_error(env, "ERR_DESTROYED", std::string("target is destroyed; cannot ") + what)
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  return handle_->target;
}

Napi::Value TargetWrap::Destroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto def = Napi::Promise::Deferred::New(env);
  Napi::Promise p = def.Promise();
  auto h = handle_;
  if (!h || h->destroyed) {
    def.Resolve(env.Undefined());
    return p;
  }
  uint64_t id = h->bridge->begin(std::move(def));
  h->destroy_waiters.push_back(id);
  if (h->destroy_started) return p;  // concurrent callers share one destroy
  h->destroy_started = true;
  AddonData* d = addon_data(env);
  std::shared_ptr<Target> t = h->target;
  d->spawn_destroyer(std::move(t), [h] {
    // On the destroyer thread: hand completion to the main thread.
    h->bridge->post_main([h](Napi::Env env) {
      h->target.reset();  // detach: never dereferenced again
      h->destroyed = true;
      if (AddonData* d = addon_data(env)) {
        d->live.erase(h);
        d->reap(false);
      }
      for (uint64_t wid : h->destroy_waiters) h->bridge->settle_main(env, wid, OpResult{});
      h->destroy_waiters.clear();
      h->bridge->close();
    });
  });
  return p;
}

Napi::Value TargetWrap::GetState(const Napi::CallbackInfo& info) {
  if (!handle_ || handle_->destroyed || !handle_->target) {
    return Napi::String::New(info.Env(), "destroyed");
  }
  return Napi::String::New(info.Env(), target_state_name(handle_->target->state()));
}

Napi::Value TargetWrap::Ref(const Napi::CallbackInfo& info) {
  if (handle_ && !handle_->destroyed) handle_->bridge->set_user_ref(true);
  return info.Env().Undefined();
}

Napi::Value TargetWrap::Unref(const Napi::CallbackInfo& info) {
  if (handle_ && !handle_->destroyed) handle_->bridge->set_user_ref(false);
  return info.Env().Undefined();
}

// [{ index, tid, iterations, sleeps, messages, pollMode }]
Napi::Value TargetWrap::ReactorInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto t = live_target(env, "read reactor info");
  if (!t) return env.Undefined();
  Napi::Array arr = Napi::Array::New(env);
  for (int i = 0; i < t->group_count(); i++) {
    auto g = t->group(i);
    Reactor& r = g->reactor();
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", i);
    o.Set("tid", Napi::Number::New(env, r.tid()));
    o.Set("pollMode", poll_mode_name(r.mode()));
    o.Set("iterations", Napi::Number::New(env, double(r.counters().iterations.load())));
    o.Set("sleeps", Napi::Number::New(env, double(r.counters().sleeps.load())));
    o.Set("messages", Napi::Number::New(env, double(r.counters().messages.load())));
    o.Set("activeQpairs", Napi::Number::New(env, g->active_qpairs.load()));
    arr.Set(uint32_t(i), o);
  }
  return arr;
}

// setAuthPolicy({ digests, dhgroups, timeoutMs }): fields not given keep
// their current value. New transactions use it; those in progress finish
// with the policy they started with.
Napi::Value TargetWrap::SetAuthPolicy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto t = live_target(env, "change the authentication policy");
  if (!t) return env.Undefined();
  auth::AuthPolicy p = *t->auth_policy();
  if (!info[0].IsObject()) {
    make_error(env, "ERR_INVALID_ARGUMENT", "auth options must be an object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!policy_arg(env, info[0], "options", &p)) return env.Undefined();
  t->set_auth_policy(p);
  return env.Undefined();
}

}  // namespace nvmf
