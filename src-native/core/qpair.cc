#include "core/qpair.h"

#include <cstdio>
#include <cstdlib>

#include "core/controller.h"
#include "core/target.h"
#include "nvme/exec.h"
#include "transport/transport.h"

namespace nvmf {

namespace {

std::atomic<uint64_t> g_next_qpair_uid{1};

bool qpair_transition_allowed(QpairState from, QpairState to) {
  switch (from) {
    case QpairState::Connecting:
      return to == QpairState::Authenticating || to == QpairState::Enabled ||
             to == QpairState::Disconnecting;
    case QpairState::Authenticating:
      return to == QpairState::Enabled || to == QpairState::Disconnecting;
    case QpairState::Enabled:
      return to == QpairState::Disconnecting;
    case QpairState::Disconnecting:
      return to == QpairState::Destroyed;
    case QpairState::Destroyed:
      return false;
  }
  return false;
}

// Outstanding AERs live on the admin queue until an event arrives, possibly
// forever. Completing them when the queue starts to disconnect lets the
// transport's "wait for in-flight commands" finish instead of running into
// its safety timer.
void abort_aers(Controller& c) {
  std::vector<Request*> aers;
  aers.swap(c.aers);
  for (Request* r : aers) request_complete_status(r, GenericSc::AbortedSqDeletion, false);
}

}  // namespace

const char* qpair_state_name(QpairState s) {
  switch (s) {
    case QpairState::Connecting: return "connecting";
    case QpairState::Authenticating: return "authenticating";
    case QpairState::Enabled: return "enabled";
    case QpairState::Disconnecting: return "disconnecting";
    case QpairState::Destroyed: return "destroyed";
  }
  return "?";
}

Qpair::Qpair(Transport& transport, std::shared_ptr<PollGroup> group)
    : transport_(transport),
      group_(std::move(group)),
      res_(transport.target.resources()),
      uid_(g_next_qpair_uid.fetch_add(1, std::memory_order_relaxed)) {
  res_->add(&Resources::qpairs, 1);
}

Qpair::~Qpair() {
  // Transports call qpair_destroyed() before freeing; this only catches a
  // path that forgot, so the group never keeps a dangling pointer and the
  // controller still learns that its queue is gone.
  if (state_ != QpairState::Destroyed) qpair_destroyed(this);
  res_->add(&Resources::qpairs, -1);
}

void Qpair::set_state(QpairState s) {
  // An illegal transition is a bug in the generic layer or a transport;
  // continuing would mean commands on a dead queue. Checked in every build.
  if (!qpair_transition_allowed(state_, s)) {
    fprintf(stderr, "nvmf-target: illegal qpair transition %s -> %s (qpair %llu)\n",
            qpair_state_name(state_), qpair_state_name(s), (unsigned long long)uid_);
    abort();
  }
  state_ = s;
}

void qpair_accepted(Qpair* q) {
  PollGroup& g = q->group();
  g.qpairs[q->uid()] = q;
  g.active_qpairs.fetch_add(1, std::memory_order_relaxed);
}

void qpair_destroyed(Qpair* q) {
  if (q->state() == QpairState::Destroyed) return;
  if (q->state() != QpairState::Disconnecting) q->set_state(QpairState::Disconnecting);
  q->set_state(QpairState::Destroyed);

  PollGroup& g = q->group();
  auto it = g.qpairs.find(q->uid());
  if (it != g.qpairs.end() && it->second == q) {
    g.qpairs.erase(it);
    g.active_qpairs.fetch_sub(1, std::memory_order_relaxed);
  }
  // Requests still held belong to the transport, which is freeing them.
  q->held.clear();

  std::shared_ptr<Controller> c = std::move(q->ctrlr);
  if (!c) return;
  if (q->qid == 0) {
    // The admin queue lives on the controller's reactor: this one.
    if (c->admin_qpair == q) c->admin_qpair_gone();
    return;
  }
  // An I/O queue: the controller may live on another reactor. The message
  // holds the controller; if that reactor is gone, so is everything to do.
  uint16_t qid = q->qid;
  uint64_t uid = q->uid();
  c->group().reactor().post([c, qid, uid] { c->detach_io_qpair(qid, uid); });
}

void qpair_disconnect(Qpair* q, const char* reason) {
  QpairState s = q->state();
  if (s == QpairState::Disconnecting || s == QpairState::Destroyed) return;
  q->set_state(QpairState::Disconnecting);
  qpair_release_held(q, true);
  if (q->qid == 0 && q->ctrlr && q->ctrlr->admin_qpair == q) abort_aers(*q->ctrlr);
  q->transport().ops->qpair_disconnect(q, reason);
}

}  // namespace nvmf
