// The native target: owns poll groups (reactor threads), transports,
// listeners, subsystems and bdevs. Its shutdown is one ordered, synchronous
// state machine (lifecycle.h) that every path uses: destroy() from
// JavaScript (on a helper thread), GC (scheduled), and the environment
// cleanup hook (inline, at exit).
//
// Control-plane methods block briefly (messages to reactors) and must not be
// called on a reactor; the addon runs them off the Node main thread. They
// are serialized by ctl_mu_, which shutdown() also takes, so a control call
// never interleaves with a destroy stage.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/policy.h"
#include "bdev/bdev.h"
#include "bdev/fault.h"
#include "core/events.h"
#include "core/hot_remove.h"
#include "core/lifecycle.h"
#include "core/poll_group.h"
#include "core/resources.h"
#include "core/subsystem.h"
#include "transport/transport.h"

namespace nvmf {

struct TargetOptions {
  int reactors = 1;
  PollMode poll_mode = PollMode::Adaptive;
  uint64_t adaptive_idle_us = 200;  // spin this long after the last work
  TransportOptions transport;
  uint32_t disconnect_timeout_ms = 5000;  // safety net of disconnect-after-flush
  auth::AuthPolicy auth;                  // DH-HMAC-CHAP: allowed hashes and groups
};

// Result of a control call: 0 or -errno, plus the NvmfError code and message.
struct CtlError {
  std::string code;     // ERR_...
  std::string message;  // names the object
  int err = 0;          // positive errno when one applies
  void set(const char* c, std::string m, int e = 0) {
    code = c;
    message = std::move(m);
    err = e;
  }
};

class Target : public std::enable_shared_from_this<Target> {
 public:
  // Starts the reactors. Returns -errno; on failure nothing is left running.
  static int create(const TargetOptions& opts, std::shared_ptr<EventSink> sink,
                    std::shared_ptr<Target>* out);
  ~Target();

  // The ordered shutdown. Synchronous, idempotent and thread-safe: a second
  // caller waits for the first to finish. Never call it from a reactor.
  void shutdown();

  TargetState state() const;
  bool running() const { return state() == TargetState::Running; }
  const TargetOptions& options() const { return opts_; }

  // The live poll group with the fewest active qpairs, or nullptr when none
  // is live (shutdown has begun). The returned reference pins the group.
  std::shared_ptr<PollGroup> pick_group();
  std::shared_ptr<PollGroup> group(int i);
  int group_count() const { return int(groups_.size()); }

  EventSink& events() { return *sink_; }

  // DH-HMAC-CHAP policy (any thread). A new transaction takes the snapshot
  // current at its start.
  std::shared_ptr<const auth::AuthPolicy> auth_policy() const;
  void set_auth_policy(const auth::AuthPolicy& p);

  // Resource accounting (core/resources.h). Objects that count themselves
  // keep the shared_ptr, so the counters outlive them whatever the order.
  const std::shared_ptr<Resources>& resources() const { return res_; }
  // This target's counters plus the outstanding requests of its groups.
  ResourceSnapshot resource_snapshot() const;

  // ---- control plane (not on a reactor) ----
  // `faults`: the initial faults of a "fault" bdev (info.base names the
  // bdev it wraps); ignored for other types.
  int create_bdev(const BdevInfo& info, CtlError* e, const FaultConfig* faults = nullptr);
  // Sets (cfg != nullptr) the faults of a fault bdev and reads its counters.
  int bdev_faults(const std::string& name, const FaultConfig* cfg, FaultStats* out, CtlError* e);
  int delete_bdev(const std::string& name, CtlError* e);
  std::vector<BdevInfo> bdevs() const;

  int create_subsystem(const SubsystemConfig& cfg, CtlError* e);
  int delete_subsystem(const std::string& nqn, CtlError* e);
  int add_namespace(const std::string& nqn, const std::string& bdev, uint32_t nsid,
                    const Namespace& ids, uint32_t* nsid_out, CtlError* e);
  int remove_namespace(const std::string& nqn, uint32_t nsid, CtlError* e);

  int listen(const ListenAddress& a, CtlError* e);
  int stop_listen(const ListenAddress& a, CtlError* e);
  std::vector<ListenAddress> listeners() const;

  // ---- any thread ----
  std::shared_ptr<Subsystem> find_subsystem(const std::string& nqn) const;
  std::vector<std::shared_ptr<Subsystem>> subsystems() const;
  std::shared_ptr<Bdev> find_bdev(const std::string& name) const;
  Transport* transport(const std::string& name) const;
  // Stable list of transports (for per-group hooks); reactors read it.
  std::vector<Transport*> transports() const;

 private:
  explicit Target(const TargetOptions& opts, std::shared_ptr<EventSink> sink);
  void set_state(TargetState s);
  void run_shutdown_stages();
  int ensure_transport(const std::string& name, Transport** out, CtlError* e);
  // Runs fn on every live group's reactor and waits.
  void each_group(const std::function<void(PollGroup&)>& fn);
  // Shutdown gave up waiting for backend I/O: every bdev (deleted ones still
  // pinned by I/O included) gives back what it can (Bdev::cancel_io).
  void cancel_backend_io();
  // The device of `b` is gone (hot removal, on the HotRemover's thread):
  // removes its namespaces (AEN + changed-namespace log) and the bdev.
  void remove_gone_bdev(const std::shared_ptr<Bdev>& b);

  const TargetOptions opts_;
  std::shared_ptr<EventSink> sink_;
  mutable std::mutex policy_mu_;  // guards policy_
  std::shared_ptr<const auth::AuthPolicy> policy_;
  const std::shared_ptr<Resources> res_;

  mutable std::mutex mu_;  // guards state_, shutting_down_, linked_, and the maps below
  std::condition_variable cv_;
  TargetState state_ = TargetState::Running;
  bool shutting_down_ = false;
  std::mutex ctl_mu_;      // serializes control calls and shutdown stages

  // All groups (owned) and the ones the scheduler may choose (linked).
  std::vector<std::shared_ptr<PollGroup>> groups_;
  std::vector<std::shared_ptr<PollGroup>> linked_;

  std::map<std::string, std::unique_ptr<Transport>> transports_;
  std::vector<ListenAddress> listeners_;
  std::map<std::string, std::shared_ptr<Subsystem>> subsystems_;
  std::map<std::string, std::shared_ptr<Bdev>> bdevs_;
  // Deleted bdevs that in-flight I/O still pinned, for cancel_backend_io().
  std::vector<std::weak_ptr<Bdev>> retired_bdevs_;
  // Removable bdevs report here (from reactors); its thread, joined first
  // thing in shutdown, runs remove_gone_bdev().
  const std::shared_ptr<HotRemover> hot_remove_ =
      std::make_shared<HotRemover>([this](const std::shared_ptr<Bdev>& b) { remove_gone_bdev(b); });
};

}  // namespace nvmf
