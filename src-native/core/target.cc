#include "core/target.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/controller.h"

namespace nvmf {

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

Target::Target(const TargetOptions& opts, std::shared_ptr<EventSink> sink)
    : opts_(opts),
      sink_(std::move(sink)),
      policy_(std::make_shared<const auth::AuthPolicy>(opts.auth)),
      res_(std::make_shared<Resources>(&process_resources())) {
  res_->add(&Resources::targets, 1);
}

std::shared_ptr<const auth::AuthPolicy> Target::auth_policy() const {
  std::lock_guard<std::mutex> g(policy_mu_);
  return policy_;
}

void Target::set_auth_policy(const auth::AuthPolicy& p) {
  auto next = std::make_shared<const auth::AuthPolicy>(p);
  std::lock_guard<std::mutex> g(policy_mu_);
  policy_ = std::move(next);
}

Target::~Target() {
  // The owner must have run shutdown(); do it here as a last resort so no
  // thread outlives the object.
  shutdown();
  res_->add(&Resources::targets, -1);
}

ResourceSnapshot Target::resource_snapshot() const {
  ResourceSnapshot s = res_->snapshot();
  std::lock_guard<std::mutex> g(mu_);
  s.poll_groups = int64_t(linked_.size());
  s.bdevs = int64_t(bdevs_.size());
  for (auto& pg : groups_) s.outstanding_requests += pg->counters.outstanding();
  return s;
}

int Target::create(const TargetOptions& opts, std::shared_ptr<EventSink> sink,
                   std::shared_ptr<Target>* out) {
  std::shared_ptr<Target> t(new Target(opts, std::move(sink)));
  for (int i = 0; i < opts.reactors; i++) {
    auto g = std::make_shared<PollGroup>(i, opts.poll_mode, opts.adaptive_idle_us * 1000);
    int rc = g->reactor().start();
    t->groups_.push_back(std::move(g));
    if (rc < 0) {
      // Unwind: the groups started so far are stopped by shutdown().
      t->linked_ = t->groups_;
      t->shutdown();
      return rc;
    }
  }
  t->linked_ = t->groups_;
  SubsystemConfig d;
  d.nqn = std::string(kDiscoveryNqn);
  d.type = SubsystemType::Discovery;
  d.serial = "discovery";
  d.model = "nvmf-target discovery";
  d.allow_any_host = true;
  d.max_namespaces = 0;
  auto disc = std::make_shared<Subsystem>(*t, d);
  disc->set_state(SubsystemState::Active);
  t->subsystems_.emplace(d.nqn, std::move(disc));
  *out = std::move(t);
  return 0;
}

TargetState Target::state() const {
  std::lock_guard<std::mutex> g(mu_);
  return state_;
}

void Target::set_state(TargetState s) {
  std::lock_guard<std::mutex> g(mu_);
  // A broken transition is a programming error: the stages below are the
  // only writer and run in order. Checked in every build type.
  if (!target_transition_allowed(state_, s)) {
    fprintf(stderr, "nvmf-target: illegal target transition %s -> %s\n",
            target_state_name(state_), target_state_name(s));
    abort();
  }
  state_ = s;
}

std::shared_ptr<PollGroup> Target::pick_group() {
  std::lock_guard<std::mutex> g(mu_);
  std::shared_ptr<PollGroup> best;
  for (auto& pg : linked_) {
    if (pg->draining()) continue;
    if (!best || pg->active_qpairs.load() < best->active_qpairs.load()) best = pg;
  }
  return best;
}

std::shared_ptr<PollGroup> Target::group(int i) {
  if (i < 0 || i >= int(groups_.size())) return nullptr;
  return groups_[i];
}

// ---------------------------------------------------------------------------
// Lookups (any thread).

std::shared_ptr<Subsystem> Target::find_subsystem(const std::string& nqn) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = subsystems_.find(nqn);
  return it == subsystems_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Subsystem>> Target::subsystems() const {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<std::shared_ptr<Subsystem>> out;
  for (auto& [k, v] : subsystems_) out.push_back(v);
  return out;
}

std::shared_ptr<Bdev> Target::find_bdev(const std::string& name) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = bdevs_.find(name);
  return it == bdevs_.end() ? nullptr : it->second;
}

std::vector<BdevInfo> Target::bdevs() const {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<BdevInfo> out;
  for (auto& [k, v] : bdevs_) out.push_back(v->info());
  return out;
}

Transport* Target::transport(const std::string& name) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = transports_.find(name);
  return it == transports_.end() ? nullptr : it->second.get();
}

std::vector<Transport*> Target::transports() const {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<Transport*> out;
  for (auto& [k, v] : transports_) out.push_back(v.get());
  return out;
}

std::vector<ListenAddress> Target::listeners() const {
  std::lock_guard<std::mutex> g(mu_);
  return listeners_;
}

// ---------------------------------------------------------------------------
// Control plane.

#define CTL_GUARD(what)                                                          \
  std::lock_guard<std::mutex> ctl_guard(ctl_mu_);                                \
  if (!running()) {                                                              \
    e->set("ERR_DESTROYED", std::string("target is destroyed; cannot ") + what); \
    return -ESHUTDOWN;                                                           \
  }

void Target::each_group(const std::function<void(PollGroup&)>& fn) {
  std::vector<std::shared_ptr<PollGroup>> gs;
  {
    std::lock_guard<std::mutex> g(mu_);
    gs = linked_;
  }
  for (auto& pg : gs) {
    PollGroup* p = pg.get();
    pg->reactor().call([p, &fn] { fn(*p); });
  }
}

int Target::create_bdev(const BdevInfo& info, CtlError* e, const FaultConfig* faults) {
  CTL_GUARD("create bdev " + info.name);
  if (find_bdev(info.name)) {
    e->set("ERR_ALREADY_EXISTS", "bdev " + info.name + " already exists");
    return -EEXIST;
  }
  if (info.type == "fault" && !find_bdev(info.base)) {
    e->set("ERR_NOT_FOUND", "bdev " + info.name + ": base bdev " + info.base + " does not exist");
    return -ENOENT;
  }
  std::shared_ptr<Bdev> b;
  std::string err;
  int rc;
  if (info.type == "malloc") rc = bdev_create_malloc(info, &b, &err);
  else if (info.type == "null") rc = bdev_create_null(info, &b, &err);
  else if (info.type == "uring") rc = bdev_create_uring(info, &b, &err);
  else if (info.type == "nvme") rc = bdev_create_nvme(info, &b, &err);
  else if (info.type == "fault") rc = bdev_create_fault(info, find_bdev(info.base), faults ? *faults : FaultConfig{}, &b, &err);
  else {
    e->set("ERR_INVALID_ARGUMENT", "bdev " + info.name + ": unknown type " + info.type);
    return -EINVAL;
  }
  if (rc < 0) {
    const char* code = rc == -ENOMEM ? "ERR_RESOURCE"
                       : rc == -EINVAL || rc == -ENOENT || rc == -EISDIR || rc == -ENOTBLK
                           ? "ERR_INVALID_ARGUMENT"
                           : "ERR_IO";
    e->set(code, "bdev " + info.name + ": " + (err.empty() ? strerror(-rc) : err), -rc);
    return rc;
  }
  if (b->info().removable && (rc = hot_remove_->watch(b)) < 0) {
    e->set(rc == -ESHUTDOWN ? "ERR_DESTROYED" : "ERR_RESOURCE",
           "bdev " + info.name + ": cannot watch " + info.path + " for hot removal: " + strerror(-rc), -rc);
    return rc;
  }
  std::lock_guard<std::mutex> g(mu_);
  bdevs_.emplace(info.name, std::move(b));
  return 0;
}

void Target::remove_gone_bdev(const std::shared_ptr<Bdev>& b) {
  std::lock_guard<std::mutex> ctl(ctl_mu_);
  if (!running()) return;  // shutdown removes everything anyway
  std::string list;
  for (auto& s : subsystems()) {
    if (s->type() == SubsystemType::Discovery) continue;
    auto t = s->ns_table();
    for (uint32_t nsid = 1; nsid <= t->max_nsid(); nsid++) {
      auto ns = t->get(nsid);
      std::string err;
      // Sends the AEN and fills the changed-namespace log of every controller.
      if (!ns || ns->bdev != b || s->remove_namespace(nsid, &err) < 0) continue;
      list += (list.empty() ? "" : ",") + std::string("{\"nqn\":") + json_str(s->nqn()) +
              ",\"nsid\":" + std::to_string(nsid) + "}";
    }
  }
  // A dead bdev is only in the way: its name is free for the device when it
  // comes back. One still claimed (wrapped by a fault bdev) stays.
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = bdevs_.find(b->info().name);
    if (it != bdevs_.end() && it->second == b && b->claims.load() == 0) {
      retired_bdevs_.push_back(it->second);
      bdevs_.erase(it);
    }
  }
  sink_->emit("device-removed", "{\"bdev\":" + json_str(b->info().name) + ",\"path\":" +
                                    json_str(b->info().path) + ",\"namespaces\":[" + list + "]}");
}

int Target::delete_bdev(const std::string& name, CtlError* e) {
  CTL_GUARD("delete bdev " + name);
  std::lock_guard<std::mutex> g(mu_);
  auto it = bdevs_.find(name);
  if (it == bdevs_.end()) {
    e->set("ERR_NOT_FOUND", "bdev " + name + " does not exist");
    return -ENOENT;
  }
  if (it->second->claims.load() > 0) {
    e->set("ERR_BUSY", "bdev " + name + " is used by " + std::to_string(it->second->claims.load()) +
                           " namespace(s); remove them first");
    return -EBUSY;
  }
  // In-flight I/O of a just-removed namespace may still pin it; it is freed
  // with its last reference.
  std::erase_if(retired_bdevs_, [](const std::weak_ptr<Bdev>& w) { return w.expired(); });
  retired_bdevs_.push_back(it->second);
  bdevs_.erase(it);
  return 0;
}

int Target::bdev_faults(const std::string& name, const FaultConfig* cfg, FaultStats* out, CtlError* e) {
  CTL_GUARD("change the faults of bdev " + name);
  auto b = find_bdev(name);
  if (!b) {
    e->set("ERR_NOT_FOUND", "bdev " + name + " does not exist");
    return -ENOENT;
  }
  int rc = cfg ? bdev_set_faults(*b, *cfg) : 0;
  if (rc == 0) rc = bdev_fault_stats(*b, out);
  if (rc == -ENOTSUP) {
    e->set("ERR_INVALID_ARGUMENT", "bdev " + name + " is not a fault bdev (type " + b->info().type + ")");
  } else if (rc < 0) {
    e->set("ERR_INVALID_ARGUMENT", "bdev " + name + ": invalid faults", -rc);
  }
  return rc;
}

void Target::cancel_backend_io() {
  std::vector<std::shared_ptr<Bdev>> bs;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [k, v] : bdevs_) bs.push_back(v);
    for (auto& w : retired_bdevs_) {
      if (auto b = w.lock()) bs.push_back(std::move(b));
    }
  }
  each_group([&bs](PollGroup& g) {
    for (auto& b : bs) b->cancel_io(g);
  });
}

int Target::create_subsystem(const SubsystemConfig& cfg, CtlError* e) {
  CTL_GUARD("create subsystem " + cfg.nqn);
  if (cfg.nqn.empty() || cfg.nqn.size() > kNqnMaxLen) {
    e->set("ERR_INVALID_ARGUMENT", "subsystem nqn must be 1 to 223 characters");
    return -EINVAL;
  }
  if (find_subsystem(cfg.nqn)) {
    e->set("ERR_ALREADY_EXISTS", "subsystem " + cfg.nqn + " already exists");
    return -EEXIST;
  }
  auto s = std::make_shared<Subsystem>(*this, cfg);
  s->set_state(SubsystemState::Active);
  std::lock_guard<std::mutex> g(mu_);
  subsystems_.emplace(cfg.nqn, std::move(s));
  return 0;
}

// Disconnects every controller of `s` and waits until they are gone.
static void disconnect_controllers(Subsystem& s, uint32_t timeout_ms) {
  for (auto& c : s.controllers()) {
    auto group = c->group_ref();
    group->reactor().post([c] { c->fail("subsystem is being removed"); });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms * 2 + 1000);
  while (!s.controllers().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

static void release_namespaces(Subsystem& s) {
  auto table = s.ns_table();
  std::string ignored;
  for (uint32_t nsid = 1; nsid <= table->max_nsid(); nsid++) {
    if (table->get(nsid)) s.remove_namespace(nsid, &ignored);
  }
}

int Target::delete_subsystem(const std::string& nqn, CtlError* e) {
  CTL_GUARD("delete subsystem " + nqn);
  auto s = find_subsystem(nqn);
  if (!s || s->type() == SubsystemType::Discovery) {
    e->set("ERR_NOT_FOUND", "subsystem " + nqn + " does not exist");
    return -ENOENT;
  }
  if (!s->set_state(SubsystemState::Deactivating)) {
    e->set("ERR_BUSY", std::string("subsystem ") + nqn + " is " + subsystem_state_name(s->state()));
    return -EBUSY;
  }
  {
    // Unlinked first: no new Connect can find it.
    std::lock_guard<std::mutex> g(mu_);
    subsystems_.erase(nqn);
  }
  disconnect_controllers(*s, opts_.disconnect_timeout_ms);
  release_namespaces(*s);
  s->set_state(SubsystemState::Inactive);
  return 0;
}

int Target::add_namespace(const std::string& nqn, const std::string& bdev, uint32_t nsid,
                          const Namespace& ids, uint32_t* nsid_out, CtlError* e) {
  CTL_GUARD("add a namespace to subsystem " + nqn);
  auto s = find_subsystem(nqn);
  if (!s || s->type() == SubsystemType::Discovery) {
    e->set("ERR_NOT_FOUND", "subsystem " + nqn + " does not exist");
    return -ENOENT;
  }
  auto b = find_bdev(bdev);
  if (!b) {
    e->set("ERR_NOT_FOUND", "bdev " + bdev + " does not exist");
    return -ENOENT;
  }
  auto ns = std::make_shared<Namespace>(ids);
  ns->nsid = nsid;
  ns->bdev = b;
  b->claims.fetch_add(1);
  std::string err;
  int64_t rc = s->add_namespace(ns, &err);
  if (rc < 0) {
    b->claims.fetch_sub(1);
    e->set(rc == -EEXIST ? "ERR_ALREADY_EXISTS" : rc == -ENOSPC ? "ERR_RESOURCE" : "ERR_INVALID_ARGUMENT",
           err, int(-rc));
    return int(rc);
  }
  *nsid_out = uint32_t(rc);
  return 0;
}

int Target::remove_namespace(const std::string& nqn, uint32_t nsid, CtlError* e) {
  CTL_GUARD("remove a namespace of subsystem " + nqn);
  auto s = find_subsystem(nqn);
  if (!s || s->type() == SubsystemType::Discovery) {
    e->set("ERR_NOT_FOUND", "subsystem " + nqn + " does not exist");
    return -ENOENT;
  }
  std::string err;
  int rc = s->remove_namespace(nsid, &err);
  if (rc < 0) {
    e->set("ERR_NOT_FOUND", err, -rc);
    return rc;
  }
  return 0;
}

int Target::ensure_transport(const std::string& name, Transport** out, CtlError* e) {
  if (Transport* t = transport(name)) {
    *out = t;
    return 0;
  }
  const TransportOps* ops = transport_ops_by_name(name);
  if (ops == nullptr) {
    e->set("ERR_TRANSPORT_UNAVAILABLE", "transport " + name + " is not available in this build");
    return -EPROTONOSUPPORT;
  }
  std::unique_ptr<Transport> t;
  std::string err;
  int rc = ops->create(*this, opts_.transport, &t, &err);
  if (rc < 0) {
    e->set("ERR_TRANSPORT_UNAVAILABLE", "transport " + name + ": " + err, -rc);
    return rc;
  }
  Transport* raw = t.get();
  int grc = 0;
  std::string gerr;
  each_group([&](PollGroup& g) {
    if (grc == 0 && ops->poll_group_create) grc = ops->poll_group_create(*raw, g, &gerr);
  });
  if (grc < 0) {
    each_group([&](PollGroup& g) {
      if (ops->poll_group_destroy) ops->poll_group_destroy(*raw, g);
    });
    ops->destroy(*raw);
    e->set("ERR_RESOURCE", "transport " + name + ": " + gerr, -grc);
    return grc;
  }
  std::lock_guard<std::mutex> g(mu_);
  *out = raw;
  transports_.emplace(name, std::move(t));
  return 0;
}

int Target::listen(const ListenAddress& a, CtlError* e) {
  CTL_GUARD("listen on " + a.str());
  for (auto& l : listeners()) {
    if (l == a) {
      e->set("ERR_ALREADY_EXISTS", "target already listens on " + a.str());
      return -EEXIST;
    }
  }
  Transport* t;
  int rc = ensure_transport(a.transport, &t, e);
  if (rc < 0) return rc;
  std::string err;
  rc = t->ops->listen(*t, a, &err);
  if (rc < 0) {
    const char* code = rc == -EADDRINUSE ? "ERR_BUSY"
                       : rc == -EADDRNOTAVAIL || rc == -EINVAL ? "ERR_INVALID_ARGUMENT"
                                                               : "ERR_RESOURCE";
    e->set(code, "cannot listen on " + a.str() + ": " + (err.empty() ? strerror(-rc) : err), -rc);
    return rc;
  }
  std::lock_guard<std::mutex> g(mu_);
  listeners_.push_back(a);
  return 0;
}

int Target::stop_listen(const ListenAddress& a, CtlError* e) {
  CTL_GUARD("stop listening on " + a.str());
  bool found = false;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
      if (*it == a) {
        listeners_.erase(it);
        found = true;
        break;
      }
    }
  }
  if (!found) {
    e->set("ERR_NOT_FOUND", "target does not listen on " + a.str());
    return -ENOENT;
  }
  if (Transport* t = transport(a.transport)) t->ops->stop_listen(*t, a);
  return 0;
}

// ---------------------------------------------------------------------------
// Ordered shutdown.

void Target::shutdown() {
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (shutting_down_) {
      cv_.wait(lk, [&] { return state_ == TargetState::Destroyed; });
      return;
    }
    shutting_down_ = true;
  }
  run_shutdown_stages();
  cv_.notify_all();
}

namespace {
// Counts down completions that arrive on reactors.
struct Latch {
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;
  void done() {
    std::lock_guard<std::mutex> g(mu);
    if (--count == 0) cv.notify_all();
  }
  bool wait_for(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, d, [&] { return count <= 0; });
  }
};
}  // namespace

void Target::run_shutdown_stages() {
  // The hot-remove helper takes ctl_mu_ itself: join it before we hold that.
  hot_remove_->stop();
  // Waits for any control call in progress, and keeps new ones out.
  std::lock_guard<std::mutex> ctl(ctl_mu_);
  const auto drain_limit = std::chrono::milliseconds(opts_.disconnect_timeout_ms * 2 + 1000);

  // 1. Pause subsystems: new I/O is held, in-flight I/O drains. Backend I/O
  // that outlasts the drain limit (a stalled device) is cancelled where the
  // backend can give it back; I/O the kernel owns is waited for in stage 3.
  set_state(TargetState::PausingSubsystems);
  auto subs = subsystems();
  std::vector<std::shared_ptr<Subsystem>> pausing;
  for (auto& s : subs) {
    if (s->type() == SubsystemType::Discovery) continue;
    if (s->set_state(SubsystemState::Pausing)) pausing.push_back(s);
  }
  auto inflight = [&pausing] {
    int64_t n = 0;
    for (auto& s : pausing) n += s->io_inflight.load();
    return n;
  };
  auto drain = [&inflight](std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (inflight() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return inflight() == 0;
  };
  const auto io_limit = std::chrono::milliseconds(opts_.disconnect_timeout_ms);
  if (!drain(io_limit)) {
    fprintf(stderr, "nvmf-target: shutdown: %lld I/O(s) still in flight after %u ms; cancelling backend I/O\n",
            (long long)inflight(), unsigned(io_limit.count()));
    cancel_backend_io();
    drain(drain_limit);
  }
  for (auto& s : pausing) s->set_state(SubsystemState::Paused);
  pausing.clear();

  // 2. Stop listeners: no new connection can arrive.
  set_state(TargetState::StoppingListeners);
  std::vector<ListenAddress> ls;
  {
    std::lock_guard<std::mutex> g(mu_);
    ls.swap(listeners_);
  }
  for (auto& a : ls) {
    if (Transport* t = transport(a.transport)) t->ops->stop_listen(*t, a);
  }

  // 3. Disconnect every qpair; each transport flushes and confirms the final
  // responses before it closes a connection.
  set_state(TargetState::DisconnectingQpairs);
  auto ts = transports();
  Latch latch;
  {
    std::vector<std::shared_ptr<PollGroup>> gs;
    {
      std::lock_guard<std::mutex> g(mu_);
      gs = linked_;
    }
    for (auto& pg : gs) {
      for (Transport* t : ts) {
        if (!t->ops->poll_group_disconnect_all) continue;
        {
          std::lock_guard<std::mutex> g(latch.mu);
          latch.count++;
        }
        PollGroup* p = pg.get();
        bool posted = pg->reactor().post([t, p, &latch] {
          t->ops->poll_group_disconnect_all(*t, *p, [](void* arg) { static_cast<Latch*>(arg)->done(); },
                                            &latch);
        });
        if (!posted) latch.done();
      }
    }
  }
  if (!latch.wait_for(drain_limit)) {
    fprintf(stderr, "nvmf-target: shutdown: qpairs still draining after %u ms; cancelling backend I/O\n",
            unsigned(drain_limit.count()));
    cancel_backend_io();
    // The latch lives on this stack: wait until the stragglers reported, as
    // the reactors still hold a pointer to it. Transports guarantee progress
    // once a bdev I/O completes; I/O that only the kernel can finish is
    // waited for, because its buffers are the kernel's until then.
    latch.wait_for(std::chrono::hours(24));
  }

  // 4. Destroy subsystems and controllers.
  set_state(TargetState::DestroyingSubsystems);
  for (auto& s : subs) {
    s->set_state(SubsystemState::Deactivating);
    disconnect_controllers(*s, opts_.disconnect_timeout_ms);
    release_namespaces(*s);
    s->set_state(SubsystemState::Inactive);
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    subsystems_.clear();
  }
  subs.clear();

  // 5. Poll groups: unlink every group from the scheduler before any
  // teardown starts, so no acceptor can pick a group that is going away;
  // then free per-group transport state and the ring, and join the thread.
  set_state(TargetState::DestroyingPollGroups);
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& pg : linked_) pg->mark_draining();
    linked_.clear();
  }
  for (auto& pg : groups_) {
    PollGroup* p = pg.get();
    pg->reactor().call([p, &ts] {
      for (Transport* t : ts) {
        if (t->ops->poll_group_destroy) t->ops->poll_group_destroy(*t, *p);
      }
      p->tgroups.clear();
      p->uring.fini();
    });
    pg->reactor().stop_and_join();
  }

  // 6. Transports (RDMA PD/CQ/channel) and bdevs.
  set_state(TargetState::DestroyingTransports);
  for (Transport* t : ts) t->ops->destroy(*t);
  {
    std::lock_guard<std::mutex> g(mu_);
    transports_.clear();
    bdevs_.clear();
  }
  set_state(TargetState::Destroyed);
}

}  // namespace nvmf
