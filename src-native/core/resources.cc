#include "core/resources.h"

#include <algorithm>
#include <mutex>
#include <vector>

namespace nvmf {

namespace {

// Leaked on purpose: counters must stay valid while static destructors and
// environment cleanup hooks run at exit.
struct Registry {
  std::mutex mu;
  std::vector<const PollGroupCounters*> groups;
};

Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

}  // namespace

Resources& process_resources() {
  static Resources* r = new Resources();
  return *r;
}

ResourceSnapshot Resources::snapshot() const {
  auto get = [](const std::atomic<int64_t>& a) { return a.load(std::memory_order_relaxed); };
  ResourceSnapshot s;
  s.targets = get(targets);
  s.poll_groups = get(poll_groups);
  s.qpairs = get(qpairs);
  s.controllers = get(controllers);
  s.request_buffers = get(request_buffers);
  s.request_buffer_bytes = get(request_buffer_bytes);
  s.registered_buffers = get(registered_buffers);
  s.bdevs = get(bdevs);
  s.leaked_requests = get(leaked_requests);
  return s;
}

ResourceSnapshot process_resource_snapshot() {
  ResourceSnapshot s = process_resources().snapshot();
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  for (const PollGroupCounters* c : r.groups) s.outstanding_requests += c->outstanding();
  return s;
}

PollGroupCounters::PollGroupCounters() {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  r.groups.push_back(this);
}

PollGroupCounters::~PollGroupCounters() {
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> g(r.mu);
    r.groups.erase(std::remove(r.groups.begin(), r.groups.end(), this), r.groups.end());
  }
  // A request counted but never completed was freed with its qpair.
  if (int64_t left = outstanding()) {
    process_resources().leaked_requests.fetch_add(left, std::memory_order_relaxed);
  }
}

}  // namespace nvmf
