// A queue pair: one NVMe submission/completion queue pair carried by one
// transport connection, owned by the transport's part of one poll group and
// touched only on that group's reactor. The generic layer drives the state
// machine below; the transport moves bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/poll_group.h"
#include "core/request.h"
#include "core/resources.h"

namespace nvmf {

class Transport;
class Controller;
struct QpairAuth;  // auth/qpair_auth.h

enum class QpairState : uint8_t {
  Connecting,     // transport connected; waiting for Fabrics Connect
  Authenticating, // Connect accepted, DH-HMAC-CHAP in progress
  Enabled,        // commands flow
  Disconnecting,  // no new commands; final responses flushed, in-flight drained
  Destroyed,      // freed by the transport right after
};

const char* qpair_state_name(QpairState s);

struct QpairStats {
  uint64_t commands = 0;
  uint64_t bytes_read = 0;     // controller -> host
  uint64_t bytes_written = 0;  // host -> controller
  uint64_t errors = 0;         // completions with a non-zero status
  uint32_t outstanding = 0;    // commands received, not yet completed
  uint32_t max_outstanding = 0;
};

class Qpair {
 public:
  Qpair(Transport& transport, std::shared_ptr<PollGroup> group);
  virtual ~Qpair();
  Qpair(const Qpair&) = delete;
  Qpair& operator=(const Qpair&) = delete;

  Transport& transport() { return transport_; }
  PollGroup& group() { return *group_; }
  const std::shared_ptr<PollGroup>& group_ref() const { return group_; }
  Reactor& reactor() { return group_->reactor(); }

  uint64_t uid() const { return uid_; }  // unique in the process, for messages and stats
  // The target's resource counters (core/resources.h).
  const std::shared_ptr<Resources>& resources() const { return res_; }
  QpairState state() const { return state_; }
  void set_state(QpairState s);  // checked against the transition table

  // Set by Fabrics Connect.
  uint16_t qid = 0;
  uint32_t sq_size = 0;      // entries (SQSIZE + 1)
  uint16_t sqhd = 0;         // submission queue head we report
  bool sq_flow_control = true;
  std::shared_ptr<Controller> ctrlr;
  std::string hostnqn;
  std::string peer;          // "addr:port" of the host
  std::string local;         // "addr:port" we accepted on
  uint64_t connected_ns = 0;
  uint64_t last_cmd_ns = 0;

  // The transport's per-connection limits, for Identify / Connect checks.
  uint32_t max_queue_depth = 128;
  uint32_t max_data_transfer = 128 * 1024;
  uint32_t in_capsule_data = 8192;
  // Reads may be served straight from the memory of RAM-resident bdevs (zero
  // copy). A transport turns this off where the bytes must not change between
  // being read and being sent: an NVMe/TCP data digest is computed before the
  // socket copies the data, and a write from another reactor in between would
  // make them disagree.
  bool zero_copy_reads = true;

  QpairStats stats;
  // Commands held while their subsystem is paused (re-executed on resume,
  // aborted on disconnect). See qpair_release_held().
  std::vector<Request*> held;
  // DH-HMAC-CHAP state (auth/qpair_auth.cc); null until the queue needs it.
  std::shared_ptr<QpairAuth> auth;

  // Advances sqhd for a received command (wraps at sq_size).
  void advance_sqhd() {
    if (sq_size) sqhd = uint16_t((sqhd + 1) % sq_size);
  }

 private:
  Transport& transport_;
  std::shared_ptr<PollGroup> group_;
  std::shared_ptr<Resources> res_;
  uint64_t uid_;
  QpairState state_ = QpairState::Connecting;
};

}  // namespace nvmf

namespace nvmf {

// Generic qpair bookkeeping, called by transports on the qpair's reactor.
// After accept: registers the qpair in its group (uid lookup, load metric).
void qpair_accepted(Qpair* q);
// Right before the transport frees it: unregisters it, detaches it from its
// controller (the admin queue ends the controller) and emits events.
void qpair_destroyed(Qpair* q);
// Generic disconnect: releases held requests (aborted), then the transport's
// flush-then-close (ops->qpair_disconnect). Idempotent.
void qpair_disconnect(Qpair* q, const char* reason);

}  // namespace nvmf
