#include "addon/js_bridge.h"

namespace nvmf {

struct JsBridge::Delivery {
  enum Kind { Event, Settle, Main } kind;
  std::string name;
  std::string json;
  uint64_t id = 0;
  OpResult result;
  std::function<void(Napi::Env)> fn;
  std::shared_ptr<JsBridge> bridge;
};

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message,
                       int err, int nvme_status) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  if (err != 0) e.Set("errno", Napi::Number::New(env, err));
  if (nvme_status >= 0) e.Set("nvmeStatus", Napi::Number::New(env, nvme_status));
  return e;
}

std::shared_ptr<JsBridge> JsBridge::create(Napi::Env env, Napi::Function emit) {
  std::shared_ptr<JsBridge> b(new JsBridge());
  b->env_ = env;
  // The finalizer runs on the main thread when the TSFN is gone (released,
  // or torn down with the environment); after it, nothing may touch tsfn_.
  auto* weak = new std::weak_ptr<JsBridge>(b);
  b->tsfn_ = Tsfn::New(
      env, emit, "nvmf-target", 0, 1, nullptr,
      [](Napi::Env, std::weak_ptr<JsBridge>* w, std::nullptr_t*) {
        if (auto sb = w->lock()) sb->mark_dead();
        delete w;
      },
      weak);
  b->tsfn_.Unref(env);
  b->alive_ = true;
  return b;
}

JsBridge::~JsBridge() = default;

bool JsBridge::deliver(Delivery* d) {
  std::lock_guard<std::mutex> g(mu_);
  if (!alive_ || tsfn_.NonBlockingCall(d) != napi_ok) {
    delete d;
    return false;
  }
  return true;
}

void JsBridge::emit(const char* name, std::string json) {
  auto* d = new Delivery{Delivery::Event, name, std::move(json), 0, {}, nullptr, nullptr};
  deliver(d);
}

uint64_t JsBridge::begin(Napi::Promise::Deferred d) {
  uint64_t id = next_id_++;
  pending_.emplace(id, std::move(d));
  update_ref();
  return id;
}

void JsBridge::settle(uint64_t id, OpResult r) {
  auto* d = new Delivery{Delivery::Settle, {}, {}, id, std::move(r), nullptr, shared_from_this()};
  deliver(d);
}

void JsBridge::post_main(std::function<void(Napi::Env)> fn) {
  auto* d = new Delivery{Delivery::Main, {}, {}, 0, {}, std::move(fn), shared_from_this()};
  deliver(d);
}

void JsBridge::call_js(Napi::Env env, Napi::Function fn, std::nullptr_t*, Delivery* d) {
  std::unique_ptr<Delivery> own(d);
  if (env == nullptr) return;  // the TSFN is being torn down
  switch (d->kind) {
    case Delivery::Event:
      fn.Call({Napi::String::New(env, d->name), Napi::String::New(env, d->json)});
      break;
    case Delivery::Settle:
      d->bridge->settle_main(env, d->id, d->result);
      break;
    case Delivery::Main:
      d->fn(env);
      break;
  }
}

void JsBridge::settle_main(Napi::Env env, uint64_t id, const OpResult& r) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Napi::Promise::Deferred def = std::move(it->second);
  pending_.erase(it);
  if (r.ok) {
    def.Resolve(r.value ? r.value(env) : env.Undefined());
  } else {
    Napi::Error e = make_error(env, r.code, r.message, r.err, r.nvme_status);
    if (!r.reason.empty()) e.Set("reason", Napi::String::New(env, r.reason));
    def.Reject(e.Value());
  }
  update_ref();
}

void JsBridge::update_ref() {
  bool want = user_ref_ || !pending_.empty();
  std::lock_guard<std::mutex> g(mu_);
  if (!alive_ || want == refd_) return;
  if (want) {
    tsfn_.Ref(env_);
  } else {
    tsfn_.Unref(env_);
  }
  refd_ = want;
}

void JsBridge::set_user_ref(bool on) {
  user_ref_ = on;
  update_ref();
}

void JsBridge::close() {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!alive_) return;
    alive_ = false;
  }
  // Outside the lock: the finalizer (which takes it) may run from here.
  tsfn_.Release();
}

void JsBridge::mark_dead() {
  std::lock_guard<std::mutex> g(mu_);
  alive_ = false;
}

}  // namespace nvmf
