// The connect sequence of a HostController, one step per completion:
// TCP + ICReq (admin) -> Fabrics Connect -> [DH-HMAC-CHAP] -> Property Get
// CAP -> Property Set CC.EN -> poll CSTS.RDY -> Identify Controller -> Set
// Features Number of Queues -> TCP + ICReq + Fabrics Connect
// [+ DH-HMAC-CHAP] on every I/O queue -> live.
// The connect timer bounds the whole sequence; every step re-checks that
// the controller is still connecting (a failure or close() may have ended
// it while the command was in flight).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "host/controller.h"

namespace nvmf::host {

void HostController::connect(DoneFn done) {
  if (state_ != State::Idle) {
    done(HostError::invalid(opts_.target + ": the controller was already connected"));
    return;
  }
  state_ = State::Connecting;
  connect_done_ = std::move(done);
  stage_ = "TCP connect";
  if (opts_.connect_timeout_ms != 0) {
    connect_timer_ = loop_.add_timer(uint64_t(opts_.connect_timeout_ms) * 1000000ull, [this] {
      connect_timer_ = 0;
      connect_failed(HostError::timeout(opts_.target + ": connect timed out after " +
                                        std::to_string(opts_.connect_timeout_ms) + " ms (" +
                                        stage_ + ")"));
    });
  }
  // The admin queue takes up to 8 KiB of in-capsule data, as Linux allows.
  QueueCtx* a = add_queue(0, opts_.admin_depth, 8192);
  int rc = start_queue(*a);
  if (rc < 0) {
    connect_failed(HostError::connection(
        "cannot connect to " + opts_.target + ": " + strerror(-rc), -rc));
  }
}

void HostController::connect_failed(HostError e) {
  if (state_ == State::Connecting) fail_controller(std::move(e));
}

bool HostController::step_failed(uint16_t qid, const SqEntry& sqe, const HostCompletion& c) {
  if (state_ != State::Connecting) return true;  // ended meanwhile; it reported itself
  HostError e = error_of(qid, sqe, c);
  if (e.ok()) return false;
  if (c.err == 0) {
    if (sqe.opc == 0x7f && sqe.fctype() == uint8_t(FabricsType::Connect) &&
        e.nvme_status == ((int(Sct::CommandSpecific) << 8) | int(FabricsSc::ConnectInvalidParameters))) {
      char b[96];
      std::snprintf(b, sizeof b, "; invalid parameter at byte %u of the connect %s",
                    c.cqe.dw0 & 0xffff, (c.cqe.dw0 >> 16) & 1 ? "data" : "command");
      e.message += b;
    }
    e.message += " (" + opts_.target + ", subsystem " + opts_.subnqn + ")";
  }
  fail_controller(std::move(e));
  return true;
}

void HostController::on_queue_ready(HostQueue& q) {
  if (state_ != State::Connecting) return;
  if (q.qid() == 0) {
    send_admin_connect();
  } else {
    send_io_connect(q.qid());
  }
}

void HostController::send_admin_connect() {
  stage_ = "Fabrics Connect on the admin queue";
  connect_data_ = make_connect_data(opts_.hostid, kCntlidDynamic, opts_.subnqn, opts_.hostnqn);
  HostCmd c;
  c.sqe = make_connect(0, uint16_t(opts_.admin_depth - 1), opts_.kato_ms);
  c.data = reinterpret_cast<uint8_t*>(&connect_data_);
  c.len = sizeof connect_data_;
  c.dir = XferDir::H2C;
  c.force_incapsule = true;  // NVMe/TCP carries Connect data in the capsule
  exec_internal(0, c, [this, sqe = c.sqe](const HostCompletion& hc) {
    if (step_failed(0, sqe, hc)) return;
    cntlid_ = uint16_t(hc.cqe.dw0);
    after_connect(0, uint16_t(hc.cqe.dw0 >> 16), [this] { read_cap(); });
  });
}

void HostController::read_cap() {
  stage_ = "Property Get CAP";
  HostCmd c;
  c.sqe = make_property_get(PropOffset::Cap, true);
  exec_internal(0, c, [this, sqe = c.sqe](const HostCompletion& hc) {
    if (step_failed(0, sqe, hc)) return;
    cap_ = hc.cqe.u64();
    enable();
  });
}

void HostController::enable() {
  stage_ = "Property Set CC.EN";
  cc_ = make_cc_enable(cap_);
  HostCmd c;
  c.sqe = make_property_set(PropOffset::Cc, cc_, false);
  exec_internal(0, c, [this, sqe = c.sqe](const HostCompletion& hc) {
    if (step_failed(0, sqe, hc)) return;
    // CAP.TO is the worst case time to ready, in 500 ms units.
    uint64_t to_ms = uint64_t(cap::to(cap_) ? cap::to(cap_) : 1) * 500;
    poll_ready(mono_ns() + to_ms * 1000000ull, 0);
  });
}

void HostController::poll_ready(uint64_t deadline, uint64_t delay_ns) {
  stage_ = "waiting for CSTS.RDY";
  HostCmd c;
  c.sqe = make_property_get(PropOffset::Csts, false);
  exec_internal(0, c, [this, sqe = c.sqe, deadline, delay_ns](const HostCompletion& hc) {
    if (step_failed(0, sqe, hc)) return;
    uint32_t csts = hc.cqe.dw0;
    if (csts & csts::kCfs) {
      fail_controller(HostError::connection(
          opts_.target + ": controller reports a fatal status (CSTS.CFS) while enabling", EIO));
      return;
    }
    if (csts & csts::kRdy) {
      identify_controller();
      return;
    }
    if (mono_ns() > deadline) {
      fail_controller(HostError::timeout(opts_.target +
                                         ": controller did not become ready within CAP.TO"));
      return;
    }
    uint64_t next = delay_ns == 0 ? 1000000ull : std::min<uint64_t>(delay_ns * 2, 100000000ull);
    ready_timer_ = loop_.add_timer(next, [this, deadline, next] {
      ready_timer_ = 0;
      if (state_ == State::Connecting) poll_ready(deadline, next);
    });
  });
}

void HostController::identify_controller() {
  stage_ = "Identify Controller";
  HostCmd c;
  c.sqe = make_identify(Cns::Controller, 0);
  c.data = reinterpret_cast<uint8_t*>(&id_);
  c.len = sizeof id_;
  c.dir = XferDir::C2H;
  exec_internal(0, c, [this, sqe = c.sqe](const HostCompletion& hc) {
    if (step_failed(0, sqe, hc)) return;
    if (hc.bytes != sizeof id_) {
      fail_controller(HostError::io(opts_.target + ": Identify Controller returned " +
                                    std::to_string(hc.bytes) + " of 4096 bytes"));
      return;
    }
    max_xfer_ = max_transfer_bytes(id_.mdts, cap_);
    discovery_ = opts_.subnqn == kDiscoveryNqn || id_.cntrltype == kCntrltypeDiscovery;
    if (discovery_ || opts_.io_queues == 0) {
      finish_connect();
    } else {
      set_queue_count();
    }
  });
}

void HostController::set_queue_count() {
  stage_ = "Set Features Number of Queues";
  uint16_t n0 = uint16_t(opts_.io_queues - 1);
  HostCmd c;
  c.sqe = make_set_features(FeatureId::NumberOfQueues, num_queues_dw(n0, n0));
  exec_internal(0, c, [this, sqe = c.sqe](const HostCompletion& hc) {
    if (step_failed(0, sqe, hc)) return;
    uint32_t granted = std::min(hc.cqe.dw0 & 0xffff, hc.cqe.dw0 >> 16) + 1;
    nio_ = uint16_t(std::min<uint32_t>(opts_.io_queues, granted));
    connect_io_queues();
  });
}

void HostController::connect_io_queues() {
  stage_ = "connecting I/O queues";
  uint32_t entries = uint32_t(cap::mqes(cap_)) + 1;  // MQES is 0's based
  io_depth_ = uint16_t(std::min<uint32_t>(opts_.queue_depth, entries));
  if (io_depth_ < 2) io_depth_ = 2;
  io_incapsule_ = 0;
  // IOCCSZ counts the 64-byte SQE; an in-capsule data offset is not used.
  if (id_.ioccsz >= 4 && id_.icdoff == 0) {
    uint64_t icd = uint64_t(id_.ioccsz) * 16 - 64;
    io_incapsule_ = uint32_t(std::min<uint64_t>(icd, opts_.max_incapsule));
  }
  connect_data_.cntlid = cntlid_;
  for (uint16_t qid = 1; qid <= nio_; qid++) {
    QueueCtx* c = add_queue(qid, io_depth_, io_incapsule_);
    int rc = start_queue(*c);
    if (rc < 0) {
      connect_failed(HostError::connection(
          "cannot connect I/O queue " + std::to_string(qid) + " to " + opts_.target + ": " +
              strerror(-rc),
          -rc));
      return;
    }
    if (state_ != State::Connecting) return;
  }
}

void HostController::send_io_connect(uint16_t qid) {
  HostCmd c;
  c.sqe = make_connect(qid, uint16_t(io_depth_ - 1), 0);
  c.data = reinterpret_cast<uint8_t*>(&connect_data_);
  c.len = sizeof connect_data_;
  c.dir = XferDir::H2C;
  c.force_incapsule = true;
  exec_internal(qid, c, [this, qid, sqe = c.sqe](const HostCompletion& hc) {
    if (step_failed(qid, sqe, hc)) return;
    after_connect(qid, uint16_t(hc.cqe.dw0 >> 16), [this] {
      if (++io_connected_ == nio_) finish_connect();
    });
  });
}

void HostController::finish_connect() {
  if (state_ != State::Connecting) return;
  if (connect_timer_ != 0) loop_.cancel_timer(connect_timer_);
  connect_timer_ = 0;
  state_ = State::Live;
  stage_ = "live";
  arm_keep_alive();
  arm_tick();
  DoneFn d = std::move(connect_done_);
  connect_done_ = nullptr;
  if (d) d(HostError{});
}

}  // namespace nvmf::host
