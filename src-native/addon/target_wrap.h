// N-API wrapper of a Target: argument checks, promise plumbing, nothing else.
#pragma once

#include <napi.h>

#include <memory>

#include "addon/addon_data.h"

namespace nvmf {

class TargetWrap : public Napi::ObjectWrap<TargetWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit TargetWrap(const Napi::CallbackInfo& info);
  ~TargetWrap() override;

  // The live target, or nullptr after a JS exception (ERR_DESTROYED) was
  // thrown into `env`.
  std::shared_ptr<Target> live_target(Napi::Env env, const char* what);
  std::shared_ptr<TargetHandle> handle() const { return handle_; }

 private:
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value ReactorInfo(const Napi::CallbackInfo& info);
  // target_ctl.cc
  Napi::Value CreateBdev(const Napi::CallbackInfo& info);
  Napi::Value DeleteBdev(const Napi::CallbackInfo& info);
  Napi::Value CreateSubsystem(const Napi::CallbackInfo& info);
  Napi::Value DeleteSubsystem(const Napi::CallbackInfo& info);
  Napi::Value AddNamespace(const Napi::CallbackInfo& info);
  Napi::Value RemoveNamespace(const Napi::CallbackInfo& info);
  Napi::Value HostOp(const Napi::CallbackInfo& info);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value SubsystemListener(const Napi::CallbackInfo& info);
  Napi::Value Config(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  // target_faults.cc
  Napi::Value BdevFaults(const Napi::CallbackInfo& info);
  Napi::Value GetResources(const Napi::CallbackInfo& info);
  // DH-HMAC-CHAP policy (auth_wrap.h reads it).
  Napi::Value SetAuthPolicy(const Napi::CallbackInfo& info);

  std::shared_ptr<TargetHandle> handle_;
};

// Module function resources() (target_faults.cc): process-wide counters.
Napi::Value ProcessResources(const Napi::CallbackInfo& info);

}  // namespace nvmf
