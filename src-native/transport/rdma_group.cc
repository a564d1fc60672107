// NVMe/RDMA target, per poll group: the group's CM event channel (every
// connection of the group is migrated to it before it is accepted), and per
// RDMA device the protection domain, the completion queue with its
// completion channel in the reactor's epoll set, and the registered data
// buffer pool. A reactor poller drains the CQs and posts the send work
// requests batched during the iteration.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "transport/rdma_target.h"

namespace nvmf::rdma {

namespace {

int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  return 0;
}

}  // namespace

// ---------------------------------------------------------------------------
// ReqList.

void ReqList::push_back(RdmaRequest* r) {
  if (r->wlist) r->wlist->remove(r);
  r->wlist = this;
  r->wnext = nullptr;
  r->wprev = tail;
  if (tail) {
    tail->wnext = r;
  } else {
    head = r;
  }
  tail = r;
}

RdmaRequest* ReqList::pop_front() {
  RdmaRequest* r = head;
  if (r) remove(r);
  return r;
}

void ReqList::remove(RdmaRequest* r) {
  if (r->wlist != this) return;
  if (r->wprev) {
    r->wprev->wnext = r->wnext;
  } else {
    head = r->wnext;
  }
  if (r->wnext) {
    r->wnext->wprev = r->wprev;
  } else {
    tail = r->wprev;
  }
  r->wnext = r->wprev = nullptr;
  r->wlist = nullptr;
}

// ---------------------------------------------------------------------------
// RdmaDevice.

RdmaDevice::~RdmaDevice() {
  const Verbs& v = verbs();
  // The group destroyed every QP first; the SRQ goes before the CQ and PD.
  destroy_srq();
  if (channel_watched_) group_.pg.reactor().del_fd(channel_->fd);
  if (cq_) {
    // Every event taken from the channel must be acknowledged, or
    // ibv_destroy_cq waits for ever.
    if (unacked_events_) v.ack_cq_events(cq_, unacked_events_);
    v.destroy_cq(cq_);
  }
  if (channel_) v.destroy_comp_channel(channel_);
  for (Chunk& c : chunks_) {
    dereg(c.mr);
    std::free(c.mem);
    group_.t.target.resources()->add(&Resources::request_buffers, -int64_t(c.nbufs));
    group_.t.target.resources()->add(&Resources::request_buffer_bytes, -int64_t(c.bytes));
  }
  if (pd) v.dealloc_pd(pd);
}

int RdmaDevice::init(std::string* err) {
  const Verbs& v = verbs();
  auto fail = [&](const char* what, int e) {
    if (err) *err = std::string(ctx->device->name) + ": " + what + ": " + errno_str(e);
    return -e;
  };
  if (int rc = v.query_device(ctx, &attr); rc != 0) return fail("ibv_query_device", rc > 0 ? rc : errno);
  if (!(pd = v.alloc_pd(ctx))) return fail("ibv_alloc_pd", errno);
  if (!(channel_ = v.create_comp_channel(ctx))) return fail("ibv_create_comp_channel", errno);
  if (int rc = set_nonblock(channel_->fd); rc < 0) return fail("completion channel", -rc);
  cq_size_ = std::min(kCqInitial, attr.max_cqe);
  if (!(cq_ = v.create_cq(ctx, cq_size_, this, channel_, 0))) return fail("ibv_create_cq", errno);
  cq_size_ = cq_->cqe;
  // Armed from the start: the channel fd wakes a sleeping reactor.
  if (int rc = ibv_req_notify_cq(cq_, 0); rc != 0) return fail("ibv_req_notify_cq", rc);
  if (int rc = group_.pg.reactor().add_fd(channel_->fd, EPOLLIN, this); rc < 0) return fail("epoll", -rc);
  channel_watched_ = true;
  if (group_.t.opts.rdma_srq_depth > 0) {
    if (int rc = init_srq(err); rc < 0) return rc;
  }
  grow_pool();  // one chunk up front, so the first commands do not register
  return 0;
}

// ---------------------------------------------------------------------------
// Shared receive queue: one per group and device, its buffers (command
// capsules with in-capsule data, like a qpair's own) in one registered
// slab, every one posted up front.

int RdmaDevice::init_srq(std::string* err) {
  const Verbs& v = verbs();
  const std::string name = ctx->device->name;
  if (attr.max_srq <= 0 || attr.max_srq_wr <= 0) {
    if (err) *err = name + ": the device has no shared receive queues (max_srq 0); start the target without rdma.srq";
    return -EOPNOTSUPP;
  }
  const uint32_t want = std::min<uint32_t>(group_.t.opts.rdma_srq_depth, uint32_t(attr.max_srq_wr));
  if (!reserve_cq(int(want))) {
    if (err) *err = name + ": completion queue cannot hold the shared receive queue";
    return -ENOSPC;
  }
  srq_cq_reserved_ = int(want);
  ibv_srq_init_attr a{};
  a.srq_context = this;
  a.attr.max_wr = want;
  a.attr.max_sge = 1;
  if (!(srq_ = v.create_srq(pd, &a))) {
    const int e = errno;
    if (err) *err = name + ": ibv_create_srq: " + errno_str(e);
    return -(e ? e : EIO);
  }
  srq_depth_ = want;  // the device may have rounded max_wr up; we post this many
  srq_stride_ = (uint32_t(sizeof(SqEntry)) + group_.t.opts.in_capsule_data + 63) / 64 * 64;
  const size_t bytes = (size_t(srq_depth_) * srq_stride_ + 4095) / 4096 * 4096;
  srq_mem_ = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes));
  if (!srq_mem_) {
    if (err) *err = name + ": out of memory for the shared receive queue";
    return -ENOMEM;
  }
  if (!(srq_mr_ = reg(srq_mem_, bytes))) {
    const int e = errno;
    if (err) *err = name + ": cannot register the shared receive queue's buffers: " + errno_str(e);
    return -(e ? e : ENOMEM);
  }
  srq_wrs_.resize(srq_depth_);
  srq_sges_.resize(srq_depth_);
  for (uint32_t i = 0; i < srq_depth_; i++) {
    srq_sges_[i] = ibv_sge{uint64_t(uintptr_t(srq_buf(i))), srq_stride_, srq_mr_->lkey};
    srq_wrs_[i] = ibv_recv_wr{};
    srq_wrs_[i].wr_id = make_wr_id(kSrqUid, WrKind::Recv, i);
    srq_wrs_[i].sg_list = &srq_sges_[i];
    srq_wrs_[i].num_sge = 1;
    srq_wrs_[i].next = i + 1 < srq_depth_ ? &srq_wrs_[i + 1] : nullptr;
  }
  ibv_recv_wr* bad = nullptr;
  if (int rc = ibv_post_srq_recv(srq_, &srq_wrs_[0], &bad); rc != 0) {
    if (err) *err = name + ": ibv_post_srq_recv: " + errno_str(rc);
    return -rc;
  }
  return 0;
}

// After every QP using it is destroyed. Posted receives go with the SRQ
// (no completions); nothing else points into its buffers.
void RdmaDevice::destroy_srq() {
  const Verbs& v = verbs();
  if (srq_) {
    if (!qpn_uid_.empty()) {
      fprintf(stderr, "nvmf-target: rdma %s: shared receive queue destroyed with %zu QP(s) mapped\n",
              ctx->device->name, qpn_uid_.size());
    }
    v.destroy_srq(srq_);
    srq_ = nullptr;
  }
  if (srq_mr_) {
    dereg(srq_mr_);
    srq_mr_ = nullptr;
  }
  std::free(srq_mem_);
  srq_mem_ = nullptr;
  if (srq_cq_reserved_) {
    release_cq(srq_cq_reserved_);
    srq_cq_reserved_ = 0;
  }
}

void RdmaDevice::srq_repost(uint32_t i) {
  if (!srq_ || i >= srq_depth_) return;
  ibv_recv_wr* bad = nullptr;
  srq_wrs_[i].next = nullptr;
  if (int rc = ibv_post_srq_recv(srq_, &srq_wrs_[i], &bad); rc != 0) {
    // Not retried: the buffer is lost to the SRQ (a device in error).
    if (!srq_post_failed_logged_) {
      srq_post_failed_logged_ = true;
      fprintf(stderr, "nvmf-target: rdma %s: ibv_post_srq_recv failed: %s\n", ctx->device->name,
              errno_str(rc).c_str());
    }
    return;
  }
}

// The queue depth rule: buffers are committed, never oversubscribed, so a
// host that keeps within its queue depth always finds one posted.
bool RdmaDevice::srq_commit(uint32_t n) {
  if (srq_committed_ + n > srq_depth_) return false;
  srq_committed_ += n;
  return true;
}

void RdmaDevice::on_srq_recv(const ibv_wc& wc) {
  const uint32_t idx = wr_index(wc.wr_id);
  if (idx >= srq_depth_) return;
  auto it = qpn_uid_.find(wc.qp_num);
  RdmaQpair* q = it == qpn_uid_.end() ? nullptr : group_.find(it->second);
  if (!q) {
    // Its qpair is gone (a capsule or flush that raced the reap).
    srq_repost(idx);
    return;
  }
  q->on_srq_recv(wc, idx);
}

void RdmaDevice::on_fd_event(uint32_t) {
  const Verbs& v = verbs();
  ibv_cq* cq = nullptr;
  void* cq_ctx = nullptr;
  bool got = false;
  while (v.get_cq_event(channel_, &cq, &cq_ctx) == 0) {
    unacked_events_++;
    got = true;
  }
  if (!got) return;
  v.ack_cq_events(cq_, unacked_events_);
  unacked_events_ = 0;
  // Re-arm before draining: a completion that lands after the drain raises
  // a new event, so the reactor never sleeps on a non-empty CQ.
  ibv_req_notify_cq(cq_, 0);
  poll(1 << 30);
}

int RdmaDevice::poll(int budget) {
  ibv_wc wc[kPollBatch];
  int total = 0;
  while (total < budget) {
    int n = ibv_poll_cq(cq_, kPollBatch, wc);
    if (n < 0) {
      fprintf(stderr, "nvmf-target: rdma %s: ibv_poll_cq failed (%d)\n", ctx->device->name, n);
      break;
    }
    for (int i = 0; i < n; i++) {
      if (srq_ && wr_uid(wc[i].wr_id) == kSrqUid) {
        on_srq_recv(wc[i]);
      } else {
        group_.on_completion(wc[i]);
      }
    }
    total += n;
    if (n < kPollBatch) break;
  }
  return total;
}

bool RdmaDevice::reserve_cq(int n) {
  if (cq_reserved_ + n > cq_size_) {
    int want = std::max(cq_size_ * 2, cq_reserved_ + n);
    want = std::min(want, attr.max_cqe);
    if (want < cq_reserved_ + n) return false;
    if (verbs().resize_cq(cq_, want) != 0) return false;
    cq_size_ = cq_->cqe;
    if (cq_reserved_ + n > cq_size_) return false;
  }
  cq_reserved_ += n;
  return true;
}

ibv_mr* RdmaDevice::reg(void* p, size_t len) {
  ibv_mr* mr = verbs().reg_mr(pd, p, len, IBV_ACCESS_LOCAL_WRITE);
  if (mr) group_.t.target.resources()->add(&Resources::registered_buffers, 1);
  return mr;
}

void RdmaDevice::dereg(ibv_mr* mr) {
  if (!mr) return;
  verbs().dereg_mr(mr);
  group_.t.target.resources()->add(&Resources::registered_buffers, -1);
}

bool RdmaDevice::grow_pool() {
  const uint32_t cap = group_.t.buffer_cap;
  const uint32_t nbufs = uint32_t(std::max<size_t>(1, kPoolChunkBytes / cap));
  const size_t bytes = size_t(nbufs) * cap;
  if (pool_bytes_ + bytes > std::max(kPoolMaxBytes, bytes)) {
    if (!pool_full_logged_) {
      pool_full_logged_ = true;
      fprintf(stderr,
              "nvmf-target: rdma %s: data buffer pool at its limit (%zu MiB); commands wait for buffers\n",
              ctx->device->name, pool_bytes_ >> 20);
    }
    return false;
  }
  auto* mem = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes));
  if (!mem) return false;
  ibv_mr* mr = reg(mem, bytes);
  if (!mr) {
    fprintf(stderr, "nvmf-target: rdma %s: cannot register %zu bytes of data buffers: %s\n",
            ctx->device->name, bytes, errno_str(errno).c_str());
    std::free(mem);
    return false;
  }
  chunks_.push_back(Chunk{mem, bytes, mr, nbufs});
  pool_bytes_ += bytes;
  pool_bufs_ += nbufs;
  // Capacity for every buffer: put_buffer() never allocates.
  free_.reserve(pool_bufs_);
  for (uint32_t i = 0; i < nbufs; i++) free_.push_back(PoolBuf{mem + size_t(i) * cap, mr->lkey});
  group_.t.target.resources()->add(&Resources::request_buffers, nbufs);
  group_.t.target.resources()->add(&Resources::request_buffer_bytes, int64_t(bytes));
  return true;
}

bool RdmaDevice::get_buffer(PoolBuf* out) {
  if (free_.empty() && !grow_pool()) return false;
  *out = free_.back();
  free_.pop_back();
  return true;
}

void RdmaDevice::put_buffer(const PoolBuf& b) {
  if (RdmaRequest* w = buf_waiters.pop_front()) {
    // Straight to the oldest waiter (which may belong to another qpair).
    w->pbuf = b;
    w->rq->buffer_ready(w);
    return;
  }
  free_.push_back(b);
}

// ---------------------------------------------------------------------------
// RdmaGroup.

RdmaGroup* find_group(PollGroup& g) {
  auto it = g.tgroups.find(&kRdmaTransportOps);
  return it == g.tgroups.end() ? nullptr : static_cast<RdmaGroup*>(it->second.get());
}

RdmaGroup::~RdmaGroup() {
  destroy_leftovers();
  if (poller_) pg.reactor().remove_poller(poller_);
  devices_.clear();  // CQs, channels, pools, PDs: no QP uses them any more
  if (cm_channel_) {
    if (cm_watched_) pg.reactor().del_fd(cm_channel_->fd);
    verbs().destroy_event_channel(cm_channel_);
  }
}

int RdmaGroup::init(std::string* err) {
  const Verbs& v = verbs();
  cm_channel_ = v.create_event_channel();
  if (!cm_channel_) {
    int e = errno;
    if (err) *err = "rdma_create_event_channel: " + errno_str(e);
    return -e;
  }
  int rc = set_nonblock(cm_channel_->fd);
  if (rc == 0) rc = pg.reactor().add_fd(cm_channel_->fd, EPOLLIN, this);
  if (rc < 0) {
    if (err) *err = "RDMA CM event channel: " + errno_str(-rc);
    return rc;
  }
  cm_watched_ = true;
  poller_ = pg.reactor().add_poller([this] { return poll_once(); });
  return 0;
}

RdmaDevice* RdmaGroup::device_for(ibv_context* ctx, std::string* err) {
  for (auto& d : devices_) {
    if (d->ctx == ctx) return d.get();
  }
  auto d = std::make_unique<RdmaDevice>(*this, ctx);
  if (d->init(err) < 0) return nullptr;
  devices_.push_back(std::move(d));
  return devices_.back().get();
}

void RdmaGroup::add(std::unique_ptr<RdmaQpair> q) {
  uint64_t uid = q->uid();
  qpairs_.emplace(uid, std::move(q));
}

int RdmaGroup::poll_once() {
  int work = 0;
  for (auto& d : devices_) work += d->poll(256);
  if (!dirty_.empty()) {
    flush_dirty();
    work++;
  }
  return work;
}

void RdmaGroup::on_completion(const ibv_wc& wc) {
  const uint64_t uid = wr_uid(wc.wr_id);
  RdmaQpair* q = (last_ && last_->uid() == uid) ? last_ : find(uid);
  // Unknown: the qpair was freed before the device flushed this work
  // request (drain timeout). Its memory is gone; so is our interest.
  if (!q) return;
  last_ = q;
  if (wr_kind(wc.wr_id) == WrKind::Recv) {
    q->on_recv(wc);
  } else {
    q->on_send_side(wc);
  }
}

void RdmaGroup::mark_dirty(RdmaQpair* q) {
  dirty_.push_back(q->uid());
  pg.reactor().wake_soon();
}

void RdmaGroup::flush_dirty() {
  flushing_.swap(dirty_);  // swapped back and forth: no allocation
  for (uint64_t uid : flushing_) {
    if (RdmaQpair* q = find(uid)) q->flush_sends();
  }
  flushing_.clear();
}

void RdmaGroup::on_fd_event(uint32_t) {
  const Verbs& v = verbs();
  rdma_cm_event* ev = nullptr;
  while (cm_channel_ && v.get_cm_event(cm_channel_, &ev) == 0) {
    const rdma_cm_event_type type = ev->event;
    const int status = ev->status;
    const uint64_t uid = uint64_t(reinterpret_cast<uintptr_t>(ev->id ? ev->id->context : nullptr));
    // Acknowledged before anything is done about it: destroying an id
    // waits for its events to be acknowledged.
    v.ack_cm_event(ev);
    if (RdmaQpair* q = find(uid)) q->on_cm_event(type, status);
  }
}

void RdmaGroup::schedule_reap(RdmaQpair* q) {
  dying_.push_back(q->uid());
  if (reap_posted_) return;
  std::shared_ptr<PollGroup> g = q->group_ref();
  // A refused post means the reactor is going away; the group's destructor
  // frees what is left.
  reap_posted_ = g->reactor().post([g] {
    if (RdmaGroup* rg = find_group(*g)) rg->reap();
  });
}

void RdmaGroup::reap() {
  reap_posted_ = false;
  std::vector<uint64_t> uids;
  uids.swap(dying_);
  for (uint64_t uid : uids) {
    auto it = qpairs_.find(uid);
    if (it == qpairs_.end()) continue;
    std::unique_ptr<RdmaQpair> q = std::move(it->second);
    qpairs_.erase(it);
    if (last_ == q.get()) last_ = nullptr;
    // Linux nvmet_rdma_free_queue order: requests drained (check_finish),
    // QP drained, then QP and cm_id destroyed, then buffers freed.
    q->destroy_qp();
    qpair_destroyed(q.get());
  }
  if (qpairs_.empty() && done_) {
    auto done = done_;
    void* arg = done_arg_;
    done_ = nullptr;
    done(arg);  // last: it may destroy this group
  }
}

void RdmaGroup::disconnect_all(void (*done)(void*), void* arg) {
  done_ = done;
  done_arg_ = arg;
  std::vector<uint64_t> uids;
  uids.reserve(qpairs_.size());
  for (auto& [uid, q] : qpairs_) uids.push_back(uid);
  for (uint64_t uid : uids) {
    if (RdmaQpair* q = find(uid)) qpair_disconnect(q, "target is shutting down");
  }
}

void RdmaGroup::device_event(ibv_context* ctx, int port, const char* why) {
  std::vector<uint64_t> uids;
  for (auto& [uid, q] : qpairs_) {
    if (q->context() == ctx && (port == 0 || q->port_num() == port)) uids.push_back(uid);
  }
  for (uint64_t uid : uids) {
    if (RdmaQpair* q = find(uid)) q->connection_error(why);
  }
}

void RdmaGroup::qp_event(uint64_t uid, const char* why) {
  if (RdmaQpair* q = find(uid)) q->connection_error(why);
}

void RdmaGroup::destroy_leftovers() {
  if (qpairs_.empty()) return;
  fprintf(stderr, "nvmf-target: rdma: poll group destroyed with %zu connection(s) still open\n",
          qpairs_.size());
  while (!qpairs_.empty()) {
    auto it = qpairs_.begin();
    std::unique_ptr<RdmaQpair> q = std::move(it->second);
    qpairs_.erase(it);
    last_ = nullptr;
    q->force_close();
    qpair_destroyed(q.get());
  }
}

}  // namespace nvmf::rdma
