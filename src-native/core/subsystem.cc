#include "core/subsystem.h"

#include <cerrno>

#include "core/controller.h"
#include "core/target.h"

namespace nvmf {

const char* subsystem_state_name(SubsystemState s) {
  switch (s) {
    case SubsystemState::Inactive: return "inactive";
    case SubsystemState::Active: return "active";
    case SubsystemState::Pausing: return "pausing";
    case SubsystemState::Paused: return "paused";
    case SubsystemState::Resuming: return "resuming";
    case SubsystemState::Deactivating: return "deactivating";
  }
  return "?";
}

bool subsystem_transition_allowed(SubsystemState from, SubsystemState to) {
  switch (to) {
    case SubsystemState::Active:
      return from == SubsystemState::Inactive || from == SubsystemState::Resuming;
    case SubsystemState::Pausing: return from == SubsystemState::Active;
    case SubsystemState::Paused: return from == SubsystemState::Pausing;
    case SubsystemState::Resuming: return from == SubsystemState::Paused;
    case SubsystemState::Deactivating:
      return from == SubsystemState::Active || from == SubsystemState::Paused;
    case SubsystemState::Inactive: return from == SubsystemState::Deactivating;
  }
  return false;
}

Subsystem::Subsystem(Target& target, SubsystemConfig cfg)
    : target_(target),
      cfg_(std::move(cfg)),
      ns_(std::make_shared<const NsTable>()),
      allow_any_host_(cfg_.allow_any_host),
      next_cntlid_(cfg_.min_cntlid) {}

Subsystem::~Subsystem() = default;

bool Subsystem::set_state(SubsystemState s) {
  SubsystemState cur = state_.load();
  do {
    if (!subsystem_transition_allowed(cur, s)) return false;
  } while (!state_.compare_exchange_weak(cur, s));
  return true;
}

int64_t Subsystem::add_namespace(std::shared_ptr<Namespace> ns, std::string* err) {
  uint32_t nsid;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto cur = std::atomic_load(&ns_);
    auto next = std::make_shared<NsTable>(*cur);
    nsid = ns->nsid;
    if (nsid == 0) {
      for (nsid = 1; nsid <= cfg_.max_namespaces; nsid++) {
        if (!next->get(nsid)) break;
      }
      if (nsid > cfg_.max_namespaces) {
        *err = "subsystem " + cfg_.nqn + " has no free namespace id (maxNamespaces " +
               std::to_string(cfg_.max_namespaces) + ")";
        return -ENOSPC;
      }
    } else if (nsid > cfg_.max_namespaces || nsid == kNsidAll) {
      *err = "subsystem " + cfg_.nqn + ": nsid " + std::to_string(nsid) +
             " is out of range 1.." + std::to_string(cfg_.max_namespaces);
      return -EINVAL;
    } else if (next->get(nsid)) {
      *err = "subsystem " + cfg_.nqn + ": namespace " + std::to_string(nsid) + " already exists";
      return -EEXIST;
    }
    ns->nsid = nsid;
    if (next->ns.size() < nsid) next->ns.resize(nsid);
    next->ns[nsid - 1] = std::move(ns);
    std::atomic_store(&ns_, std::shared_ptr<const NsTable>(std::move(next)));
  }
  notify_ns_changed(nsid);
  return nsid;
}

int Subsystem::remove_namespace(uint32_t nsid, std::string* err) {
  std::shared_ptr<Namespace> gone;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto cur = std::atomic_load(&ns_);
    if (!cur->get(nsid)) {
      *err = "subsystem " + cfg_.nqn + ": namespace " + std::to_string(nsid) + " does not exist";
      return -ENOENT;
    }
    auto next = std::make_shared<NsTable>(*cur);
    gone = std::move(next->ns[nsid - 1]);
    while (!next->ns.empty() && !next->ns.back()) next->ns.pop_back();
    std::atomic_store(&ns_, std::shared_ptr<const NsTable>(std::move(next)));
  }
  // In-flight I/O still pins `gone` (and its bdev) through Request::ns.
  if (gone->bdev) gone->bdev->claims.fetch_sub(1);
  notify_ns_changed(nsid);
  return 0;
}

bool Subsystem::host_allowed(const std::string& hostnqn) const {
  if (cfg_.type == SubsystemType::Discovery) return true;
  std::lock_guard<std::mutex> g(mu_);
  if (allow_any_host_) return true;
  for (auto& h : hosts_) {
    if (h.nqn == hostnqn) return true;
  }
  return false;
}

int Subsystem::add_host(HostEntry h, std::string* err) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto& e : hosts_) {
    if (e.nqn == h.nqn) {
      *err = "subsystem " + cfg_.nqn + ": host " + h.nqn + " is already allowed";
      return -EEXIST;
    }
  }
  hosts_.push_back(std::move(h));
  return 0;
}

int Subsystem::remove_host(const std::string& nqn, std::string* err) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto it = hosts_.begin(); it != hosts_.end(); ++it) {
    if (it->nqn == nqn) {
      hosts_.erase(it);
      return 0;
    }
  }
  *err = "subsystem " + cfg_.nqn + ": host " + nqn + " is not in the allowed list";
  return -ENOENT;
}

std::vector<HostEntry> Subsystem::hosts() const {
  std::lock_guard<std::mutex> g(mu_);
  return hosts_;
}

int Subsystem::set_host_keys(const std::string& nqn, auth::HostKeys keys, std::string* err) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto& e : hosts_) {
    if (e.nqn == nqn) {
      // The old keys are freed when the last transaction using them ends.
      e.keys = std::move(keys);
      return 0;
    }
  }
  *err = "subsystem " + cfg_.nqn + ": host " + nqn + " is not in the allowed list";
  return -ENOENT;
}

auth::HostKeys Subsystem::host_keys(const std::string& hostnqn) const {
  if (cfg_.type == SubsystemType::Discovery) return {};
  std::lock_guard<std::mutex> g(mu_);
  for (auto& e : hosts_) {
    if (e.nqn == hostnqn) return e.keys;
  }
  return {};
}

bool Subsystem::allow_any_host() const {
  std::lock_guard<std::mutex> g(mu_);
  return allow_any_host_;
}

void Subsystem::set_allow_any_host(bool v) {
  std::lock_guard<std::mutex> g(mu_);
  allow_any_host_ = v;
}

bool Subsystem::listener_allowed(const ListenAddress& a) const {
  std::lock_guard<std::mutex> g(mu_);
  if (listeners_.empty()) return true;
  for (auto& l : listeners_) {
    if (l == a) return true;
  }
  return false;
}

int Subsystem::add_listener(const ListenAddress& a, std::string* err) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto& l : listeners_) {
    if (l == a) {
      *err = "subsystem " + cfg_.nqn + ": listener " + a.str() + " is already added";
      return -EEXIST;
    }
  }
  listeners_.push_back(a);
  return 0;
}

int Subsystem::remove_listener(const ListenAddress& a, std::string* err) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if (*it == a) {
      listeners_.erase(it);
      return 0;
    }
  }
  *err = "subsystem " + cfg_.nqn + ": listener " + a.str() + " is not added";
  return -ENOENT;
}

std::vector<ListenAddress> Subsystem::listeners() const {
  std::lock_guard<std::mutex> g(mu_);
  return listeners_;
}

uint16_t Subsystem::register_controller(const std::shared_ptr<Controller>& c) {
  std::lock_guard<std::mutex> g(mu_);
  const uint32_t span = uint32_t(cfg_.max_cntlid) - cfg_.min_cntlid + 1;
  // Round-robin from next_cntlid_, so a reconnecting host does not get the
  // cntlid of a controller that just went away.
  for (uint32_t i = 0; i < span; i++) {
    uint32_t id = cfg_.min_cntlid + (uint32_t(next_cntlid_ - cfg_.min_cntlid) + i) % span;
    size_t idx = id - cfg_.min_cntlid;
    if (idx < ctrlrs_.size() && !ctrlrs_[idx].expired()) continue;
    if (idx >= ctrlrs_.size()) ctrlrs_.resize(idx + 1);
    ctrlrs_[idx] = c;
    next_cntlid_ = uint16_t(id == cfg_.max_cntlid ? cfg_.min_cntlid : id + 1);
    return uint16_t(id);
  }
  return 0;
}

void Subsystem::unregister_controller(uint16_t cntlid) {
  std::lock_guard<std::mutex> g(mu_);
  if (cntlid < cfg_.min_cntlid) return;
  size_t idx = cntlid - cfg_.min_cntlid;
  if (idx < ctrlrs_.size()) ctrlrs_[idx].reset();
}

std::shared_ptr<Controller> Subsystem::find_controller(uint16_t cntlid) const {
  std::lock_guard<std::mutex> g(mu_);
  if (cntlid < cfg_.min_cntlid) return nullptr;
  size_t idx = cntlid - cfg_.min_cntlid;
  return idx < ctrlrs_.size() ? ctrlrs_[idx].lock() : nullptr;
}

std::vector<std::shared_ptr<Controller>> Subsystem::controllers() const {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<std::shared_ptr<Controller>> out;
  for (auto& w : ctrlrs_) {
    if (auto c = w.lock()) out.push_back(std::move(c));
  }
  return out;
}

void Subsystem::notify_ns_changed(uint32_t nsid) {
  for (auto& c : controllers()) {
    auto group = c->group_ref();
    // The message holds the controller; a stopped reactor drops it.
    group->reactor().post([c, nsid] { c->ns_changed(nsid); });
  }
}

}  // namespace nvmf
