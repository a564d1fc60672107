// NVMe/RDMA target transport: the classes shared by rdma.cc (ops table,
// listeners, acceptor, async events), rdma_group.cc (per poll group: devices,
// completion queues, buffer pools, CM events) and rdma_qpair.cc (queue pairs
// and the request state machine). Nothing outside transport/rdma*.cc
// includes this file.
//
// Threads: listeners, the listener CM event channel and the devices' async
// event fds live on reactor 0 (the acceptor). Everything else belongs to one
// poll group and runs on its reactor: a connection is handed over with a
// counted reference to its group, whose reactor migrates the cm_id to the
// group's own CM event channel before accepting, so every later event of
// that connection arrives where the qpair lives.
//
// Memory registration happens once, never per I/O: per qpair one MR covers
// its receive buffers (capsules) and response capsules (with a shared
// receive queue, per group and device one MR covers the SRQ's buffers); per group and device
// a pool of data buffers is registered in chunks as it grows. Reads from a
// RAM bdev are copied into the request's registered buffer rather than
// registering bdev memory: an MR cache keyed by address would outlive a
// deleted bdev, and the copy is cheap next to the wire.
//
// Completions find their qpair by the uid encoded in wr_id, never by a
// pointer: a completion that arrives after its qpair was freed (a device
// that stopped flushing, the drain timer fired) is recognised and ignored.
#pragma once

#include <sys/epoll.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/poll_group.h"
#include "core/qpair.h"
#include "core/reactor.h"
#include "core/request.h"
#include "core/target.h"
#include "nvme/spec.h"
#include "transport/rdma_verbs.h"
#include "transport/rdma_wire.h"
#include "transport/transport.h"

namespace nvmf {
extern const TransportOps kRdmaTransportOps;
}

namespace nvmf::rdma {

// Keyed SGL descriptors one command may carry (Last Segment list in the
// capsule). We advertise MSDBD 1, so only hosts that ignore it send more.
inline constexpr int kMaxSgl = 8;
inline constexpr uint32_t kMaxRequests = 4096;  // per qpair (wr_id index space is larger)
inline constexpr int kCqInitial = 1024;
inline constexpr int kPollBatch = 32;
// A device's data buffer pool grows in chunks of about this size, up to the
// limit; requests wait for a buffer beyond it.
inline constexpr size_t kPoolChunkBytes = 4u << 20;
inline constexpr size_t kPoolMaxBytes = 256u << 20;
// After the QP went to the error state, flush completions normally arrive at
// once; a device that stops producing them is given up on after this.
inline constexpr uint64_t kDrainTimeoutNs = 2000ull * 1000 * 1000;

// wr_id: [63:20] qpair uid, [19:17] kind, [16:0] request index. Receives
// posted to a shared receive queue carry kSrqUid and the buffer index: their
// completions find the qpair by wc.qp_num.
inline constexpr uint64_t kSrqUid = 0;  // qpair uids start at 1
enum class WrKind : uint8_t { Recv = 0, Send = 1, Read = 2, Write = 3 };
inline uint64_t make_wr_id(uint64_t uid, WrKind k, uint32_t idx) {
  return (uid << 20) | (uint64_t(k) << 17) | (idx & 0x1ffff);
}
inline uint64_t wr_uid(uint64_t id) { return id >> 20; }
inline WrKind wr_kind(uint64_t id) { return WrKind((id >> 17) & 0x7); }
inline uint32_t wr_index(uint64_t id) { return uint32_t(id & 0x1ffff); }

class RdmaTransport;
class RdmaGroup;
class RdmaDevice;
class RdmaQpair;
class RdmaRequest;

std::string errno_str(int e);
std::string sockaddr_str(const sockaddr* sa);

// ---------------------------------------------------------------------------
// Transport (control: reactor 0).

class RdmaListener;
class CmChannelHandler;
class AsyncEventHandler;

class RdmaTransport final : public Transport {
 public:
  RdmaTransport(Target& target, const TransportOptions& o);
  ~RdmaTransport() override;

  const uint32_t buffer_cap;  // data buffer per request (MDTS, at least 4 KiB)

  // ---- reactor 0 only ----
  rdma_event_channel* listen_channel = nullptr;
  std::unique_ptr<CmChannelHandler> listen_handler;
  std::map<std::string, std::unique_ptr<RdmaListener>> listeners;
  ibv_context** devices = nullptr;  // librdmacm's list, for async events
  std::vector<std::unique_ptr<AsyncEventHandler>> async_handlers;
  bool acceptor_started = false;
};

// ---------------------------------------------------------------------------
// Requests.

enum class ReqState : uint8_t {
  Free,        // on the qpair's free list
  NeedBuffer,  // capsule parsed; waits for a registered data buffer (in-capsule
               // data waits in its receive buffer meanwhile)
  NeedRead,    // has a buffer; waits for send queue slots and READ credits
  Reading,     // RDMA READs posted; waits for their completions
  Ready,       // data present (or failed early): next stop is the NVMe layer
  Executing,   // owned by the NVMe layer until req_complete
  NeedSend,    // response built; waits for send queue slots
  Sending,     // WRITEs + SEND queued or posted; recycled at the SEND completion
};

struct KeyedSeg {
  uint64_t addr;
  uint32_t len;
  uint32_t key;
};

struct PoolBuf {
  uint8_t* p = nullptr;
  uint32_t lkey = 0;
};

class RdmaRequest;
// An intrusive FIFO of requests (a request is on at most one at a time).
struct ReqList {
  RdmaRequest* head = nullptr;
  RdmaRequest* tail = nullptr;
  bool empty() const { return head == nullptr; }
  void push_back(RdmaRequest* r);
  RdmaRequest* pop_front();
  void remove(RdmaRequest* r);
};

class RdmaRequest final : public Request {
 public:
  ~RdmaRequest();

  RdmaQpair* rq = nullptr;
  uint32_t idx = 0;
  ReqState state = ReqState::Free;
  int32_t recv_idx = -1;     // receive buffer still holding its in-capsule data
  uint32_t icd_off = 0;      // in-capsule data: offset into the capsule data
  bool in_capsule = false;
  bool owns_cid = false;
  bool failed = false;
  bool fail_dnr = true;
  bool abandoned = false;  // the qpair closed while its READs were out
  bool invalidate = false; // answer with SEND_WITH_INV of sgl[0].key
  Status status;
  uint8_t nsgl = 0;
  uint8_t next_read = 0;      // sgl[next_read] is the next READ to post
  uint8_t reads_pending = 0;  // READs posted, not completed
  uint8_t nwrites = 0;        // WRITEs the response goes with
  uint8_t unsignaled = 0;  // WRITEs whose completion the SEND completion implies
  KeyedSeg sgl[kMaxSgl]{};
  PoolBuf pbuf;
  RdmaRequest* next_free = nullptr;
  // Wait list membership.
  RdmaRequest* wnext = nullptr;
  RdmaRequest* wprev = nullptr;
  ReqList* wlist = nullptr;

  ibv_send_wr wrs[kMaxSgl + 1]{};
  ibv_sge sges[kMaxSgl + 1]{};

  void fail(Status s, bool dnr) {
    if (failed) return;
    failed = true;
    status = s;
    fail_dnr = dnr;
  }
  void clear_transport_state();
};

// ---------------------------------------------------------------------------
// Per group and device: protection domain, completion queue + channel, and
// the registered data buffer pool.

class RdmaDevice final : public FdHandler {
 public:
  RdmaDevice(RdmaGroup& g, ibv_context* ctx) : ctx(ctx), group_(g) {}
  ~RdmaDevice() override;
  RdmaDevice(const RdmaDevice&) = delete;
  RdmaDevice& operator=(const RdmaDevice&) = delete;

  int init(std::string* err);
  void on_fd_event(uint32_t events) override;  // completion channel
  // Polls the CQ until it is empty (or `budget` completions). Returns how many.
  int poll(int budget);

  // CQ slots: every QP reserves send + receive depth, so flush completions
  // of all of them fit at once. Grows the CQ when needed.
  bool reserve_cq(int n);
  void release_cq(int n) { cq_reserved_ -= n; }

  ibv_cq* cq() const { return cq_; }

  // Shared receive queue (TransportOptions::rdma_srq_depth > 0), else null.
  // Its buffers are preposted once and reposted as soon as the qpair that
  // received into one has taken the capsule out; a qpair commits its queue
  // depth (HSQSIZE + 1) against the SRQ's size while it lives.
  ibv_srq* srq() const { return srq_; }
  uint32_t srq_depth() const { return srq_depth_; }
  uint8_t* srq_buf(uint32_t i) const { return srq_mem_ + size_t(i) * srq_stride_; }
  void srq_repost(uint32_t i);
  bool srq_commit(uint32_t n);
  void srq_uncommit(uint32_t n) { srq_committed_ -= std::min(srq_committed_, n); }
  uint32_t srq_committed() const { return srq_committed_; }
  // Receive completions of the SRQ name their QP by number.
  void map_qpn(uint32_t qpn, uint64_t uid) { qpn_uid_[qpn] = uid; }
  void unmap_qpn(uint32_t qpn) { qpn_uid_.erase(qpn); }

  // Data buffers (registered, buffer_cap bytes each).
  bool get_buffer(PoolBuf* out);
  void put_buffer(const PoolBuf& b);
  ReqList buf_waiters;  // requests (any qpair of this device) waiting for one
  // Registers `len` bytes at `p` (local write access); counted in resources.
  ibv_mr* reg(void* p, size_t len);
  void dereg(ibv_mr* mr);

  ibv_context* const ctx;
  ibv_pd* pd = nullptr;
  ibv_device_attr attr{};
  int qpairs = 0;

 private:
  bool grow_pool();
  int init_srq(std::string* err);
  void destroy_srq();
  void on_srq_recv(const ibv_wc& wc);

  RdmaGroup& group_;
  ibv_comp_channel* channel_ = nullptr;
  ibv_cq* cq_ = nullptr;
  bool channel_watched_ = false;
  int cq_size_ = 0;
  int cq_reserved_ = 0;
  unsigned unacked_events_ = 0;
  struct Chunk {
    uint8_t* mem;
    size_t bytes;
    ibv_mr* mr;
    uint32_t nbufs;
  };
  std::vector<Chunk> chunks_;
  std::vector<PoolBuf> free_;
  size_t pool_bytes_ = 0;
  uint32_t pool_bufs_ = 0;
  bool pool_full_logged_ = false;

  ibv_srq* srq_ = nullptr;
  uint8_t* srq_mem_ = nullptr;
  ibv_mr* srq_mr_ = nullptr;
  uint32_t srq_depth_ = 0;
  uint32_t srq_stride_ = 0;
  uint32_t srq_committed_ = 0;
  int srq_cq_reserved_ = 0;
  bool srq_post_failed_logged_ = false;
  std::vector<ibv_recv_wr> srq_wrs_;
  std::vector<ibv_sge> srq_sges_;
  std::unordered_map<uint32_t, uint64_t> qpn_uid_;
};

// ---------------------------------------------------------------------------
// Per poll group.

class RdmaGroup final : public TransportGroup, public FdHandler {
 public:
  RdmaGroup(RdmaTransport& t, PollGroup& g) : t(t), pg(g) {}
  ~RdmaGroup() override;

  int init(std::string* err);  // CM channel + poller, on the group's reactor
  void on_fd_event(uint32_t events) override;  // the group's CM event channel

  RdmaDevice* device_for(ibv_context* ctx, std::string* err);
  void add(std::unique_ptr<RdmaQpair> q);
  RdmaQpair* find(uint64_t uid) {
    auto it = qpairs_.find(uid);
    return it == qpairs_.end() ? nullptr : it->second.get();
  }
  bool empty() const { return qpairs_.empty(); }
  rdma_event_channel* cm_channel() const { return cm_channel_; }

  // A completion of the device's CQ; dispatched to its qpair by uid.
  void on_completion(const ibv_wc& wc);
  // Queues `q` for the end-of-iteration send flush.
  void mark_dirty(RdmaQpair* q);
  // Frees `q` from a message, so no caller up the stack sees it vanish.
  void schedule_reap(RdmaQpair* q);
  void disconnect_all(void (*done)(void*), void* arg);
  // A device or port went away: close the qpairs using it.
  void device_event(ibv_context* ctx, int port, const char* why);
  void qp_event(uint64_t uid, const char* why);
  void destroy_leftovers();

  RdmaTransport& t;
  PollGroup& pg;

 private:
  int poll_once();
  void flush_dirty();
  void reap();

  rdma_event_channel* cm_channel_ = nullptr;
  bool cm_watched_ = false;
  uint64_t poller_ = 0;
  std::vector<std::unique_ptr<RdmaDevice>> devices_;
  std::unordered_map<uint64_t, std::unique_ptr<RdmaQpair>> qpairs_;
  RdmaQpair* last_ = nullptr;  // completion lookup cache (cleared on reap)
  std::vector<uint64_t> dirty_;
  std::vector<uint64_t> flushing_;
  std::vector<uint64_t> dying_;
  bool reap_posted_ = false;
  void (*done_)(void*) = nullptr;
  void* done_arg_ = nullptr;
};

RdmaGroup* find_group(PollGroup& g);

// ---------------------------------------------------------------------------
// A queue pair.

struct ConnectParams {
  uint16_t qid = 0;
  uint16_t hrqsize = 0;
  uint16_t hsqsize = 0;
  uint8_t ird = 0;  // host's responder resources: our READ depth
};

class RdmaQpair final : public Qpair {
 public:
  RdmaQpair(RdmaTransport& t, std::shared_ptr<PollGroup> g, RdmaGroup& rg, RdmaDevice& dev,
            rdma_cm_id* id, const ConnectParams& p);
  ~RdmaQpair() override;

  // Buffers, QP, receives, then rdma_accept. On failure the caller rejects
  // and frees; *why says what failed.
  int setup(std::string* why);
  int accept();

  void on_recv(const ibv_wc& wc);
  // A capsule in the device's SRQ buffer `idx` (ours until released).
  void on_srq_recv(const ibv_wc& wc, uint32_t idx);
  void on_send_side(const ibv_wc& wc);
  void on_cm_event(rdma_cm_event_type ev, int status);
  void complete(RdmaRequest* r);        // ops->req_complete
  void disconnect(const char* reason);  // ops->qpair_disconnect
  void connection_error(const char* why);  // the wire is gone: error state, disconnect
  void flush_sends();                   // posts the batched WRs
  void force_close();                   // group teardown with us still open
  void destroy_qp();                    // reap: QP and cm_id, then memory
  RdmaDevice& device() { return dev_; }
  ibv_context* context() const { return id_ ? id_->verbs : nullptr; }
  uint8_t port_num() const { return id_ ? id_->port_num : 0; }
  // A buffer became free on our device: continue the request waiting for it.
  void buffer_ready(RdmaRequest* r);

 private:
  class Busy {
   public:
    explicit Busy(RdmaQpair* q) : q_(q) { q_->depth_++; }
    ~Busy() {
      if (--q_->depth_ == 0) q_->settle();
    }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

   private:
    RdmaQpair* q_;
  };

  void settle();
  void check_finish();
  void enter_error();
  void log_once(const char* why);
  void on_disconnect_timeout();
  void on_drain_timeout();
  void on_handshake_timeout();
  void cancel_timers();

  bool post_recv(uint32_t i);
  void release_recv(uint32_t i);
  void drop_recv(uint32_t i);
  void got_capsule(const ibv_wc& wc, uint32_t idx);
  void take_capsules();
  void drop_pending();
  Status parse_sgl(RdmaRequest* r, const uint8_t* capsule, uint32_t len);
  void advance(RdmaRequest* r);
  void use_buffer(RdmaRequest* r);
  void pump_reads();
  void pump_sends();
  void append(ibv_send_wr* first, ibv_send_wr* last, int n);
  void recycle(RdmaRequest* r);
  void release_unstarted();
  void claim_cid(RdmaRequest* r);
  uint8_t* recv_buf(uint32_t i) const {
    return srq_ ? dev_.srq_buf(i) : slab_ + size_t(i) * recv_stride_;
  }
  CqEntry* resp_slot(uint32_t i) const {
    return reinterpret_cast<CqEntry*>(slab_ + size_t(srq_ ? 0 : nrecv_) * recv_stride_) + i;
  }

  RdmaTransport& tt_;
  RdmaGroup& rg_;
  RdmaDevice& dev_;
  rdma_cm_id* id_;
  ibv_qp* qp_ = nullptr;
  const ConnectParams params_;
  uint32_t nrecv_ = 0;        // receive buffers: HSQSIZE + 1 (our CRQSIZE)
  // Shared receive queue mode: the device's SRQ (receive buffers are its);
  // srq_held_ counts those holding a capsule of ours, at most nrecv_.
  ibv_srq* srq_ = nullptr;
  uint32_t srq_held_ = 0;
  uint32_t srq_committed_ = 0;
  uint32_t qp_num_ = 0;
  uint32_t nreqs_ = 0;        // requests: more, as one lives until its SEND completes
  uint32_t icd_ = 0;          // in-capsule data bytes a receive buffer holds
  uint32_t recv_stride_ = 0;
  uint32_t max_send_wr_ = 0;
  int cq_reserved_ = 0;
  uint8_t ord_ = 0;            // RDMA READs we may have outstanding
  uint8_t* slab_ = nullptr;    // receive buffers, then response capsules
  size_t slab_bytes_ = 0;
  ibv_mr* slab_mr_ = nullptr;
  std::unique_ptr<RdmaRequest[]> reqs_;
  RdmaRequest* free_ = nullptr;
  std::vector<uint64_t> cids_;
  // Receive buffers: posted, or holding a capsule that waits for a free
  // request (FIFO ring), or holding in-capsule data a request waits to copy.
  std::vector<ibv_recv_wr> recv_wrs_;
  std::vector<ibv_sge> recv_sges_;
  struct PendingCapsule {
    uint32_t idx;  // receive buffer (the SRQ's, in SRQ mode)
    uint32_t len;  // bytes received
  };
  std::vector<PendingCapsule> pending_;
  uint32_t pend_head_ = 0;
  uint32_t pend_count_ = 0;

  // Send side accounting.
  uint32_t sq_avail_ = 0;     // slots not reserved by queued or posted WRs
  uint32_t sq_posted_ = 0;    // posted WRs whose completion is not accounted yet
  uint32_t rq_posted_ = 0;
  uint32_t reads_out_ = 0;
  ReqList read_wait_;
  ReqList send_wait_;
  ibv_send_wr* chain_head_ = nullptr;  // batched, posted by flush_sends()
  ibv_send_wr* chain_tail_ = nullptr;
  uint32_t chain_len_ = 0;
  bool dirty_ = false;

  uint32_t in_use_ = 0;     // requests not Free
  uint32_t executing_ = 0;  // requests the NVMe layer owns
  int depth_ = 0;
  bool closing_ = false;
  bool qp_error_ = false;   // moved to the error state: nothing more goes out
  bool drain_expired_ = false;
  bool quiet_ = false;      // the host left normally: nothing to log
  bool finished_ = false;
  bool logged_ = false;
  bool accepted_ = false;
  bool established_ = false;
  uint64_t timer_ = 0;
  uint64_t drain_timer_ = 0;
  uint64_t hs_timer_ = 0;
};

}  // namespace nvmf::rdma
