// The perf tool's load loop (`npx nvmf-target perf`): keeps queue_depth
// I/Os outstanding on every connection for a fixed time, resubmitting from
// the completion, and measures IOPS, bandwidth and latency (submit to
// completion, per I/O, in a log-linear histogram). Runs on the calling
// thread; no allocation once the run has started.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "host/perf_client.h"

namespace nvmf::host {

struct PerfConfig {
  PerfTargetOptions target;  // connections, queue_depth (per connection) live here
  uint32_t io_size = 4096;   // bytes, a multiple of the block size
  bool random = true;        // false: sequential, one cursor wrapping over the range
  unsigned read_pct = 100;   // 0..100: share of reads in the mix
  double duration_s = 10;    // measured time
  double ramp_s = 0;         // warm-up before measuring (not counted)
  uint64_t range_bytes = 0;  // I/O stays in [0, range); 0 = the whole namespace
  bool busy_poll = true;     // false: sleep in epoll between completions
  uint64_t seed = 0;         // 0 = from the clock
};

struct PerfResult {
  double seconds = 0;
  uint64_t ios = 0, reads = 0, writes = 0, bytes = 0, errors = 0;
  double iops = 0;
  double mib_s = 0;
  // Latency in microseconds, submit to completion.
  double lat_avg_us = 0, lat_min_us = 0, lat_max_us = 0;
  double lat_p50_us = 0, lat_p90_us = 0, lat_p99_us = 0, lat_p999_us = 0;
  uint32_t block_size = 0;
  uint64_t size_bytes = 0;
  uint16_t connections = 0;
  uint16_t queue_depth = 0;
  std::string first_error;  // the first failed I/O, if any
  // Why a failed run failed, as an NvmfError code: ERR_INVALID_ARGUMENT (the
  // configuration), ERR_CONNECTION, ERR_AUTH_FAILED, ERR_INVALID_KEY, ...
  const char* error_code = nullptr;
};

// false + *err when the run could not start or the connection failed.
// `stop` (optional) ends the run early, as if the duration had passed.
bool run_perf(const PerfConfig& cfg, PerfResult* out, std::string* err,
              const std::atomic<bool>* stop = nullptr);

}  // namespace nvmf::host
