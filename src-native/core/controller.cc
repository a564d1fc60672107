#include "core/controller.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/target.h"
#include "nvme/exec.h"
#include "transport/transport.h"

namespace nvmf {

namespace {

// CAP.TO: how long a host waits for CSTS.RDY after setting CC.EN, in 500 ms
// units. We become ready at once; this is only the host's upper bound.
constexpr uint8_t kCapTimeout = 20;
// The version we report in VS and Identify. 1.3 is what the Linux target
// reports too: every host knows it, and it does not oblige us to the 2.0
// Identify CNS values.
constexpr uint32_t kNvmeVersion = nvme_version(1, 3, 0);
// Hosts send Keep Alive every KATO (older Linux) or KATO/2 (newer); allow
// one KAS unit (100 ms) for network and scheduling delay before expiring.
constexpr uint64_t kKeepAliveGraceNs = 100ull * 1000 * 1000;
// Events are masked until their log page is read, so very few can pile up;
// the bound only protects against a host that never sends an AER.
constexpr size_t kMaxPendingEvents = 16;
constexpr size_t kChangedNsMax = 1024;  // entries in the Changed NS List log

// Tells every live I/O qpair of `c` (each on its own reactor) to disconnect.
void disconnect_io_qpairs(Controller& c, const char* reason) {
  std::string why = reason;
  for (IoQpairRef& ref : c.io_qpairs) {
    if (!ref.qpair_uid || !ref.group) continue;
    std::shared_ptr<PollGroup> g = ref.group;
    uint64_t uid = ref.qpair_uid;
    g->reactor().post([g, uid, why] {
      if (Qpair* q = g->find_qpair(uid)) qpair_disconnect(q, why.c_str());
    });
  }
}

// Hands pending events to outstanding AERs, oldest first.
void deliver_events(Controller& c) {
  while (!c.aers.empty() && !c.pending_events.empty()) {
    Request* req = c.aers.front();
    c.aers.erase(c.aers.begin());
    req->cpl.dw0 = c.pending_events.front();
    c.pending_events.pop_front();
    request_complete_status(req, GenericSc::Success);
  }
}

}  // namespace

Controller::Controller(std::shared_ptr<Subsystem> subsys, Qpair* admin,
                       const std::string& hostnqn_, const uint8_t hostid_[16])
    : hostnqn(hostnqn_),
      admin_qpair(admin),
      subsys_(std::move(subsys)),
      group_(admin->group_ref()),
      res_(admin->resources()) {
  res_->add(&Resources::controllers, 1);
  std::memcpy(hostid, hostid_, sizeof hostid);
  const TransportOptions& opts = admin->transport().opts;
  uint32_t depth = std::clamp<uint32_t>(opts.max_queue_depth, 2, 65536);
  cap = cap::make(uint16_t(depth - 1), true, kCapTimeout, cap::kCssNvm, 0, 0);
  vs = kNvmeVersion;
  // Volatile write cache reported enabled: Identify always reports one
  // (see admin.cc), and Flush reaches every bdev that has one.
  volatile_wc = 1;
  io_qpairs.resize(size_t(opts.max_io_queues) + 1);
  last_keep_alive_ns = now_ns();
}

// May run on any thread (the last reference can be a message); it must not
// touch the reactor. The keep-alive timer holds only a weak reference.
Controller::~Controller() { res_->add(&Resources::controllers, -1); }

Status Controller::attach_io_qpair(uint16_t qid, uint32_t sq_size, std::shared_ptr<PollGroup> g,
                                   uint64_t uid) {
  if (failed_ || !admin_qpair) return FabricsSc::ConnectInvalidParameters;
  // The host enables the controller (CC.EN) before creating I/O queues.
  if (!cc::en(cc) || !(csts & csts::kRdy)) return FabricsSc::ConnectInvalidParameters;
  uint32_t limit = io_queues_granted ? io_queues_granted : uint32_t(io_qpairs.size() - 1);
  if (qid == 0 || qid > limit || qid >= io_qpairs.size()) {
    return FabricsSc::ConnectInvalidParameters;
  }
  if (io_qpairs[qid].qpair_uid) return FabricsSc::ConnectInvalidParameters;  // duplicate
  if (sq_size > uint32_t(cap::mqes(cap)) + 1) return FabricsSc::ConnectInvalidParameters;
  io_qpairs[qid] = IoQpairRef{qid, std::move(g), uid};
  return GenericSc::Success;
}

void Controller::detach_io_qpair(uint16_t qid, uint64_t uid) {
  if (qid >= io_qpairs.size() || io_qpairs[qid].qpair_uid != uid) return;
  io_qpairs[qid] = IoQpairRef{};
}

void Controller::admin_qpair_gone() {
  if (!admin_qpair && failed_) return;
  admin_qpair = nullptr;
  failed_ = true;
  // The queue is going away with its requests: nothing to complete.
  aers.clear();
  pending_events.clear();
  if (keep_alive_timer) {
    group_->reactor().cancel_timer(keep_alive_timer);
    keep_alive_timer = 0;
  }
  // Unregister while our entry is still live, so the cntlid cannot have been
  // handed to a newer controller yet.
  subsys_->unregister_controller(cntlid);
  // Without its admin queue the association is over (NVMe-oF): I/O queues go.
  disconnect_io_qpairs(*this, "controller gone");

  std::string json = "{\"subnqn\":" + json_str(subsys_->nqn()) +
                     ",\"hostnqn\":" + json_str(hostnqn) +
                     ",\"cntlid\":" + std::to_string(cntlid) + "}";
  subsys_->target().events().emit("host-disconnect", std::move(json));
}

void Controller::raise_event(uint32_t dw0) {
  if (!admin_qpair || failed_) return;
  if (pending_events.size() >= kMaxPendingEvents) return;
  pending_events.push_back(dw0);
  deliver_events(*this);
}

void Controller::ns_changed(uint32_t nsid) {
  if (failed_ || subsys_->type() != SubsystemType::Nvm) return;
  if (!changed_ns_overflow &&
      std::find(changed_ns.begin(), changed_ns.end(), nsid) == changed_ns.end()) {
    if (changed_ns.size() < kChangedNsMax) {
      changed_ns.push_back(nsid);
    } else {
      // The log then holds a single FFFFFFFFh: "rescan everything".
      changed_ns_overflow = true;
      changed_ns.clear();
    }
  }
  if ((aen_config & kAenNsAttr) && !ns_event_masked) {
    // Masked until the host reads the Changed Namespace List (log 04h).
    ns_event_masked = true;
    raise_event(aen_dw0(AenType::Notice, uint8_t(AenNotice::NsAttrChanged),
                        LogId::ChangedNsList));
  }
}

void Controller::keep_alive() {
  last_keep_alive_ns = now_ns();
  arm_keep_alive_timer();
}

void Controller::arm_keep_alive_timer() {
  Reactor& r = group_->reactor();
  if (keep_alive_timer) {
    r.cancel_timer(keep_alive_timer);
    keep_alive_timer = 0;
  }
  if (failed_ || kato_ms == 0) return;
  // Re-armed on every Keep Alive, so firing means none arrived in time.
  std::weak_ptr<Controller> weak = weak_from_this();
  uint64_t delay = uint64_t(kato_ms) * 1000 * 1000 + kKeepAliveGraceNs;
  keep_alive_timer = r.add_timer(delay, [weak] {
    std::shared_ptr<Controller> c = weak.lock();
    if (!c) return;
    c->keep_alive_timer = 0;
    c->fail("keep alive timeout");
  });
}

void Controller::fail(const char* reason) {
  if (failed_) return;
  failed_ = true;
  fprintf(stderr, "nvmf-target: controller %u of %s (host %s): %s, disconnecting\n",
          unsigned(cntlid), subsys_->nqn().c_str(), hostnqn.c_str(), reason);
  if (keep_alive_timer) {
    group_->reactor().cancel_timer(keep_alive_timer);
    keep_alive_timer = 0;
  }
  // The admin queue's destruction (admin_qpair_gone) finishes the
  // controller; the I/O queues are told now so they stop at once.
  disconnect_io_qpairs(*this, reason);
  if (admin_qpair) qpair_disconnect(admin_qpair, reason);
}

}  // namespace nvmf
