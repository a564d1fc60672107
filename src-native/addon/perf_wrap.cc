#include "addon/perf_wrap.h"

#include <cmath>
#include <string>

#include "addon/args.h"
#include "addon/ctl_worker.h"
#include "host/perf_run.h"

namespace nvmf {

namespace {

bool get_double(Napi::Object o, const char* key, double lo, double hi, double* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return true;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= lo && d <= hi)) {
    return arg_fail(o.Env(), key, ("must be a number from " + std::to_string(lo) + " to " +
                                   std::to_string(hi)).c_str());
  }
  *out = d;
  return true;
}

// perfRun({ transport, address, port, subnqn, hostnqn, nsid, connections,
//           queueDepth, ioSize, pattern: 'random'|'sequential', readPercent,
//           durationSec, rampSec, rangeBytes, busyPoll, hdgst, ddgst,
//           dhchapSecret, dhchapCtrlSecret, maxInCapsuleBytes })
Napi::Value PerfRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    arg_fail(env, "options", "must be an object");
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  host::PerfConfig cfg;
  host::PerfTargetOptions& t = cfg.target;
  uint64_t port = t.port, nsid = t.nsid, conns = t.connections, qd = t.queue_depth;
  uint64_t io_size = cfg.io_size, read_pct = cfg.read_pct, range = 0, incapsule = t.max_incapsule;
  std::string pattern = "random";
  if (!get_str(o, "transport", &t.transport, false) || !get_str(o, "address", &t.address, false) ||
      !get_uint(o, "port", 65535, &port, false) || !get_str(o, "subnqn", &t.subnqn, false) ||
      !get_str(o, "hostnqn", &t.hostnqn, false) || !get_uint(o, "nsid", 0xfffffffe, &nsid, false) ||
      !get_uint(o, "connections", 64, &conns, false) || !get_uint(o, "queueDepth", 1024, &qd, false) ||
      !get_uint(o, "ioSize", 1u << 20, &io_size, false) || !get_str(o, "pattern", &pattern, false) ||
      !get_uint(o, "readPercent", 100, &read_pct, false) ||
      !get_double(o, "durationSec", 0.01, 86400, &cfg.duration_s) ||
      !get_double(o, "rampSec", 0, 3600, &cfg.ramp_s) ||
      !get_uint(o, "rangeBytes", uint64_t(1) << 53, &range, false) ||
      !get_bool(o, "busyPoll", &cfg.busy_poll) || !get_bool(o, "hdgst", &t.hdgst) ||
      !get_bool(o, "ddgst", &t.ddgst) || !get_str(o, "dhchapSecret", &t.dhchap_secret, false) ||
      !get_str(o, "dhchapCtrlSecret", &t.dhchap_ctrl_secret, false) ||
      !get_uint(o, "maxInCapsuleBytes", 131072, &incapsule, false)) {
    return env.Undefined();
  }
  if (pattern != "random" && pattern != "sequential") {
    arg_fail(env, "pattern", "must be 'random' or 'sequential'");
    return env.Undefined();
  }
  if (port == 0 || nsid == 0 || conns == 0 || qd == 0 || io_size == 0) {
    arg_fail(env, "port, nsid, connections, queueDepth and ioSize", "must be positive");
    return env.Undefined();
  }
  t.port = uint16_t(port);
  t.nsid = uint32_t(nsid);
  t.connections = uint16_t(conns);
  t.queue_depth = uint16_t(qd);
  t.max_incapsule = uint32_t(incapsule);
  cfg.io_size = uint32_t(io_size);
  cfg.read_pct = unsigned(read_pct);
  cfg.range_bytes = range;
  cfg.random = pattern == "random";

  return CtlWorker::Run(env, "nvmf:perf", [cfg]() -> OpResult {
    host::PerfResult r;
    std::string err;
    if (!host::run_perf(cfg, &r, &err)) {
      return OpResult::error(r.error_code ? r.error_code : "ERR_CONNECTION", "perf: " + err);
    }
    OpResult ok;
    ok.value = [r](Napi::Env e) -> Napi::Value {
      Napi::Object v = Napi::Object::New(e);
      v.Set("seconds", r.seconds);
      v.Set("ios", double(r.ios));
      v.Set("reads", double(r.reads));
      v.Set("writes", double(r.writes));
      v.Set("bytes", double(r.bytes));
      v.Set("errors", double(r.errors));
      v.Set("iops", r.iops);
      v.Set("mibPerSec", r.mib_s);
      Napi::Object lat = Napi::Object::New(e);
      lat.Set("avg", r.lat_avg_us);
      lat.Set("min", r.lat_min_us);
      lat.Set("max", r.lat_max_us);
      lat.Set("p50", r.lat_p50_us);
      lat.Set("p90", r.lat_p90_us);
      lat.Set("p99", r.lat_p99_us);
      lat.Set("p999", r.lat_p999_us);
      v.Set("latencyUs", lat);
      v.Set("blockSize", double(r.block_size));
      v.Set("sizeBytes", double(r.size_bytes));
      v.Set("connections", double(r.connections));
      v.Set("queueDepth", double(r.queue_depth));
      if (!r.first_error.empty()) v.Set("firstError", r.first_error);
      return v;
    };
    return ok;
  });
}

}  // namespace

void PerfInit(Napi::Env env, Napi::Object exports) {
  exports.Set("perfRun", Napi::Function::New(env, PerfRun, "perfRun"));
}

}  // namespace nvmf
