// Module entry: instance data per environment and the cleanup hook.
#include <napi.h>

#include "addon/addon_data.h"
#include "addon/auth_wrap.h"
#include "addon/host_wrap.h"
#include "addon/perf_wrap.h"
#include "addon/target_wrap.h"

namespace nvmf {

AddonData* addon_data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

void AddonData::spawn_destroyer(std::shared_ptr<Target> t, std::function<void()> then) {
  reap(false);
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread th([t = std::move(t), then = std::move(then), done]() mutable {
    t->shutdown();
    t.reset();
    if (then) then();
    done->store(true);
  });
  destroyers.push_back({std::move(th), done});
}

void AddonData::reap(bool all) {
  for (auto it = destroyers.begin(); it != destroyers.end();) {
    if (all || it->done->load()) {
      if (it->thread.joinable()) it->thread.join();
      it = destroyers.erase(it);
    } else {
      ++it;
    }
  }
}

void AddonData::cleanup_hook(void* arg) {
  auto* d = static_cast<AddonData*>(arg);
  d->tearing_down = true;
  // The same ordered shutdown as destroy(), run inline: reactors never wait
  // for this thread, so this cannot deadlock.
  auto live = std::move(d->live);
  for (auto& h : live) {
    if (h->bridge) h->bridge->mark_dead();
    if (h->target) {
      h->target->shutdown();
      h->target.reset();
    }
    h->destroyed = true;
  }
  d->reap(true);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  // Instance data is freed after the cleanup hooks ran.
  env.SetInstanceData<AddonData>(data);
  napi_add_env_cleanup_hook(env, &AddonData::cleanup_hook, data);
  TargetWrap::Init(env, exports);
  HostWrap::Init(env, exports);
  PerfInit(env, exports);
  AuthInit(env, exports);
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  exports.Set("resources", Napi::Function::New(env, ProcessResources, "resources"));
  return exports;
}

}  // namespace nvmf

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return nvmf::Init(env, exports); }

NODE_API_MODULE(nvmf_target, InitAddon)
