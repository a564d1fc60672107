// N-API binding of the perf tool's load loop (host/perf_run.h):
// perfRun(options) -> Promise<result>. The run blocks one libuv threadpool
// thread for its duration; JavaScript never sits on the I/O path.
#pragma once

#include <napi.h>

namespace nvmf {

void PerfInit(Napi::Env env, Napi::Object exports);

}  // namespace nvmf
