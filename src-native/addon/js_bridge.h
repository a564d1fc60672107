// The one ThreadSafeFunction of a target: it carries events and promise
// settlements from native threads to the Node main thread. It is unref'd
// while no promise is pending, so an idle target does not keep Node alive
// (unless the user calls target.ref()).
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/events.h"

namespace nvmf {

// What a native operation reports back; turned into a JS value or error on
// the main thread.
struct OpResult {
  bool ok = true;
  std::string code;      // NvmfError code when !ok (ERR_...)
  std::string message;   // names the object
  int err = 0;           // errno, when one applies (positive)
  int nvme_status = -1;  // NVMe status, when one applies
  std::string reason;    // ERR_AUTH_FAILED: the AUTH_Failure reason ("failed", ...)
  // Builds the resolution value on the main thread (undefined when empty).
  std::function<Napi::Value(Napi::Env)> value;

  static OpResult error(std::string code, std::string message, int err = 0) {
    OpResult r;
    r.ok = false;
    r.code = std::move(code);
    r.message = std::move(message);
    r.err = err;
    return r;
  }
};

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message,
                       int err = 0, int nvme_status = -1);

class JsBridge : public EventSink, public std::enable_shared_from_this<JsBridge> {
 public:
  // `emit` is the JS function (name, json) => void.
  static std::shared_ptr<JsBridge> create(Napi::Env env, Napi::Function emit);
  ~JsBridge() override;

  // EventSink: any thread.
  void emit(const char* name, std::string json) override;

  // Main thread: a new pending promise; keeps Node alive until settled.
  uint64_t begin(Napi::Promise::Deferred d);
  // Any thread: settles the promise `id` (on the main thread).
  void settle(uint64_t id, OpResult r);
  // Main thread: settles `id` now.
  void settle_main(Napi::Env env, uint64_t id, const OpResult& r);
  // Main thread: run `fn` there later (used to join helper threads).
  void post_main(std::function<void(Napi::Env)> fn);

  // Main thread.
  void set_user_ref(bool on);
  // Main thread: releases the TSFN; later emits/settles are dropped.
  void close();
  // Main thread, env teardown: the TSFN is already gone.
  void mark_dead();

 private:
  JsBridge() = default;
  struct Delivery;
  static void call_js(Napi::Env env, Napi::Function fn, std::nullptr_t*, Delivery* d);
  bool deliver(Delivery* d);
  void update_ref();  // main thread

  using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, Delivery, &JsBridge::call_js>;
  napi_env env_ = nullptr;
  std::mutex mu_;  // guards tsfn_ use and alive_
  Tsfn tsfn_;
  bool alive_ = false;

  // Main thread only.
  std::unordered_map<uint64_t, Napi::Promise::Deferred> pending_;
  uint64_t next_id_ = 1;
  bool user_ref_ = false;
  bool refd_ = false;
};

}  // namespace nvmf
