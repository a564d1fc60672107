// Per-Node-environment state (each worker_thread gets its own): the live
// targets and the helper threads that destroy them. The environment cleanup
// hook shuts every live target down synchronously, in order, so
// process.exit() and worker.terminate() leave nothing running.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "addon/js_bridge.h"
#include "core/target.h"

namespace nvmf {

// Main-thread view of one target. Outlives its JS wrapper while a destroy is
// in flight (the completion callback holds it).
struct TargetHandle {
  std::shared_ptr<Target> target;  // reset (detached) once destroyed
  std::shared_ptr<JsBridge> bridge;
  bool destroy_started = false;
  bool destroyed = false;
  std::vector<uint64_t> destroy_waiters;  // promise ids sharing one destroy
};

struct HostHandle;  // addon/host_wrap.h

struct AddonData {
  std::set<std::shared_ptr<TargetHandle>> live;
  // Open host connections (NativeHost); host_wrap.cc's own cleanup hook
  // closes them before this struct's hook runs.
  std::set<std::shared_ptr<HostHandle>> hosts;
  struct Destroyer {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Destroyer> destroyers;
  bool tearing_down = false;
  Napi::FunctionReference target_ctor;

  // Starts `t->shutdown()` on a helper thread; `then` runs on that thread
  // afterwards. Finished helpers are joined here and at teardown.
  void spawn_destroyer(std::shared_ptr<Target> t, std::function<void()> then);
  void reap(bool all);
  static void cleanup_hook(void* arg);
};

AddonData* addon_data(Napi::Env env);

}  // namespace nvmf
