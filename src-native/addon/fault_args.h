// N-API conversions for fault injection (fault bdevs) and resource
// accounting: argument readers that throw ERR_INVALID_ARGUMENT naming the
// field, and the objects handed back to JavaScript.
#pragma once

#include <napi.h>

#include <cmath>

#include "addon/args.h"
#include "bdev/fault.h"
#include "core/resources.h"

namespace nvmf {

// { errorOn?: { read?, write?, other? }, errorRate?, errorCount?, delayUs?, stall? }
inline bool parse_faults(Napi::Object o, FaultConfig* c) {
  Napi::Env env = o.Env();
  Napi::Value on = o.Get("errorOn");
  if (!on.IsUndefined()) {
    if (!on.IsObject()) return arg_fail(env, "errorOn", "must be an object");
    Napi::Object eo = on.As<Napi::Object>();
    if (!get_bool(eo, "read", &c->error_read) || !get_bool(eo, "write", &c->error_write) ||
        !get_bool(eo, "other", &c->error_other)) {
      return false;
    }
  }
  Napi::Value rate = o.Get("errorRate");
  if (!rate.IsUndefined()) {
    double d = rate.IsNumber() ? rate.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= 0.0 && d <= 1.0)) return arg_fail(env, "errorRate", "must be a number from 0 to 1");
    c->error_rate = d;
  }
  uint64_t count = 0, delay = 0;
  if (!get_uint(o, "errorCount", uint64_t(1) << 52, &count, false) ||
      !get_uint(o, "delayUs", 60ull * 1000 * 1000, &delay, false) || !get_bool(o, "stall", &c->stall)) {
    return false;
  }
  c->error_count = count;
  c->delay_us = uint32_t(delay);
  return true;
}

inline Napi::Object fault_stats_js(Napi::Env env, const FaultStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ios", Napi::Number::New(env, double(s.ios)));
  o.Set("errors", Napi::Number::New(env, double(s.errors)));
  o.Set("delayed", Napi::Number::New(env, double(s.delayed)));
  o.Set("stalled", Napi::Number::New(env, double(s.stalled)));
  o.Set("held", Napi::Number::New(env, double(s.held)));
  o.Set("cancelled", Napi::Number::New(env, double(s.cancelled)));
  return o;
}

inline Napi::Object resources_js(Napi::Env env, const ResourceSnapshot& s, bool process_wide) {
  Napi::Object o = Napi::Object::New(env);
  auto n = [&](const char* k, int64_t v) { o.Set(k, Napi::Number::New(env, double(v))); };
  if (process_wide) n("targets", s.targets);
  n("pollGroups", s.poll_groups);
  n("qpairs", s.qpairs);
  n("controllers", s.controllers);
  n("outstandingRequests", s.outstanding_requests);
  n("requestBuffers", s.request_buffers);
  n("requestBufferBytes", s.request_buffer_bytes);
  n("registeredBuffers", s.registered_buffers);
  n("bdevs", s.bdevs);
  if (process_wide) n("leakedRequests", s.leaked_requests);
  return o;
}

}  // namespace nvmf
