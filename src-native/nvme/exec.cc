#include "nvme/exec.h"

#include "core/controller.h"
#include "core/subsystem.h"
#include "transport/transport.h"

namespace nvmf {

namespace {

XferDir dir_from_bits(uint8_t bits) {
  switch (bits & 0x3) {
    case 1: return XferDir::HostToCtrl;
    case 2: return XferDir::CtrlToHost;
    default: return XferDir::None;  // 3 = bidirectional: nothing we implement
  }
}

bool holds_io(SubsystemState s) {
  return s == SubsystemState::Pausing || s == SubsystemState::Paused;
}

// I/O commands pass this gate so that a pause can drain them. The counter is
// raised *before* the state is read: a pauser that sets Pausing and then
// waits for io_inflight == 0 either sees this command counted or this
// command sees Pausing and is held. io.cc lowers the counter when the
// command completes.
void exec_io_gated(Request* req) {
  Qpair* q = req->qpair;
  Subsystem& s = q->ctrlr->subsystem();
  s.io_inflight.fetch_add(1, std::memory_order_seq_cst);
  if (holds_io(s.state())) {
    s.io_inflight.fetch_sub(1, std::memory_order_seq_cst);
    q->held.push_back(req);
    return;
  }
  exec_io(req);
}

void dispatch(Request* req) {
  if (req->qpair->qid == 0) {
    exec_admin(req);
  } else {
    exec_io_gated(req);
  }
}

}  // namespace

XferDir cmd_xfer_dir(const SqEntry& cmd) {
  if (cmd.opc == uint8_t(AdminOpc::Fabrics)) return dir_from_bits(cmd.fctype());
  return dir_from_bits(cmd.opc);
}

void request_exec(Request* req) {
  Qpair* q = req->qpair;
  QpairStats& st = q->stats;
  st.commands++;
  st.outstanding++;
  q->group().counters.request_started();
  if (st.outstanding > st.max_outstanding) st.max_outstanding = st.outstanding;
  q->advance_sqhd();
  q->last_cmd_ns = now_ns();
  req->start_ns = q->last_cmd_ns;

  // Fabrics commands check the queue state themselves: Connect is the one
  // command a fresh queue accepts, Authentication the ones an
  // authenticating queue accepts.
  if (req->cmd.opc == uint8_t(AdminOpc::Fabrics)) {
    exec_fabrics(req);
    return;
  }
  if (q->state() == QpairState::Authenticating) {
    request_complete_status(req, FabricsSc::AuthRequired);
    return;
  }
  if (q->state() != QpairState::Enabled || !q->ctrlr) {
    request_complete_status(req, GenericSc::CommandSequenceError);
    return;
  }
  // Fused operations (compare-and-write) are not supported (FUSES = 0).
  if (req->cmd.fuse() != kFuseNone) {
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  dispatch(req);
}

void request_complete(Request* req) {
  Qpair* q = req->qpair;
  req->cpl.cid = req->cmd.cid;
  req->cpl.sqid = q->qid;
  // With SQ flow control disabled (Connect CATTR) SQHD is not meaningful.
  req->cpl.sqhd = q->sq_flow_control ? q->sqhd : 0;
  if (q->stats.outstanding) {
    q->stats.outstanding--;
    q->group().counters.request_finished();
  }
  if (req->cpl.status >> 1) q->stats.errors++;
  q->transport().ops->req_complete(req);
}

void request_fail_early(Request* req, Status s, bool dnr) {
  Qpair* q = req->qpair;
  q->stats.commands++;
  q->stats.outstanding++;
  q->group().counters.request_started();
  if (q->stats.outstanding > q->stats.max_outstanding) q->stats.max_outstanding = q->stats.outstanding;
  q->advance_sqhd();
  q->last_cmd_ns = now_ns();
  request_complete_status(req, s, dnr);
}

void request_complete_status(Request* req, Status s, bool dnr) {
  // DNR on a success would be nonsense; callers pass dnr for errors only.
  req->set_status(s, dnr && !s.ok());
  request_complete(req);
}

void qpair_release_held(Qpair* q, bool abort) {
  // Swap first: re-dispatching may hold a command again (paused again) and
  // completing may re-enter this qpair.
  std::vector<Request*> held;
  held.swap(q->held);
  for (Request* r : held) {
    if (abort || q->state() != QpairState::Enabled || !q->ctrlr) {
      // Not DNR: the host may retry it on another path or after reconnect.
      request_complete_status(r, GenericSc::AbortedSqDeletion, false);
    } else {
      dispatch(r);
    }
  }
}

}  // namespace nvmf
