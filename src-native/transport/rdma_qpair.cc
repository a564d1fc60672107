// NVMe/RDMA target: one queue pair per NVMe queue, and the request state
// machine that moves a command from its receive buffer through RDMA READ,
// the NVMe layer, RDMA WRITE and the response SEND.
//
// A receive buffer goes back to the QP as soon as its capsule has been
// copied out (the command, and in-capsule data into the request's
// registered buffer): a host can send its next command the moment it sees
// a response, which is before our SEND completion recycles the request,
// and an unposted receive then would cost an RNR NAK (655 ms with the CM's
// RNR timer). Requests outnumber receive buffers for the same reason; a
// capsule that finds none free waits in its buffer, in order.
//
// Shared receive queue (TransportOptions::rdma_srq_depth): the QP is
// created on its group's SRQ for the device and has no receive buffers of
// its own; a receive completion finds us by wc.qp_num, and the buffer is
// ours (srq_held_) until its capsule is taken, then goes back to the SRQ.
// Queue depth rule: the SRQ is never oversubscribed. Each qpair commits its
// HSQSIZE + 1 (the CRQSIZE we accept with) against the SRQ's depth while it
// lives; a connection whose queue would exceed what is left is refused
// (reject "no resources"; one larger than the whole SRQ: "invalid HSQSIZE").
// So a host that keeps within its queue depth always finds a posted buffer
// (no RNR NAK, which costs 655 ms with the CM's RNR timer), and one that
// holds more than its depth in our buffers is disconnected before it can
// starve the other queues.
//
// Teardown (DESIGN.md lesson 1, Linux nvmet_rdma_free_queue order):
// 1. disconnect(): no new capsules; requests the NVMe layer never saw are
//    released; executing ones finish; every queued response is posted and
//    its SEND completion observed.
// 2. enter_error(): batched sends flushed, then rdma_disconnect() moves the
//    QP to the error state; the receives (and anything else) come back as
//    IBV_WC_WR_FLUSH_ERR, which is the normal end of a queue, not an error.
// 3. The group reaps the qpair from a message: QP, cm_id, then memory.
// A timer bounds step 1 (the host stopped acknowledging) and step 2 (a
// device that does not flush); memory the NVMe layer still owns is never
// given up on.

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "nvme/exec.h"
#include "transport/rdma_target.h"

namespace nvmf::rdma {

// ---------------------------------------------------------------------------
// Requests.

RdmaRequest::~RdmaRequest() {
  // A pool buffer is not the Request's to free.
  if (pbuf.p && buf == pbuf.p) {
    buf = nullptr;
    buf_cap = 0;
  }
}

void RdmaRequest::clear_transport_state() {
  recv_idx = -1;
  icd_off = 0;
  in_capsule = false;
  owns_cid = false;
  failed = false;
  fail_dnr = true;
  abandoned = false;
  invalidate = false;
  status = Status{};
  nsgl = 0;
  next_read = 0;
  reads_pending = 0;
  nwrites = 0;
  unsignaled = 0;
  pbuf = PoolBuf{};
}

// ---------------------------------------------------------------------------
// Construction and setup.

RdmaQpair::RdmaQpair(RdmaTransport& t, std::shared_ptr<PollGroup> g, RdmaGroup& rg, RdmaDevice& dev,
                     rdma_cm_id* id, const ConnectParams& p)
    : Qpair(t, std::move(g)), tt_(t), rg_(rg), dev_(dev), id_(id), params_(p), cids_(65536 / 64, 0) {
  peer = sockaddr_str(reinterpret_cast<sockaddr*>(&id->route.addr.dst_addr));
  local = sockaddr_str(reinterpret_cast<sockaddr*>(&id->route.addr.src_addr));
  nrecv_ = uint32_t(p.hsqsize) + 1;
  nreqs_ = std::min<uint32_t>(2 * nrecv_, kMaxRequests);
  max_queue_depth = nrecv_;
  max_data_transfer = t.opts.max_data_transfer;
  in_capsule_data = t.opts.in_capsule_data;
  dev_.qpairs++;
}

RdmaQpair::~RdmaQpair() {
  cancel_timers();
  destroy_qp();
  dev_.qpairs--;
}

int RdmaQpair::setup(std::string* why) {
  const Verbs& v = verbs();
  icd_ = tt_.opts.in_capsule_data;
  recv_stride_ = (uint32_t(sizeof(SqEntry)) + icd_ + 63) / 64 * 64;
  srq_ = dev_.srq();
  if (srq_) {
    // The queue depth rule (see RdmaDevice::srq_commit): our HSQSIZE + 1
    // buffers are committed against the shared queue, or we are refused.
    if (!dev_.srq_commit(nrecv_)) {
      *why = "shared receive queue full: " + std::to_string(dev_.srq_committed()) + " of its " +
             std::to_string(dev_.srq_depth()) + " buffers are committed to other queues, this one needs " +
             std::to_string(nrecv_);
      return -ENOSPC;
    }
    srq_committed_ = nrecv_;
  }
  // Own receive queue: receive buffers, then response capsules. SRQ: only
  // the response capsules (the receive buffers are the device's).
  slab_bytes_ = size_t(srq_ ? 0 : nrecv_) * recv_stride_ + size_t(nreqs_) * sizeof(CqEntry);
  slab_bytes_ = (slab_bytes_ + 4095) / 4096 * 4096;
  slab_ = static_cast<uint8_t*>(std::aligned_alloc(4096, slab_bytes_));
  if (!slab_) {
    *why = "out of memory for receive buffers";
    return -ENOMEM;
  }
  std::memset(slab_, 0, slab_bytes_);
  slab_mr_ = dev_.reg(slab_, slab_bytes_);
  if (!slab_mr_) {
    int e = errno;
    *why = "cannot register receive buffers: " + errno_str(e);
    return -(e ? e : ENOMEM);
  }
  const uint32_t max_wr = uint32_t(std::max(dev_.attr.max_qp_wr, 1));
  max_send_wr_ = std::min(std::max(2 * nreqs_, uint32_t(kMaxSgl) + 1) + 1, max_wr);
  if ((!srq_ && nrecv_ > max_wr) || max_send_wr_ < uint32_t(kMaxSgl) + 2) {
    *why = "queue larger than the device supports";
    return -ENOSPC;
  }
  cq_reserved_ = int(max_send_wr_ + (srq_ ? 0 : nrecv_));  // the SRQ reserved its own
  if (!dev_.reserve_cq(cq_reserved_)) {
    cq_reserved_ = 0;
    *why = "completion queue cannot grow";
    return -ENOSPC;
  }
  ibv_qp_init_attr a{};
  // Async events find the qpair by uid (reactor 0 never dereferences it).
  a.qp_context = reinterpret_cast<void*>(uintptr_t(uid()));
  a.send_cq = dev_.cq();
  a.recv_cq = dev_.cq();
  a.cap.max_send_wr = max_send_wr_;
  a.srq = srq_;
  a.cap.max_recv_wr = srq_ ? 0 : nrecv_;
  a.cap.max_send_sge = 1;
  a.cap.max_recv_sge = srq_ ? 0 : 1;
  a.qp_type = IBV_QPT_RC;
  a.sq_sig_all = 0;
  if (v.create_qp(id_, dev_.pd, &a) != 0) {
    int e = errno;
    *why = "rdma_create_qp: " + errno_str(e);
    return -(e ? e : EIO);
  }
  qp_ = id_->qp;
  if (srq_) {
    qp_num_ = qp_->qp_num;
    dev_.map_qpn(qp_num_, uid());
  }
  sq_avail_ = max_send_wr_;
  ord_ = uint8_t(std::max(1, std::min<int>(params_.ird, dev_.attr.max_qp_init_rd_atom)));

  reqs_ = std::make_unique<RdmaRequest[]>(nreqs_);
  for (uint32_t i = nreqs_; i-- > 0;) {
    RdmaRequest& r = reqs_[i];
    r.rq = this;
    r.qpair = this;
    r.idx = i;
    r.next_free = free_;
    free_ = &r;
  }
  pending_.assign(nrecv_, PendingCapsule{});
  if (srq_) return 0;  // the device preposted the SRQ's buffers
  recv_wrs_.resize(nrecv_);
  recv_sges_.resize(nrecv_);
  for (uint32_t i = 0; i < nrecv_; i++) {
    recv_sges_[i] = ibv_sge{uint64_t(uintptr_t(recv_buf(i))), recv_stride_, slab_mr_->lkey};
    recv_wrs_[i] = ibv_recv_wr{};
    recv_wrs_[i].wr_id = make_wr_id(uid(), WrKind::Recv, i);
    recv_wrs_[i].sg_list = &recv_sges_[i];
    recv_wrs_[i].num_sge = 1;
    if (!post_recv(i)) {
      *why = "ibv_post_recv failed";
      return -EIO;
    }
  }
  return 0;
}

int RdmaQpair::accept() {
  CmAccept acc{};
  acc.recfmt = kRecfmt10;
  acc.crqsize = uint16_t(nrecv_);
  rdma_conn_param p{};
  p.private_data = &acc;
  p.private_data_len = sizeof acc;
  // We only issue READs (to fetch write data); hosts never read from us.
  p.initiator_depth = ord_;
  p.responder_resources = 0;
  p.flow_control = 1;
  p.rnr_retry_count = 7;  // a host briefly out of receives is retried, not failed
  if (verbs().accept(id_, &p) != 0) return -errno;
  accepted_ = true;
  if (const uint32_t ms = tt_.opts.handshake_timeout_ms) {
    hs_timer_ = reactor().add_timer(uint64_t(ms) * 1000000ull, [this] { on_handshake_timeout(); });
  }
  return 0;
}

bool RdmaQpair::post_recv(uint32_t i) {
  ibv_recv_wr* bad = nullptr;
  recv_wrs_[i].next = nullptr;
  if (ibv_post_recv(qp_, &recv_wrs_[i], &bad) != 0) return false;
  rq_posted_++;
  return true;
}

// A receive buffer whose capsule has been taken goes back to the QP
// (closing: it stays, nothing more is read), or to the SRQ.
void RdmaQpair::release_recv(uint32_t i) {
  if (srq_) {
    drop_recv(i);
    return;
  }
  if (closing_ || qp_error_) return;
  if (!post_recv(i)) connection_error("ibv_post_recv failed");
}

// ---------------------------------------------------------------------------
// Settling and logging.

void RdmaQpair::settle() {
  ++depth_;
  check_finish();
  --depth_;
}

void RdmaQpair::log_once(const char* why) {
  if (logged_) return;
  logged_ = true;
  fprintf(stderr, "nvmf-target: rdma %s: %s\n", peer.c_str(), why);
}

// ---------------------------------------------------------------------------
// Receive: a capsule arrived in receive buffer `idx`.

// A buffer we will not read from: an SRQ buffer goes straight back to the
// SRQ whatever our state (it serves every qpair of the device); one of our
// own receive queue stays unposted (the QP is closing or in error).
void RdmaQpair::drop_recv(uint32_t i) {
  if (!srq_) return;
  if (srq_held_) srq_held_--;
  dev_.srq_repost(i);
}

void RdmaQpair::on_recv(const ibv_wc& wc) {
  Busy busy(this);
  if (rq_posted_) rq_posted_--;
  const uint32_t idx = wr_index(wc.wr_id);
  if (idx >= nrecv_) return;
  got_capsule(wc, idx);
}

// Flush errors of SRQ receives (a WQE the QP had started consuming when it
// went to the error state) come here too and just return the buffer.
void RdmaQpair::on_srq_recv(const ibv_wc& wc, uint32_t idx) {
  Busy busy(this);
  srq_held_++;
  if (srq_held_ > nrecv_ && wc.status == IBV_WC_SUCCESS && !closing_ && !qp_error_) {
    // The host sent more commands than its queue depth: it would take
    // buffers committed to other queues.
    drop_recv(idx);
    connection_error("host exceeded its queue depth (shared receive queue)");
    return;
  }
  got_capsule(wc, idx);
}

void RdmaQpair::got_capsule(const ibv_wc& wc, uint32_t idx) {
  if (wc.status != IBV_WC_SUCCESS) {
    drop_recv(idx);
    if (wc.status != IBV_WC_WR_FLUSH_ERR) {
      std::string why = std::string("receive failed: ") + verbs().wc_status_str(wc.status);
      connection_error(why.c_str());
    }
    return;
  }
  // Closing: the capsule is dropped (own receive queue: the buffer stays
  // unposted).
  if (closing_ || qp_error_) {
    drop_recv(idx);
    return;
  }
  if (wc.byte_len < sizeof(SqEntry)) {
    drop_recv(idx);
    connection_error("capsule shorter than a command");
    return;
  }
  pending_[(pend_head_ + pend_count_) % nrecv_] = PendingCapsule{idx, wc.byte_len};
  pend_count_++;
  take_capsules();
}

// Capsules waiting in receive buffers become requests, oldest first, while
// requests are free.
void RdmaQpair::take_capsules() {
  while (pend_count_ && free_ && !closing_ && !qp_error_) {
    const uint32_t i = pending_[pend_head_].idx;
    const uint32_t len = pending_[pend_head_].len;
    pend_head_ = (pend_head_ + 1) % nrecv_;
    pend_count_--;
    RdmaRequest* r = free_;
    free_ = r->next_free;
    r->next_free = nullptr;
    in_use_++;
    const uint8_t* cap = recv_buf(i);
    std::memcpy(&r->cmd, cap, sizeof(SqEntry));
    r->qpair = this;
    r->xfer = cmd_xfer_dir(r->cmd);
    claim_cid(r);
    const Status st = parse_sgl(r, cap, len);
    if (!st.ok()) r->fail(st, true);
    if (!r->failed && r->in_capsule && r->length > 0) {
      // The data stays in the receive buffer until the request has a
      // registered buffer to copy it to.
      r->recv_idx = int32_t(i);
    } else {
      release_recv(i);
    }
    r->state = (r->failed || r->length == 0) ? ReqState::Ready : ReqState::NeedBuffer;
    advance(r);
  }
}

// Disconnect: capsules still waiting for a request are dropped.
void RdmaQpair::drop_pending() {
  while (pend_count_) {
    drop_recv(pending_[pend_head_].idx);
    pend_head_ = (pend_head_ + 1) % nrecv_;
    pend_count_--;
  }
  pend_head_ = 0;
}

void RdmaQpair::claim_cid(RdmaRequest* r) {
  const uint16_t cid = r->cmd.cid;
  uint64_t& word = cids_[cid / 64];
  const uint64_t bit = 1ull << (cid % 64);
  if (word & bit) {
    r->fail(GenericSc::CidConflict, true);
    return;
  }
  word |= bit;
  r->owns_cid = true;
}

// Where the command's data is: in the capsule (offset SGL, host to
// controller only), behind one keyed SGL, or behind a list of keyed SGLs in
// the capsule (Last Segment). A non-success status fails the command.
Status RdmaQpair::parse_sgl(RdmaRequest* r, const uint8_t* capsule, uint32_t len) {
  r->length = 0;
  r->nsgl = 0;
  r->iovcnt = 0;
  if (r->xfer == XferDir::None) return Status{};
  if (r->cmd.psdt() == kPsdtPrp) return GenericSc::InvalidField;  // fabrics commands use SGLs
  const uint32_t data_in_capsule = len - uint32_t(sizeof(SqEntry));
  const SglDescriptor& sgl = r->cmd.dptr.sgl1;
  uint64_t total = 0;
  auto add_keyed = [&](const SglDescriptor& d) -> Status {
    if (d.sgl_type() != SglType::KeyedDataBlock) return GenericSc::SglDescriptorTypeInvalid;
    if (d.sgl_subtype() != SglSubtype::Address && d.sgl_subtype() != SglSubtype::InvalidateKey) {
      return GenericSc::SglDescriptorTypeInvalid;
    }
    if (d.keyed_length() == 0) return Status{};
    if (r->nsgl == kMaxSgl) return GenericSc::InvalidSglDescriptorCount;
    r->sgl[r->nsgl++] = KeyedSeg{d.addr, d.keyed_length(), d.keyed_key()};
    total += d.keyed_length();
    return Status{};
  };
  if (sgl.sgl_type() == SglType::DataBlock && sgl.sgl_subtype() == SglSubtype::Offset) {
    if (r->xfer != XferDir::HostToCtrl) return GenericSc::SglDescriptorTypeInvalid;
    if (sgl.length > icd_) return GenericSc::DataSglLengthInvalid;
    if (sgl.addr > data_in_capsule) return GenericSc::SglOffsetInvalid;
    if (sgl.length > data_in_capsule - sgl.addr) return GenericSc::DataSglLengthInvalid;
    if (sgl.length > tt_.opts.max_data_transfer) return GenericSc::DataSglLengthInvalid;
    r->length = sgl.length;
    r->in_capsule = true;
    r->icd_off = uint32_t(sgl.addr);
    return Status{};
  }
  if (sgl.sgl_type() == SglType::KeyedDataBlock) {
    Status s = add_keyed(sgl);
    if (!s.ok()) return s;
    r->invalidate = r->nsgl == 1 && sgl.sgl_subtype() == SglSubtype::InvalidateKey;
  } else if (sgl.sgl_type() == SglType::LastSegment && sgl.sgl_subtype() == SglSubtype::Offset) {
    // A list of keyed descriptors in the capsule's data area.
    if (sgl.length == 0 || sgl.length % sizeof(SglDescriptor)) return GenericSc::InvalidSglSegmentDescriptor;
    if (sgl.addr > data_in_capsule || sgl.length > data_in_capsule - sgl.addr) return GenericSc::SglOffsetInvalid;
    const uint32_t n = sgl.length / uint32_t(sizeof(SglDescriptor));
    if (n > uint32_t(kMaxSgl)) return GenericSc::InvalidSglDescriptorCount;
    for (uint32_t i = 0; i < n; i++) {
      SglDescriptor d;
      std::memcpy(&d, capsule + sizeof(SqEntry) + sgl.addr + i * sizeof d, sizeof d);
      Status s = add_keyed(d);
      if (!s.ok()) return s;
    }
  } else {
    return GenericSc::SglDescriptorTypeInvalid;
  }
  if (total > tt_.opts.max_data_transfer) {
    r->nsgl = 0;
    return GenericSc::DataSglLengthInvalid;
  }
  r->length = uint32_t(total);
  return Status{};
}

// ---------------------------------------------------------------------------
// The request state machine.

// Moves a request forward until it waits for something (a buffer, send
// queue slots, READ credits, a completion, the NVMe layer).
void RdmaQpair::advance(RdmaRequest* r) {
  for (;;) {
    switch (r->state) {
      case ReqState::NeedBuffer:
        if (!dev_.get_buffer(&r->pbuf)) {
          dev_.buf_waiters.push_back(r);
          return;
        }
        use_buffer(r);
        continue;
      case ReqState::NeedRead:
        if (closing_ || qp_error_) return;  // the disconnect releases it
        if (!r->wlist) read_wait_.push_back(r);
        pump_reads();  // Reading once all its READs are posted
        return;
      case ReqState::Ready:
        r->state = ReqState::Executing;
        executing_++;
        if (r->failed) {
          request_fail_early(r, r->status, r->fail_dnr);
        } else {
          request_exec(r);
        }
        return;  // it may be recycled already
      case ReqState::Free:
      case ReqState::Reading:
      case ReqState::Executing:
      case ReqState::NeedSend:
      case ReqState::Sending:
        return;
    }
  }
}

// The request got its registered data buffer (r->pbuf): in-capsule data is
// copied there (and its receive buffer goes back), write data is fetched
// into it by RDMA READ, read data is produced in it by the NVMe layer.
void RdmaQpair::use_buffer(RdmaRequest* r) {
  // The NVMe layer's use_own_buffer() finds this buffer, so read data lands
  // where RDMA WRITE sends it from.
  if (!r->buf) {
    r->buf = r->pbuf.p;
    r->buf_cap = tt_.buffer_cap;
  }
  if (r->recv_idx >= 0) {
    const uint32_t i = uint32_t(r->recv_idx);
    std::memcpy(r->pbuf.p, recv_buf(i) + sizeof(SqEntry) + r->icd_off, r->length);
    r->recv_idx = -1;
    release_recv(i);
    r->iov[0] = iovec{r->pbuf.p, r->length};
    r->iovcnt = 1;
    r->state = ReqState::Ready;
  } else if (r->xfer == XferDir::CtrlToHost) {
    r->state = ReqState::Ready;
  } else {
    r->iov[0] = iovec{r->pbuf.p, r->length};
    r->iovcnt = 1;
    r->state = ReqState::NeedRead;
  }
}

// A buffer that became free on our device was handed to this request
// (RdmaDevice::put_buffer).
void RdmaQpair::buffer_ready(RdmaRequest* r) {
  Busy busy(this);
  if (closing_ || qp_error_ || r->state != ReqState::NeedBuffer) {
    // Not ours to use any more: hand it on.
    PoolBuf b = r->pbuf;
    r->pbuf = PoolBuf{};
    dev_.put_buffer(b);
    return;
  }
  use_buffer(r);
  advance(r);
}

// READs for the requests waiting for them, oldest first, within the READ
// credits the host granted (ORD) and the free send queue slots.
void RdmaQpair::pump_reads() {
  while (!read_wait_.empty() && !qp_error_) {
    RdmaRequest* r = read_wait_.head;
    while (r->next_read < r->nsgl && reads_out_ < ord_ && sq_avail_ > 0) {
      const KeyedSeg& s = r->sgl[r->next_read];
      uint32_t off = 0;
      for (uint8_t k = 0; k < r->next_read; k++) off += r->sgl[k].len;
      ibv_send_wr& wr = r->wrs[r->next_read];
      ibv_sge& sge = r->sges[r->next_read];
      sge = ibv_sge{uint64_t(uintptr_t(r->pbuf.p + off)), s.len, r->pbuf.lkey};
      wr = ibv_send_wr{};
      wr.wr_id = make_wr_id(uid(), WrKind::Read, r->idx);
      wr.sg_list = &sge;
      wr.num_sge = 1;
      wr.opcode = IBV_WR_RDMA_READ;
      wr.send_flags = IBV_SEND_SIGNALED;
      wr.wr.rdma.remote_addr = s.addr;
      wr.wr.rdma.rkey = s.key;
      r->next_read++;
      r->reads_pending++;
      reads_out_++;
      sq_avail_--;
      append(&wr, &wr, 1);
    }
    if (r->next_read < r->nsgl) return;  // out of credits: the rest waits
    read_wait_.pop_front();
    r->state = ReqState::Reading;
  }
}

// WRITEs (read data) and the response SEND for the requests waiting for
// send queue slots, oldest first. A request's WRs go out together.
void RdmaQpair::pump_sends() {
  while (!send_wait_.empty() && !qp_error_) {
    RdmaRequest* r = send_wait_.head;
    const uint32_t need = uint32_t(r->nwrites) + 1;
    if (sq_avail_ < need) return;
    send_wait_.pop_front();
    uint32_t off = 0;
    for (uint8_t k = 0; k < r->nwrites; k++) {
      ibv_send_wr& wr = r->wrs[k];
      ibv_sge& sge = r->sges[k];
      sge = ibv_sge{uint64_t(uintptr_t(r->pbuf.p + off)), r->sgl[k].len, r->pbuf.lkey};
      off += r->sgl[k].len;
      wr = ibv_send_wr{};
      wr.wr_id = make_wr_id(uid(), WrKind::Write, r->idx);
      wr.sg_list = &sge;
      wr.num_sge = 1;
      wr.opcode = IBV_WR_RDMA_WRITE;
      wr.send_flags = 0;  // the SEND's completion implies it
      wr.wr.rdma.remote_addr = r->sgl[k].addr;
      wr.wr.rdma.rkey = r->sgl[k].key;
      wr.next = &r->wrs[k + 1];
    }
    ibv_send_wr& send = r->wrs[r->nwrites];
    ibv_sge& sge = r->sges[r->nwrites];
    sge = ibv_sge{uint64_t(uintptr_t(resp_slot(r->idx))), uint32_t(sizeof(CqEntry)), slab_mr_->lkey};
    send = ibv_send_wr{};
    send.wr_id = make_wr_id(uid(), WrKind::Send, r->idx);
    send.sg_list = &sge;
    send.num_sge = 1;
    send.send_flags = IBV_SEND_SIGNALED;
    if (r->invalidate) {
      // The host registered this key for the one command: invalidating it
      // with the response saves the host a local invalidation.
      send.opcode = IBV_WR_SEND_WITH_INV;
      send.invalidate_rkey = r->sgl[0].key;
    } else {
      send.opcode = IBV_WR_SEND;
    }
    r->unsignaled = r->nwrites;
    r->state = ReqState::Sending;
    sq_avail_ -= need;
    append(&r->wrs[0], &send, int(need));
  }
}

void RdmaQpair::append(ibv_send_wr* first, ibv_send_wr* last, int n) {
  last->next = nullptr;
  if (chain_tail_) {
    chain_tail_->next = first;
  } else {
    chain_head_ = first;
  }
  chain_tail_ = last;
  chain_len_ += uint32_t(n);
  if (!dirty_) {
    dirty_ = true;
    rg_.mark_dirty(this);
  }
}

// One ibv_post_send for everything batched since the last flush. Called at
// the end of the group's poll iteration, and before every QP state change.
void RdmaQpair::flush_sends() {
  dirty_ = false;
  if (!chain_head_) return;
  ibv_send_wr* head = chain_head_;
  const uint32_t len = chain_len_;
  chain_head_ = chain_tail_ = nullptr;
  chain_len_ = 0;
  ibv_send_wr* bad = nullptr;
  const int rc = qp_ ? ibv_post_send(qp_, head, &bad) : EINVAL;
  if (rc == 0) {
    sq_posted_ += len;
    return;
  }
  if (!bad) bad = head;
  for (ibv_send_wr* w = head; w && w != bad; w = w->next) sq_posted_++;
  // WRs that never reached the QP will never complete: undo what they
  // reserved. Their requests keep their buffers (an earlier WR of theirs
  // may still be in flight) until the QP is destroyed.
  for (ibv_send_wr* w = bad; w; w = w->next) {
    if (wr_index(w->wr_id) >= nreqs_) continue;
    RdmaRequest* r = &reqs_[wr_index(w->wr_id)];
    sq_avail_++;
    switch (wr_kind(w->wr_id)) {
      case WrKind::Read:
        if (reads_out_) reads_out_--;
        if (r->reads_pending) r->reads_pending--;
        r->abandoned = true;
        break;
      case WrKind::Write:
        if (r->unsignaled) r->unsignaled--;
        break;
      case WrKind::Send:
      case WrKind::Recv:
        r->abandoned = true;
        break;
    }
  }
  std::string why = "ibv_post_send failed: " + errno_str(rc);
  connection_error(why.c_str());
}

// ---------------------------------------------------------------------------
// Completions of our work requests (READ, WRITE, SEND).

void RdmaQpair::on_send_side(const ibv_wc& wc) {
  Busy busy(this);
  const uint32_t idx = wr_index(wc.wr_id);
  if (idx >= nreqs_) return;
  RdmaRequest* r = &reqs_[idx];
  const bool ok = wc.status == IBV_WC_SUCCESS;
  if (!ok && wc.status != IBV_WC_WR_FLUSH_ERR) {
    std::string why = std::string(wc.opcode == IBV_WC_RDMA_READ ? "RDMA READ" : wc.opcode == IBV_WC_RDMA_WRITE
                                                                                     ? "RDMA WRITE"
                                                                                     : "send") +
                      " failed: " + verbs().wc_status_str(wc.status);
    connection_error(why.c_str());
  }
  switch (wr_kind(wc.wr_id)) {
    case WrKind::Send: {
      const uint32_t n = 1u + r->unsignaled;
      sq_posted_ -= std::min(sq_posted_, n);
      sq_avail_ += n;
      r->unsignaled = 0;
      if (r->state == ReqState::Sending && !r->abandoned) recycle(r);
      break;
    }
    case WrKind::Write:  // only failed WRITEs complete on their own
      if (sq_posted_) sq_posted_--;
      sq_avail_++;
      if (r->unsignaled) r->unsignaled--;
      break;
    case WrKind::Read:
      if (sq_posted_) sq_posted_--;
      sq_avail_++;
      if (reads_out_) reads_out_--;
      if (r->reads_pending) r->reads_pending--;
      if (!ok) r->abandoned = true;
      if (r->reads_pending == 0 && (r->state == ReqState::Reading || r->state == ReqState::NeedRead)) {
        if (r->abandoned || closing_ || qp_error_) {
          recycle(r);
        } else if (r->next_read >= r->nsgl) {
          r->state = ReqState::Ready;
          advance(r);
        }
        // else: more READs wait for credits (it is still on read_wait_)
      }
      break;
    case WrKind::Recv:
      break;
  }
  pump_sends();
  pump_reads();
}

// ---------------------------------------------------------------------------
// Completion from the NVMe layer.

void RdmaQpair::complete(RdmaRequest* r) {
  Busy busy(this);
  if (r->state != ReqState::Executing) {
    // Completing twice would post its WRs twice.
    fprintf(stderr, "nvmf-target: rdma %s: completion of a command not executing (cid %u)\n", peer.c_str(),
            unsigned(r->cmd.cid));
    return;
  }
  if (executing_) executing_--;
  if (qp_error_) {
    recycle(r);  // the connection is gone: nobody to tell
    return;
  }
  *resp_slot(r->idx) = r->cpl;
  r->nwrites = 0;
  if (r->xfer == XferDir::CtrlToHost && r->ok() && r->length > 0 && r->nsgl > 0) {
    if (!r->pbuf.p) {
      resp_slot(r->idx)->status = cqe_status(GenericSc::InternalError, false);
    } else {
      // Handlers that build data in the request's buffer wrote it in place;
      // others (zero-copy reads from RAM) point elsewhere: copy it in.
      const bool in_place = r->iovcnt >= 1 && r->iov[0].iov_base == r->pbuf.p && r->iov[0].iov_len >= r->length;
      if (!in_place) {
        uint32_t done = 0;
        for (int i = 0; i < r->iovcnt && done < r->length; i++) {
          const uint32_t n = uint32_t(std::min<size_t>(r->iov[i].iov_len, r->length - done));
          std::memmove(r->pbuf.p + done, r->iov[i].iov_base, n);
          done += n;
        }
      }
      r->nwrites = r->nsgl;
    }
  }
  r->state = ReqState::NeedSend;
  send_wait_.push_back(r);
  pump_sends();
}

void RdmaQpair::recycle(RdmaRequest* r) {
  if (r->wlist) r->wlist->remove(r);
  if (r->owns_cid) cids_[r->cmd.cid / 64] &= ~(1ull << (r->cmd.cid % 64));
  const PoolBuf b = r->pbuf;
  if (b.p && r->buf == b.p) {
    r->buf = nullptr;
    r->buf_cap = 0;
  }
  const int32_t held = r->recv_idx;
  r->reset();
  r->clear_transport_state();
  r->qpair = this;
  r->state = ReqState::Free;
  r->next_free = free_;
  free_ = r;
  if (in_use_) in_use_--;
  if (held >= 0) release_recv(uint32_t(held));
  if (b.p) dev_.put_buffer(b);  // it may continue another request
  take_capsules();
}

// Disconnect: requests the NVMe layer never saw have nobody to answer to.
// Those with READs in flight wait for them (the device writes into their
// buffer until then).
void RdmaQpair::release_unstarted() {
  for (uint32_t i = 0; i < nreqs_; i++) {
    RdmaRequest& r = reqs_[i];
    switch (r.state) {
      case ReqState::NeedBuffer:
      case ReqState::NeedRead:
      case ReqState::Reading:
      case ReqState::Ready:
        if (r.reads_pending) {
          r.abandoned = true;
          if (r.wlist) r.wlist->remove(&r);
          r.state = ReqState::Reading;
        } else {
          recycle(&r);
        }
        break;
      default:
        break;
    }
  }
}

// ---------------------------------------------------------------------------
// Connection events and teardown.

void RdmaQpair::on_cm_event(rdma_cm_event_type ev, int status) {
  Busy busy(this);
  switch (ev) {
    case RDMA_CM_EVENT_ESTABLISHED:
      established_ = true;
      break;
    case RDMA_CM_EVENT_DISCONNECTED:
      quiet_ = true;  // hosts leave this way
      connection_error("host disconnected");
      break;
    case RDMA_CM_EVENT_TIMEWAIT_EXIT:
      break;
    case RDMA_CM_EVENT_DEVICE_REMOVAL:
      connection_error("RDMA device removed");
      break;
    case RDMA_CM_EVENT_ADDR_CHANGE:
      connection_error("local address changed");
      break;
    default: {
      std::string why = std::string("connection failed (") + verbs().event_str(ev) + ", status " +
                        std::to_string(status) + ")";
      connection_error(why.c_str());
      break;
    }
  }
}

// The connection is unusable: flush what is batched, move the QP to the
// error state (everything posted comes back flushed), then the generic
// disconnect.
void RdmaQpair::connection_error(const char* why) {
  Busy busy(this);
  if (!qp_error_ && !closing_ && !quiet_) log_once(why);
  if (!qp_error_) enter_error();
  qpair_disconnect(this, why);
}

void RdmaQpair::disconnect(const char* reason) {
  (void)reason;  // the generic layer reports it
  Busy busy(this);
  if (closing_) return;
  closing_ = true;
  if (hs_timer_) {
    reactor().cancel_timer(hs_timer_);
    hs_timer_ = 0;
  }
  drop_pending();
  release_unstarted();
  if (!qp_error_) {
    const uint64_t ns = uint64_t(tt_.target.options().disconnect_timeout_ms) * 1000000ull;
    timer_ = reactor().add_timer(ns, [this] { on_disconnect_timeout(); });
  }
}

// Batched sends go out first (the rule: flushed before any QP state
// change), then rdma_disconnect() moves the QP to the error state.
void RdmaQpair::enter_error() {
  if (qp_error_) return;
  flush_sends();
  if (qp_error_) return;  // the flush failed and got here first
  qp_error_ = true;
  if (id_ && accepted_) verbs().disconnect(id_);
  // Nothing waits for send queue slots any more.
  while (RdmaRequest* r = send_wait_.pop_front()) recycle(r);
  while (RdmaRequest* r = read_wait_.pop_front()) {
    if (r->reads_pending) {
      r->abandoned = true;
      r->state = ReqState::Reading;
    } else {
      recycle(r);
    }
  }
  drain_timer_ = reactor().add_timer(kDrainTimeoutNs, [this] { on_drain_timeout(); });
}

void RdmaQpair::check_finish() {
  if (!closing_ || finished_) return;
  if (!qp_error_) {
    // Every response confirmed by its SEND completion first.
    if (in_use_ != 0) return;
    enter_error();
  }
  if (executing_ != 0) return;  // the NVMe layer still owns request memory
  if ((rq_posted_ != 0 || sq_posted_ != 0) && !drain_expired_) return;
  finished_ = true;
  cancel_timers();
  rg_.schedule_reap(this);
}

// Safety net: the host stopped acknowledging our sends. Give up on the
// wire, never on memory the NVMe layer still owns.
void RdmaQpair::on_disconnect_timeout() {
  Busy busy(this);
  timer_ = 0;
  if (finished_ || qp_error_) return;
  log_once("disconnect timed out; closing with responses unconfirmed");
  enter_error();
}

void RdmaQpair::on_drain_timeout() {
  Busy busy(this);
  drain_timer_ = 0;
  if (finished_) return;
  if (rq_posted_ || sq_posted_) {
    char why[128];
    snprintf(why, sizeof why, "device did not flush %u receive(s) and %u send(s); destroying the QP anyway",
             unsigned(rq_posted_), unsigned(sq_posted_));
    log_once(why);
  }
  drain_expired_ = true;
}

void RdmaQpair::on_handshake_timeout() {
  Busy busy(this);
  hs_timer_ = 0;
  if (closing_ || state() != QpairState::Connecting) return;
  char why[96];
  snprintf(why, sizeof why, "no Fabrics Connect within %u ms; closing", unsigned(tt_.opts.handshake_timeout_ms));
  log_once(why);
  qpair_disconnect(this, "handshake timeout");
}

void RdmaQpair::cancel_timers() {
  for (uint64_t* t : {&timer_, &drain_timer_, &hs_timer_}) {
    if (*t) reactor().cancel_timer(*t);
    *t = 0;
  }
}

void RdmaQpair::force_close() {
  cancel_timers();
  if (executing_) {
    fprintf(stderr, "nvmf-target: rdma %s: freed with %u command(s) in flight\n", peer.c_str(),
            unsigned(executing_));
  }
  closing_ = finished_ = true;
  if (!qp_error_) {
    flush_sends();
    qp_error_ = true;
    if (id_ && accepted_) verbs().disconnect(id_);
  }
  destroy_qp();
}

// QP and cm_id first: after ibv_destroy_qp the device touches none of our
// buffers, so they can go back to the pool and be freed.
void RdmaQpair::destroy_qp() {
  const Verbs& v = verbs();
  if (id_) {
    if (qp_) v.destroy_qp(id_);
    qp_ = nullptr;
    v.destroy_id(id_);
    id_ = nullptr;
  }
  if (qp_num_) {
    // Capsules of ours still in the CQ find no qpair: their buffers go back.
    dev_.unmap_qpn(qp_num_);
    qp_num_ = 0;
  }
  drop_pending();  // SRQ buffers held by capsules that never got a request
  if (reqs_) {
    // Off every wait list before any buffer goes back: a returned buffer
    // goes to the oldest waiter, which must not be one of ours.
    for (uint32_t i = 0; i < nreqs_; i++) {
      if (reqs_[i].wlist) reqs_[i].wlist->remove(&reqs_[i]);
    }
    for (uint32_t i = 0; i < nreqs_; i++) {
      RdmaRequest& r = reqs_[i];
      if (r.recv_idx >= 0) {
        drop_recv(uint32_t(r.recv_idx));  // SRQ: back to the shared queue
        r.recv_idx = -1;
      }
      if (r.pbuf.p) {
        if (r.buf == r.pbuf.p) {
          r.buf = nullptr;
          r.buf_cap = 0;
        }
        const PoolBuf b = r.pbuf;
        r.pbuf = PoolBuf{};
        dev_.put_buffer(b);
      }
    }
  }
  if (cq_reserved_) {
    dev_.release_cq(cq_reserved_);
    cq_reserved_ = 0;
  }
  if (srq_committed_) {
    dev_.srq_uncommit(srq_committed_);
    srq_committed_ = 0;
  }
  if (slab_mr_) {
    dev_.dereg(slab_mr_);
    slab_mr_ = nullptr;
  }
  std::free(slab_);
  slab_ = nullptr;
}

}  // namespace nvmf::rdma
