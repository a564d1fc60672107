// RdmaQueue: NVMe/RDMA host queue (see rdma_queue.h).
#include "host/rdma_queue.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "host/clock.h"
#include "transport/rdma_wire.h"

namespace nvmf::host {

using rdma::verbs;

namespace {

constexpr int kResolveTimeoutMs = 2000;
// What each fd of the private epoll set is.
constexpr uint32_t kTagWake = 0, kTagCm = 1, kTagCq = 2;
constexpr uint64_t kSendBit = 1ull << 32;  // wr_id: SEND of slot `tag`, else receive index
constexpr uint32_t kMaxKeyedLen = (1u << 24) - 1;
constexpr int kMaxSgl = 16;
// PSDT = SGL for data, MPTR contiguous: what every fabrics host sends.
constexpr uint8_t kFlagsSgl = uint8_t(kPsdtSglMptrContig << kPsdtShift);

std::string errno_str(int e) { return std::system_category().message(e); }

int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  return 0;
}

void keyed(SglDescriptor* d, uint64_t addr, uint32_t len, uint32_t key) {
  *d = SglDescriptor{};
  d->addr = addr;
  d->set_keyed(len, key);
  d->set_id(SglType::KeyedDataBlock, SglSubtype::Address);
}

}  // namespace

RdmaQueue::RdmaQueue(const HostQueueConfig& cfg, HostQueueListener* listener)
    : cfg_(cfg), listener_(listener), cids_(cfg.depth ? cfg.depth : 1), slots_(cids_.depth()) {}

RdmaQueue::~RdmaQueue() {
  const rdma::Verbs* v = rdma::verbs_load(nullptr);
  if (v) {
    // The QP first: after that the device touches none of our buffers.
    if (qp_) v->destroy_qp(id_);
    if (cq_) {
      if (unacked_) v->ack_cq_events(cq_, unacked_);
      v->destroy_cq(cq_);
    }
    if (cc_) v->destroy_comp_channel(cc_);
    for (Slot& s : slots_) {
      if (s.bounce_mr) v->dereg_mr(s.bounce_mr);
    }
    if (caps_mr_) v->dereg_mr(caps_mr_);
    if (pd_) v->dealloc_pd(pd_);
    if (id_) v->destroy_id(id_);
    if (ch_) v->destroy_event_channel(ch_);
  }
  for (Slot& s : slots_) std::free(s.bounce);
  std::free(caps_);
  if (evfd_ >= 0) ::close(evfd_);
  if (epfd_ >= 0) ::close(epfd_);
}

// ---------------------------------------------------------------------------
// Connection.

int RdmaQueue::connect(const sockaddr* addr, socklen_t len) {
  (void)len;
  if (state_ != State::Idle) return -EALREADY;
  const rdma::Verbs* v = rdma::verbs_load(nullptr);
  if (!v) return -ENOSYS;  // host_wrap checks this first, with the reason
  auto undo = [this](int e) {
    if (id_) verbs().destroy_id(id_);
    id_ = nullptr;
    if (ch_) verbs().destroy_event_channel(ch_);
    ch_ = nullptr;
    if (evfd_ >= 0) ::close(evfd_);
    if (epfd_ >= 0) ::close(epfd_);
    evfd_ = epfd_ = -1;
    return -e;
  };
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return undo(errno);
  evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (evfd_ < 0) return undo(errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = kTagWake;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev) < 0) return undo(errno);
  ch_ = v->create_event_channel();
  if (!ch_) return undo(errno ? errno : ENODEV);
  if (int rc = set_nonblock(ch_->fd); rc < 0) return undo(-rc);
  ev.data.u32 = kTagCm;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, ch_->fd, &ev) < 0) return undo(errno);
  if (v->create_id(ch_, &id_, this, RDMA_PS_TCP) != 0) return undo(errno);
  if (v->resolve_addr(id_, nullptr, const_cast<sockaddr*>(addr), kResolveTimeoutMs) != 0) return undo(errno);
  state_ = State::Connecting;
  return 0;
}

// Route resolved: PD, CQ, QP, registered capsules and responses, receives
// posted, then rdma_connect with the NVMe/RDMA private data.
int RdmaQueue::setup_connection(std::string* why) {
  const rdma::Verbs& v = verbs();
  ibv_context* ctx = id_->verbs;
  auto failed = [&](const char* what, int e) {
    *why = std::string(what) + ": " + errno_str(e);
    return -(e ? e : EIO);
  };
  ibv_device_attr attr{};
  if (int rc = v.query_device(ctx, &attr); rc != 0) return failed("ibv_query_device", rc > 0 ? rc : errno);
  if (!(pd_ = v.alloc_pd(ctx))) return failed("ibv_alloc_pd", errno);
  if (!(cc_ = v.create_comp_channel(ctx))) return failed("ibv_create_comp_channel", errno);
  if (int rc = set_nonblock(cc_->fd); rc < 0) return failed("completion channel", -rc);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = kTagCq;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, cc_->fd, &ev) < 0) return failed("epoll", errno);
  const uint32_t depth = cids_.depth();
  nrecv_ = depth;  // one response per command
  const uint32_t send_wr = depth + 1;
  if (!(cq_ = v.create_cq(ctx, int(send_wr + nrecv_), this, cc_, 0))) return failed("ibv_create_cq", errno);
  if (int rc = ibv_req_notify_cq(cq_, 0); rc != 0) return failed("ibv_req_notify_cq", rc);
  ibv_qp_init_attr qa{};
  qa.send_cq = cq_;
  qa.recv_cq = cq_;
  qa.cap.max_send_wr = send_wr;
  qa.cap.max_recv_wr = nrecv_;
  qa.cap.max_send_sge = 1;
  qa.cap.max_recv_sge = 1;
  qa.qp_type = IBV_QPT_RC;
  qa.sq_sig_all = 1;  // every SEND completes: the capsule buffer is reused after it
  if (v.create_qp(id_, pd_, &qa) != 0) return failed("rdma_create_qp", errno);
  qp_ = id_->qp;

  // Capsule data (I/O queues, up to what the controller's IOCCSZ allows):
  // write data, or a Last Segment list of keyed descriptors. The admin
  // queue sends bare commands, as Linux targets take no in-capsule data
  // there.
  icd_ = cfg_.qid == 0 ? 0 : cfg_.max_incapsule;
  max_incapsule_ = icd_;
  stride_ = (uint32_t(sizeof(SqEntry)) + icd_ + 63) / 64 * 64;
  caps_bytes_ = size_t(depth) * stride_ + size_t(nrecv_) * sizeof(CqEntry);
  caps_bytes_ = (caps_bytes_ + 4095) / 4096 * 4096;
  caps_ = static_cast<uint8_t*>(std::aligned_alloc(4096, caps_bytes_));
  if (!caps_) return failed("capsule buffers", ENOMEM);
  std::memset(caps_, 0, caps_bytes_);
  if (!(caps_mr_ = v.reg_mr(pd_, caps_, caps_bytes_, IBV_ACCESS_LOCAL_WRITE))) return failed("ibv_reg_mr", errno);
  for (uint32_t i = 0; i < nrecv_; i++) {
    if (!post_recv(i)) return failed("ibv_post_recv", EIO);
  }

  rdma::CmRequest req{};
  req.recfmt = rdma::kRecfmt10;
  req.qid = cfg_.qid;
  req.hrqsize = uint16_t(nrecv_);
  req.hsqsize = uint16_t(depth - 1);  // 0's based, like Connect's SQSIZE
  rdma_conn_param p{};
  p.private_data = &req;
  p.private_data_len = sizeof req;
  // The target READs our write data: let it have as many READs in flight
  // as the device allows. We never read from the target.
  p.responder_resources = uint8_t(std::clamp(attr.max_qp_rd_atom, 1, 255));
  p.initiator_depth = 0;
  p.flow_control = 1;
  p.retry_count = 7;
  p.rnr_retry_count = 7;
  uint8_t to = rdma::kAckTimeout;  // best effort: a device without it keeps the default
  v.set_option(id_, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &to, sizeof to);
  if (v.connect(id_, &p) != 0) return failed("rdma_connect", errno);
  connected_ = true;
  return 0;
}

bool RdmaQueue::post_recv(uint32_t i) {
  ibv_sge sge{uint64_t(uintptr_t(caps_ + size_t(cids_.depth()) * stride_ + size_t(i) * sizeof(CqEntry))),
              uint32_t(sizeof(CqEntry)), caps_mr_->lkey};
  ibv_recv_wr wr{};
  wr.wr_id = i;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  ibv_recv_wr* bad = nullptr;
  return ibv_post_recv(qp_, &wr, &bad) == 0;
}

void RdmaQueue::on_cm_event(rdma_cm_event_type ev, int status, const void* priv, uint8_t priv_len) {
  const rdma::Verbs& v = verbs();
  switch (ev) {
    case RDMA_CM_EVENT_ADDR_RESOLVED:
      if (v.resolve_route(id_, kResolveTimeoutMs) != 0) {
        fail(errno, cfg_.label + ": rdma_resolve_route: " + errno_str(errno));
      }
      return;
    case RDMA_CM_EVENT_ROUTE_RESOLVED: {
      std::string why;
      if (setup_connection(&why) < 0) fail(EIO, cfg_.label + ": " + why);
      return;
    }
    case RDMA_CM_EVENT_ESTABLISHED: {
      rdma::CmAccept acc{};
      if (priv && priv_len >= sizeof acc) std::memcpy(&acc, priv, sizeof acc);
      if (acc.recfmt != rdma::kRecfmt10) {
        fail(EPROTO, cfg_.label + ": the target accepted with an unknown record format");
        return;
      }
      state_ = State::Ready;
      if (listener_) listener_->on_queue_ready(*this);
      return;
    }
    case RDMA_CM_EVENT_REJECTED: {
      std::string why = cfg_.label + ": connection rejected by the target";
      rdma::CmReject rej{};
      if (priv && priv_len >= sizeof rej) {
        std::memcpy(&rej, priv, sizeof rej);
        if (rej.recfmt == rdma::kRecfmt10 && rej.sts != 0) {
          why += std::string(": ") + rdma::cm_reject_name(rej.sts) + " (NVMe/RDMA reject status " +
                 std::to_string(rej.sts) + ")";
        }
      }
      if (status == 28 /* IB_CM_REJ_CONSUMER_DEFINED */ || status == 0) {
      } else {
        why += " (CM status " + std::to_string(status) + ")";
      }
      fail(ECONNREFUSED, why);
      return;
    }
    case RDMA_CM_EVENT_ADDR_ERROR:
    case RDMA_CM_EVENT_ROUTE_ERROR:
    case RDMA_CM_EVENT_UNREACHABLE:
    case RDMA_CM_EVENT_CONNECT_ERROR:
      fail(ev == RDMA_CM_EVENT_UNREACHABLE ? ETIMEDOUT : EHOSTUNREACH,
           cfg_.label + ": " + v.event_str(ev) + " (status " + std::to_string(status) + ")");
      return;
    case RDMA_CM_EVENT_DISCONNECTED:
      // Responses the target sent before it disconnected are already in
      // our CQ (it saw them acknowledged): complete those commands first,
      // so a final response (AUTH_Failure1) is seen, not a dropped queue.
      if (cq_) poll_cq();
      fail(ECONNRESET, cfg_.label + ": the target closed the connection");
      return;
    case RDMA_CM_EVENT_DEVICE_REMOVAL:
      fail(ENODEV, cfg_.label + ": the RDMA device was removed");
      return;
    default:
      return;  // TIMEWAIT_EXIT, ADDR_CHANGE, ...
  }
}

// ---------------------------------------------------------------------------
// Polling.

void RdmaQueue::wake() {
  uint64_t one = 1;
  ssize_t r = ::write(evfd_, &one, sizeof one);
  (void)r;
}

int RdmaQueue::poll(uint32_t) {
  if (state_ == State::Failed || state_ == State::Idle) return 0;
  const rdma::Verbs& v = verbs();
  int work = 0;
  // Which of our fds are ready (one syscall; each of them would cost one).
  epoll_event evs[4];
  bool cm_ready = false;
  bool cq_ready = false;
  const int n = epoll_wait(epfd_, evs, 4, 0);
  for (int i = 0; i < n; i++) {
    if (evs[i].data.u32 == kTagWake) {
      uint64_t junk;
      if (::read(evfd_, &junk, sizeof junk) > 0) work++;
    } else if (evs[i].data.u32 == kTagCm) {
      cm_ready = true;
    } else {
      cq_ready = true;
    }
  }
  if (cq_ready && cc_) {
    ibv_cq* cq;
    void* ctx;
    while (v.get_cq_event(cc_, &cq, &ctx) == 0) unacked_++;
    if (unacked_) {
      v.ack_cq_events(cq_, unacked_);
      unacked_ = 0;
      ibv_req_notify_cq(cq_, 0);  // re-armed before draining: nothing slips by
      work++;
    }
  }
  // Completions before connection events: what arrived before a disconnect
  // is delivered before the disconnect fails the queue.
  if (cq_) work += poll_cq();
  rdma_cm_event* ev = nullptr;
  while (cm_ready && state_ != State::Failed && ch_ && v.get_cm_event(ch_, &ev) == 0) {
    const rdma_cm_event_type type = ev->event;
    const int status = ev->status;
    // Private data lives in the event: copy it, then acknowledge before
    // acting (destroying an id waits for its events' acknowledgements).
    uint8_t priv[64];
    uint8_t priv_len = 0;
    if (ev->param.conn.private_data && ev->param.conn.private_data_len) {
      priv_len = uint8_t(std::min<size_t>(ev->param.conn.private_data_len, sizeof priv));
      std::memcpy(priv, ev->param.conn.private_data, priv_len);
    }
    v.ack_cm_event(ev);
    on_cm_event(type, status, priv_len ? priv : nullptr, priv_len);
    work++;
  }
  if (pending_err_ && state_ != State::Failed) {
    int e = pending_err_;
    pending_err_ = 0;
    fail(e, pending_why_);
  }
  return work;
}

int RdmaQueue::poll_cq() {
  ibv_wc wc[16];
  int total = 0;
  for (;;) {
    int n = ibv_poll_cq(cq_, 16, wc);
    if (n < 0) {
      fail(EIO, cfg_.label + ": ibv_poll_cq failed");
      return total;
    }
    for (int i = 0; i < n && state_ != State::Failed; i++) on_wc(wc[i]);
    total += n;
    if (n < 16 || state_ == State::Failed) return total;
  }
}

void RdmaQueue::on_wc(const ibv_wc& wc) {
  if (wc.status != IBV_WC_SUCCESS) {
    if (wc.status == IBV_WC_WR_FLUSH_ERR) return;  // the QP went to error: fail() says why
    fail(EIO, cfg_.label + ": " + (wc.wr_id & kSendBit ? "send" : "receive") + " failed: " +
                  verbs().wc_status_str(wc.status));
    return;
  }
  if (wc.wr_id & kSendBit) {
    const uint16_t tag = uint16_t(wc.wr_id & 0xffff);
    if (tag >= slots_.size() || !slots_[tag].busy) return;
    Slot& s = slots_[tag];
    s.send_done = true;
    if (s.resp_done) complete(tag);
    return;
  }
  const uint32_t i = uint32_t(wc.wr_id);
  if (i >= nrecv_) return;
  if (wc.byte_len < sizeof(CqEntry)) {
    protocol_error("response shorter than a completion queue entry");
    return;
  }
  CqEntry cqe;
  std::memcpy(&cqe, caps_ + size_t(cids_.depth()) * stride_ + size_t(i) * sizeof(CqEntry), sizeof cqe);
  if (!post_recv(i)) {
    fail(EIO, cfg_.label + ": ibv_post_recv failed");
    return;
  }
  const int tag = cids_.tag_of(cqe.cid);
  if (tag < 0 || !slots_[tag].busy || slots_[tag].cid != cqe.cid || slots_[tag].resp_done) {
    char b[96];
    snprintf(b, sizeof b, "response names command id 0x%04x, which is not outstanding", unsigned(cqe.cid));
    protocol_error(b);
    return;
  }
  Slot& s = slots_[tag];
  s.cqe = cqe;
  s.resp_done = true;
  if (s.send_done) complete(uint16_t(tag));
}

void RdmaQueue::protocol_error(const std::string& why) { fail(EPROTO, cfg_.label + ": " + why); }

// ---------------------------------------------------------------------------
// Submission and completion.

bool RdmaQueue::ensure_bounce(Slot& s, uint32_t len) {
  if (s.bounce && s.bounce_cap >= len) return true;
  uint32_t cap = 4096;
  while (cap < len) cap <<= 1;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(4096, cap));
  if (!p) return false;
  ibv_mr* mr = verbs().reg_mr(pd_, p, cap,
                              IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
  if (!mr) {
    std::free(p);
    return false;
  }
  if (s.bounce_mr) verbs().dereg_mr(s.bounce_mr);
  std::free(s.bounce);
  s.bounce = p;
  s.bounce_cap = cap;
  s.bounce_mr = mr;
  return true;
}

int RdmaQueue::submit(const HostCmd& c) {
  if (state_ != State::Ready || failing_) return -ENOTCONN;
  if (c.fn == nullptr) return -EINVAL;
  const XferDir dir = c.len == 0 ? XferDir::None : c.dir;
  if (c.len != 0 && (c.data == nullptr || dir == XferDir::None)) return -EINVAL;
  if (c.len > kMaxKeyedLen) return -EINVAL;
  uint16_t tag, cid;
  if (!cids_.get(&tag, &cid)) return -EAGAIN;
  Slot& s = slots_[tag];
  s.busy = true;
  s.cid = cid;
  s.cmd = c;
  s.cmd.dir = dir;
  s.cmd.sqe.cid = cid;
  s.submit_ns = mono_ns();
  s.send_done = s.resp_done = s.keyed = false;
  uint8_t* cap = caps_ + size_t(tag) * stride_;
  uint32_t cap_len = sizeof(SqEntry);
  SqEntry& e = s.cmd.sqe;
  auto give_back = [&](int err) {
    s.busy = false;
    s.cmd = HostCmd{};
    cids_.put(tag);
    return err;
  };
  if (c.keep_dptr) {
    // Raw commands: flags and SGL1 as given; write data (if any) in the
    // capsule, for protocol tests that describe it themselves.
    if (dir == XferDir::H2C) {
      if (c.len > icd_) return give_back(-EINVAL);
      std::memcpy(cap + sizeof(SqEntry), c.data, c.len);
      cap_len += c.len;
    }
  } else {
    e.flags = uint8_t((e.flags & ~(0x3u << kPsdtShift)) | kFlagsSgl);
    e.mptr = 0;
    SglDescriptor& g = e.dptr.sgl1;
    if (dir == XferDir::None) {
      keyed(&g, 0, 0, 0);
    } else if (dir == XferDir::H2C && c.len <= max_incapsule_) {
      std::memcpy(cap + sizeof(SqEntry), c.data, c.len);
      cap_len += c.len;
      g = SglDescriptor{};
      g.addr = 0;  // offset 0 into the capsule data (ICDOFF 0)
      g.length = c.len;
      g.set_id(SglType::DataBlock, SglSubtype::Offset);
    } else {
      if (!ensure_bounce(s, c.len)) return give_back(-ENOMEM);
      if (dir == XferDir::H2C) std::memcpy(s.bounce, c.data, c.len);
      s.keyed = true;
      const uint64_t base = uint64_t(uintptr_t(s.bounce));
      const uint32_t key = s.bounce_mr->rkey;
      uint32_t n = std::min<uint32_t>(cfg_.sgl_descriptors, kMaxSgl);
      n = std::min<uint32_t>(n, c.len);
      if (n > 1 && n * uint32_t(sizeof(SglDescriptor)) <= max_incapsule_) {
        // A Last Segment list in the capsule: the transfer in n pieces.
        const uint32_t piece = (c.len + n - 1) / n;
        auto* list = reinterpret_cast<SglDescriptor*>(cap + sizeof(SqEntry));
        uint32_t off = 0, cnt = 0;
        while (off < c.len) {
          const uint32_t l = std::min(piece, c.len - off);
          keyed(&list[cnt++], base + off, l, key);
          off += l;
        }
        cap_len += cnt * uint32_t(sizeof(SglDescriptor));
        g = SglDescriptor{};
        g.addr = 0;
        g.length = cnt * uint32_t(sizeof(SglDescriptor));
        g.set_id(SglType::LastSegment, SglSubtype::Offset);
      } else {
        keyed(&g, base, c.len, key);
      }
    }
  }
  std::memcpy(cap, &e, sizeof e);
  ibv_sge sge{uint64_t(uintptr_t(cap)), cap_len, caps_mr_->lkey};
  ibv_send_wr wr{};
  wr.wr_id = kSendBit | tag;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.opcode = IBV_WR_SEND;
  wr.send_flags = IBV_SEND_SIGNALED;
  ibv_send_wr* bad = nullptr;
  if (int rc = ibv_post_send(qp_, &wr, &bad); rc != 0) {
    // Reported by the next poll(), never from inside submit(); the command
    // is failed with the queue.
    if (!pending_err_) {
      pending_err_ = EIO;
      pending_why_ = cfg_.label + ": ibv_post_send: " + errno_str(rc);
      wake();
    }
  }
  return 0;
}

void RdmaQueue::complete(uint16_t tag) {
  Slot& s = slots_[tag];
  HostCompletion hc;
  hc.err = 0;
  hc.cqe = s.cqe;
  hc.bytes = s.cmd.len;
  if (s.cmd.dir == XferDir::C2H && s.keyed && s.cmd.len) std::memcpy(s.cmd.data, s.bounce, s.cmd.len);
  CompletionFn fn = s.cmd.fn;
  void* ctx = s.cmd.ctx;
  // Free the slot before the callback, which may submit the next command.
  s.busy = false;
  s.cmd = HostCmd{};
  cids_.put(tag);
  fn(ctx, hc);
}

uint64_t RdmaQueue::oldest_submit_ns() const {
  uint64_t oldest = 0;
  for (const Slot& s : slots_) {
    if (s.busy && (oldest == 0 || s.submit_ns < oldest)) oldest = s.submit_ns;
  }
  return oldest;
}

void RdmaQueue::fail(int err, std::string why) {
  if (state_ == State::Failed || failing_) return;
  // Commands whose response arrived complete with it, even when their own
  // SEND completion has not (the target may defer its ACK): a final
  // response before a disconnect (AUTH_Failure1) reaches its caller
  // instead of a connection error. Their callbacks may fail the queue
  // themselves (with their reason); nothing new is submitted meanwhile.
  failing_ = true;
  for (size_t tag = 0; tag < slots_.size() && state_ != State::Failed; tag++) {
    if (slots_[tag].busy && slots_[tag].resp_done) complete(uint16_t(tag));
  }
  failing_ = false;
  if (state_ == State::Failed) return;
  const bool was_idle = state_ == State::Idle;
  state_ = State::Failed;
  fail_err_ = err > 0 ? err : EIO;
  fail_reason_ = std::move(why);
  if (listener_ && !was_idle) listener_->on_queue_failed(*this);
  // The QP to the error state: the device stops using our buffers (they
  // stay allocated until the destructor destroyed the QP). The caller's
  // buffers were never the device's.
  if (id_ && connected_) verbs().disconnect(id_);
  for (size_t tag = 0; tag < slots_.size(); tag++) {
    Slot& s = slots_[tag];
    if (!s.busy) continue;
    HostCompletion hc;
    hc.err = -fail_err_;
    hc.reason = fail_reason_.c_str();
    CompletionFn fn = s.cmd.fn;
    void* ctx = s.cmd.ctx;
    s.busy = false;
    s.cmd = HostCmd{};
    cids_.put(uint16_t(tag));
    fn(ctx, hc);
  }
}

}  // namespace nvmf::host
