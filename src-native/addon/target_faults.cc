// NativeTarget methods for hardening tests: fault injection on fault bdevs
// and resource accounting, plus the process-wide resources() of the module.
#include <napi.h>

#include "addon/ctl_worker.h"
#include "addon/fault_args.h"
#include "addon/target_wrap.h"
#include "core/target.h"

namespace nvmf {

// bdevFaults(name, faults?): sets the faults (when given) and resolves to the
// bdev's fault counters.
Napi::Value TargetWrap::BdevFaults(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!handle_ || handle_->destroy_started || !handle_->target) {
    return CtlWorker::Reject(env, OpResult::error("ERR_DESTROYED", "target is destroyed; cannot change bdev faults"));
  }
  std::shared_ptr<Target> t = handle_->target;
  if (!info[0].IsString()) return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "name must be a string"));
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bool set = false;
  FaultConfig cfg;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsObject()) return CtlWorker::Reject(env, OpResult::error("ERR_INVALID_ARGUMENT", "faults must be an object"));
    if (!parse_faults(info[1].As<Napi::Object>(), &cfg)) return env.Undefined();
    set = true;
  }
  return CtlWorker::Run(env, "nvmf:bdevFaults", [t, name, set, cfg]() {
    CtlError e;
    FaultStats st;
    int rc = t->bdev_faults(name, set ? &cfg : nullptr, &st, &e);
    if (rc < 0) return OpResult::error(e.code.empty() ? "ERR_INTERNAL" : e.code, e.message, e.err);
    OpResult r;
    r.value = [st](Napi::Env env) -> Napi::Value { return fault_stats_js(env, st); };
    return r;
  });
}

// resources(): this target's counters, synchronously (atomics only).
Napi::Value TargetWrap::GetResources(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto t = live_target(env, "read resources");
  if (!t) return env.Undefined();
  return resources_js(env, t->resource_snapshot(), false);
}

// Module function resources(): the process-wide totals, readable after every
// target is gone.
Napi::Value ProcessResources(const Napi::CallbackInfo& info) {
  return resources_js(info.Env(), process_resource_snapshot(), true);
}

}  // namespace nvmf
