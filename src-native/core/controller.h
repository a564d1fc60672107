// An NVMe controller created by Fabrics Connect on an admin queue. It lives
// on the admin qpair's reactor: every field below is touched only there.
// I/O qpairs on other reactors attach and detach through messages, holding a
// shared_ptr to it; the controller refers to them by (group, uid) only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/poll_group.h"
#include "core/qpair.h"
#include "core/subsystem.h"

namespace nvmf {

struct IoQpairRef {
  uint16_t qid = 0;
  std::shared_ptr<PollGroup> group;
  uint64_t qpair_uid = 0;
};

class Controller : public std::enable_shared_from_this<Controller> {
 public:
  Controller(std::shared_ptr<Subsystem> subsys, Qpair* admin, const std::string& hostnqn,
             const uint8_t hostid[16]);
  ~Controller();

  Subsystem& subsystem() { return *subsys_; }
  const std::shared_ptr<Subsystem>& subsystem_ref() const { return subsys_; }
  PollGroup& group() { return *group_; }
  const std::shared_ptr<PollGroup>& group_ref() const { return group_; }

  uint16_t cntlid = 0;
  std::string hostnqn;
  uint8_t hostid[16]{};
  Qpair* admin_qpair = nullptr;  // null once the admin queue is gone

  // Properties.
  uint64_t cap = 0;
  uint32_t vs = 0;
  uint32_t cc = 0;
  uint32_t csts = 0;

  // Features.
  uint32_t kato_ms = 0;            // keep-alive timeout (0 = disabled)
  uint16_t io_queues_granted = 0;  // Number of Queues feature (1-based)
  uint32_t aen_config = 0;         // Asynchronous Event Configuration
  uint32_t arbitration = 0;
  uint32_t power_mgmt = 0;
  uint32_t temp_threshold = 0x0157;  // 343 K
  uint32_t err_recovery = 0;
  uint32_t volatile_wc = 0;
  uint32_t irq_coalescing = 0;
  uint32_t write_atomicity = 0;

  // Asynchronous events.
  static constexpr int kMaxAers = 4;
  std::vector<Request*> aers;          // outstanding AER commands
  std::deque<uint32_t> pending_events; // dw0 of events not yet reported
  std::vector<uint32_t> changed_ns;    // Changed Namespace List log
  bool changed_ns_overflow = false;
  bool ns_event_masked = false;        // until the log page is read

  // I/O qpairs, indexed by qid (0 unused).
  std::vector<IoQpairRef> io_qpairs;

  // Keep alive.
  uint64_t keep_alive_timer = 0;
  uint64_t last_keep_alive_ns = 0;

  // ---- all on the controller's reactor ----
  // Connect of an I/O queue: checks and records it. Returns an NVMe status
  // (success, or the Connect error to report).
  Status attach_io_qpair(uint16_t qid, uint32_t sq_size, std::shared_ptr<PollGroup> g,
                         uint64_t uid);
  void detach_io_qpair(uint16_t qid, uint64_t uid);
  // The admin queue went away: the controller is finished.
  void admin_qpair_gone();
  // Queues an asynchronous event; completes an outstanding AER if any.
  void raise_event(uint32_t dw0);
  void ns_changed(uint32_t nsid);
  // (Re)arms the keep-alive timer after Connect, Set Features or Keep Alive.
  void keep_alive();
  // Fatal: disconnect every qpair of this controller (reason logged).
  void fail(const char* reason);

 private:
  void arm_keep_alive_timer();
  std::shared_ptr<Subsystem> subsys_;
  std::shared_ptr<PollGroup> group_;
  std::shared_ptr<Resources> res_;  // resource accounting
  bool failed_ = false;
};

}  // namespace nvmf
