// NVM subsystems, their namespaces and allowed hosts. Control-plane calls
// come from JavaScript (through reactor 0 or the main thread); reactors read
// the namespace table through a lock-free snapshot, and every other shared
// field under the subsystem mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/host_keys.h"
#include "bdev/bdev.h"
#include "transport/transport.h"

namespace nvmf {

class Target;
class Controller;

enum class SubsystemType : uint8_t { Nvm, Discovery };

// inactive -> active -> pausing -> paused -> resuming -> active,
// active -> deactivating -> inactive.
enum class SubsystemState : uint8_t { Inactive, Active, Pausing, Paused, Resuming, Deactivating };
const char* subsystem_state_name(SubsystemState s);
bool subsystem_transition_allowed(SubsystemState from, SubsystemState to);

struct Namespace {
  uint32_t nsid = 0;
  std::shared_ptr<Bdev> bdev;
  uint8_t uuid[16]{};
  uint8_t nguid[16]{};
  uint8_t eui64[8]{};
  bool has_uuid = false;
  bool has_nguid = false;
  bool has_eui64 = false;
};

// Immutable once published: a new table replaces the old on every change.
struct NsTable {
  std::vector<std::shared_ptr<Namespace>> ns;  // index nsid - 1; null = inactive
  uint32_t max_nsid() const { return uint32_t(ns.size()); }
  std::shared_ptr<Namespace> get(uint32_t nsid) const {
    return nsid >= 1 && nsid <= ns.size() ? ns[nsid - 1] : nullptr;
  }
};

struct SubsystemConfig {
  std::string nqn;
  std::string serial;
  std::string model = "nvmf-target";
  SubsystemType type = SubsystemType::Nvm;
  bool allow_any_host = false;
  uint32_t max_namespaces = 32;
  uint16_t min_cntlid = 1;
  uint16_t max_cntlid = 0xffef;
};

struct HostEntry {
  std::string nqn;
  // DH-HMAC-CHAP keys (null: none). A host with a key must authenticate;
  // with a controller key too, it may also authenticate the controller.
  auth::HostKeys keys;
};

class Subsystem : public std::enable_shared_from_this<Subsystem> {
 public:
  Subsystem(Target& target, SubsystemConfig cfg);
  ~Subsystem();

  const SubsystemConfig& config() const { return cfg_; }
  const std::string& nqn() const { return cfg_.nqn; }
  SubsystemType type() const { return cfg_.type; }
  Target& target() { return target_; }

  // ---- state ----
  SubsystemState state() const { return state_.load(std::memory_order_acquire); }
  bool set_state(SubsystemState s);  // false if the transition is illegal
  // I/O commands executing on this subsystem (pause waits for 0).
  std::atomic<int64_t> io_inflight{0};

  // ---- namespaces (any thread) ----
  std::shared_ptr<const NsTable> ns_table() const { return std::atomic_load(&ns_); }
  // nsid 0 = lowest free. Returns the nsid or -errno (*err names the problem).
  int64_t add_namespace(std::shared_ptr<Namespace> ns, std::string* err);
  int remove_namespace(uint32_t nsid, std::string* err);

  // ---- hosts and listeners ----
  bool host_allowed(const std::string& hostnqn) const;
  int add_host(HostEntry h, std::string* err);
  int remove_host(const std::string& nqn, std::string* err);
  std::vector<HostEntry> hosts() const;
  // Replaces the keys of a listed host (rotation). Transactions already in
  // progress keep the keys they started with; live queues keep running.
  int set_host_keys(const std::string& nqn, auth::HostKeys keys, std::string* err);
  // The keys of `hostnqn` now (both null when it has none or is not listed).
  auth::HostKeys host_keys(const std::string& hostnqn) const;
  bool allow_any_host() const;
  void set_allow_any_host(bool v);
  // Empty = every target listener.
  bool listener_allowed(const ListenAddress& a) const;
  int add_listener(const ListenAddress& a, std::string* err);
  int remove_listener(const ListenAddress& a, std::string* err);
  std::vector<ListenAddress> listeners() const;

  // ---- controllers ----
  // Assigns a free cntlid and registers the controller; 0 when none is free.
  uint16_t register_controller(const std::shared_ptr<Controller>& c);
  void unregister_controller(uint16_t cntlid);
  std::shared_ptr<Controller> find_controller(uint16_t cntlid) const;
  std::vector<std::shared_ptr<Controller>> controllers() const;

  // Tells every controller (on its reactor) that namespace `nsid` changed:
  // changed-namespace log + namespace-attribute-changed AEN.
  void notify_ns_changed(uint32_t nsid);

 private:
  Target& target_;
  const SubsystemConfig cfg_;
  std::atomic<SubsystemState> state_{SubsystemState::Inactive};
  std::shared_ptr<const NsTable> ns_;  // atomic_load / atomic_store only

  mutable std::mutex mu_;  // guards everything below and ns_ writers
  bool allow_any_host_;
  std::vector<HostEntry> hosts_;
  std::vector<ListenAddress> listeners_;
  std::vector<std::weak_ptr<Controller>> ctrlrs_;  // index cntlid - min_cntlid
  uint16_t next_cntlid_;
};

}  // namespace nvmf
