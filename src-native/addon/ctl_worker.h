// Runs one blocking control-plane call off the Node main thread (libuv
// threadpool) and settles its promise. The closure holds the Target
// (shared_ptr), so a wrapper collected meanwhile cannot free it under us.
#pragma once

#include <napi.h>

#include <functional>

#include "addon/js_bridge.h"

namespace nvmf {

class CtlWorker : public Napi::AsyncWorker {
 public:
  using Fn = std::function<OpResult()>;
  // Returns the promise; queues the work.
  static Napi::Promise Run(Napi::Env env, const char* name, Fn fn) {
    auto* w = new CtlWorker(env, name, std::move(fn));
    Napi::Promise p = w->def_.Promise();
    w->Queue();
    return p;
  }

  static Napi::Promise Reject(Napi::Env env, const OpResult& r) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(make_error(env, r.code, r.message, r.err, r.nvme_status).Value());
    return d.Promise();
  }

 protected:
  void Execute() override { result_ = fn_(); }
  void OnOK() override {
    Napi::Env env = Env();
    if (result_.ok) {
      def_.Resolve(result_.value ? result_.value(env) : env.Undefined());
    } else {
      def_.Reject(make_error(env, result_.code, result_.message, result_.err, result_.nvme_status).Value());
    }
  }
  void OnError(const Napi::Error& e) override { def_.Reject(e.Value()); }

 private:
  CtlWorker(Napi::Env env, const char* name, Fn fn)
      : Napi::AsyncWorker(env, name), def_(Napi::Promise::Deferred::New(env)), fn_(std::move(fn)) {}
  Napi::Promise::Deferred def_;
  Fn fn_;
  OpResult result_;
};

}  // namespace nvmf
