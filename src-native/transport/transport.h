// The transport ops table. Each transport (tcp.cc, rdma.cc) fills one const
// TransportOps; generic code calls through it and never names a transport.
// Optional hooks may be null and are checked at the call site.
//
// Threads: control hooks run on reactor 0 (the acceptor); poll group and
// request hooks run on the reactor of that group / qpair.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/qpair.h"
#include "core/request.h"

namespace nvmf {

class Target;
class PollGroup;

struct TransportOptions {
  uint32_t max_queue_depth = 128;        // entries per I/O queue
  uint32_t max_admin_queue_depth = 32;
  uint32_t max_io_queues = 16;           // per controller
  uint32_t in_capsule_data = 8192;       // bytes
  uint32_t max_data_transfer = 128 * 1024;  // MDTS in bytes
  uint32_t io_unit = 128 * 1024;         // largest single R2T / RDMA op
  // A connection must complete its transport handshake and Fabrics Connect
  // within this time, or it is closed: a client that connects and says
  // nothing, or stops mid-PDU, must not hold resources forever. 0 = no limit.
  uint32_t handshake_timeout_ms = 10000;
  // RDMA: 0 = every queue pair has its own receive queue (HSQSIZE + 1
  // buffers); N = each poll group shares one receive queue of N buffers
  // (bounded by the device's max_srq_wr) per RDMA device among its queue
  // pairs. See rdma_qpair.cc for the queue depth rule.
  uint32_t rdma_srq_depth = 0;
};

struct ListenAddress {
  std::string transport;  // "tcp" | "rdma"
  std::string address;    // "127.0.0.1", "::1", ...
  uint16_t port = 4420;
  bool ipv6 = false;
  std::string str() const;  // "tcp:127.0.0.1:4420" / "tcp:[::1]:4420"
  bool operator==(const ListenAddress& o) const {
    return transport == o.transport && address == o.address && port == o.port;
  }
};

class Transport;

struct TransportOps {
  const char* name;  // "tcp", "rdma"
  uint8_t trtype;    // discovery log TRTYPE (3 tcp, 1 rdma)
  // Identify Controller: the SGL descriptor kinds this transport moves data
  // with (SGLS bits besides "supported" and "offset"), and how many SGL
  // descriptors a command may carry (MSDBD).
  uint32_t sgls;
  uint8_t msdbd;

  // Control (reactor 0). Returns -errno; *err says what is wrong.
  int (*create)(Target& target, const TransportOptions& opts, std::unique_ptr<Transport>* out,
                std::string* err);
  // Opens a listener; connections accepted on it are handed to
  // target.pick_group() with a counted reference.
  int (*listen)(Transport& t, const ListenAddress& addr, std::string* err);
  // Closes the listener; connections already accepted keep running.
  void (*stop_listen)(Transport& t, const ListenAddress& addr);

  // Poll group (that group's reactor): per-group state (socket set, CQ, ...).
  int (*poll_group_create)(Transport& t, PollGroup& g, std::string* err);
  // Disconnects every qpair of the group, flushing final responses. Calls
  // `done` on the group's reactor when the last qpair is destroyed (may be
  // inline when the group has none).
  void (*poll_group_disconnect_all)(Transport& t, PollGroup& g, void (*done)(void*), void* arg);
  // Frees per-group state; the group has no qpairs left.
  void (*poll_group_destroy)(Transport& t, PollGroup& g);

  // Request path (qpair's reactor). Sends the data (CtrlToHost) and then the
  // response capsule for `req`, and recycles it once sent.
  void (*req_complete)(Request* req);
  // Starts a disconnect: stop reading, let in-flight commands finish, flush
  // every queued response and confirm the last one was delivered (TCP: all
  // bytes written; RDMA: send completion), then close and destroy the qpair.
  // A timer bounds the wait. Idempotent.
  void (*qpair_disconnect)(Qpair* q, const char* reason);

  // Control (reactor 0), after every poll group was destroyed.
  void (*destroy)(Transport& t);
};

class Transport {
 public:
  Transport(const TransportOps* ops, Target& target, const TransportOptions& opts)
      : ops(ops), target(target), opts(opts) {}
  virtual ~Transport() = default;
  const TransportOps* const ops;
  Target& target;
  const TransportOptions opts;
};

// The transports compiled in (looked up by name).
const TransportOps* transport_ops_by_name(const std::string& name);
extern const TransportOps kTcpTransportOps;

}  // namespace nvmf
