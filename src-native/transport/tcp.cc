// NVMe/TCP target transport (NVMe/TCP Transport Specification 1.0).
//
// Listeners live on reactor 0 and hand every accepted socket to the least
// loaded poll group, holding a shared_ptr to it. On its group's reactor a
// connection becomes a TcpQpair owned by that group's TcpGroup. The qpair
// parses PDUs out of a staging buffer (or reads large payloads straight
// into the request buffer), drives preallocated TcpRequests through a small
// state machine, and writes PDUs with one sendmsg per batch, headers from
// per-request buffers and data straight from req->iov.
//
// Teardown follows DESIGN.md lesson 1: a disconnect stops reading, lets the
// commands already executing finish, writes every queued byte, and only
// then closes the socket; a timer bounds the wait for the socket, never for
// memory a bdev still owns. A qpair is freed from a posted message, never
// from inside one of its own call chains.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "core/poll_group.h"
#include "core/qpair.h"
#include "core/reactor.h"
#include "core/request.h"
#include "core/target.h"
#include "nvme/crc32c.h"
#include "nvme/exec.h"
#include "nvme/spec.h"
#include "transport/tcp_parse.h"
#include "transport/tcp_pdu.h"
#include "transport/transport.h"

namespace nvmf {
namespace {

using tcp::CapsuleCmdHdr;
using tcp::CapsuleRespHdr;
using tcp::CommonHeader;
using tcp::DataHdr;
using tcp::Fes;
using tcp::IcReq;
using tcp::IcResp;
using tcp::PduType;
using tcp::R2THdr;
using tcp::TermReqHdr;
using tcp::kDigestLen;

constexpr size_t kRecvBufSize = 64 * 1024;
// Payloads at least this large skip the staging copy when they can.
constexpr uint32_t kDirectReadMin = 16 * 1024;
// Bounded so one busy connection cannot starve the others on its reactor
// (epoll is level-triggered: what is left is reported again).
constexpr int kMaxReadsPerEvent = 16;
constexpr int kAcceptBatch = 64;
constexpr int kListenBacklog = 1024;
constexpr uint64_t kAcceptRetryNs = 100ull * 1000 * 1000;
constexpr uint32_t kMaxHdrLen = sizeof(IcReq) + kDigestLen;  // ICReq is the longest header
constexpr uint32_t kC2hHdrMax = tcp::data_offset(sizeof(DataHdr), true, tcp::kPdaMax);
constexpr int kTxMaxIov = Request::kMaxIov + 2;  // header, data..., data digest
constexpr uint32_t kMaxRequests = 65536;         // ttag is 16 bits
constexpr uint32_t kCidWords = 65536 / 64;
// Linux sizes admin capsules at a fixed 8 KiB (NVME_TCP_ADMIN_CCSZ) whatever
// IOCCSZ says, so the admin queue takes that much in-capsule data.
constexpr uint32_t kAdminInCapsule = 8192;

static_assert(kC2hHdrMax == 128);
static_assert(kMaxHdrLen >= tcp::kMaxRxHeader, "hdr_ must hold every header tcp_parse accepts");

class TcpQpair;
class TcpGroup;
class TcpListener;
class TcpTransport;

TcpGroup* find_tcp_group(PollGroup& g);

CommonHeader make_ch(PduType type, uint8_t flags, uint8_t hlen, uint8_t pdo, uint32_t plen) {
  return CommonHeader{uint8_t(type), flags, hlen, pdo, plen};
}

std::string errno_str(int e) { return std::system_category().message(e); }

void set_err(std::string* err, std::string msg) {
  if (err) *err = std::move(msg);
}

std::string sockaddr_str(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    std::string out = "[";  // built by appends: GCC 12 misreports "[" + string (-Wrestrict)
    out += host;
    out += "]:";
    out += std::to_string(ntohs(a->sin6_port));
    return out;
  }
  return "?";
}

std::string local_str(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return "?";
  return sockaddr_str(ss);
}

// ---------------------------------------------------------------------------
// Requests and the PDUs they send.

enum class ReqState : uint8_t {
  Free,              // on the qpair's free list
  ReceivingCapsule,  // capsule header parsed; its in-capsule data is still arriving
  NeedData,          // capsule complete; host-to-controller data must be fetched by R2T
  AwaitingH2C,       // an R2T is out; H2CData PDUs fill req->buf up to r2t_end
  Ready,             // data present (or failed early): next stop is the NVMe layer
  Executing,         // owned by the NVMe layer (handler, bdev) until req_complete
  Sending,           // C2H data and/or the response queued; recycled once written
};

class TcpRequest;

// One PDU in the send queue: iovecs over memory that stays put until the PDU
// is written (request header buffers, request data, qpair buffers).
struct TxPdu {
  TxPdu* next = nullptr;
  TcpRequest* done_req = nullptr;  // recycled once this PDU is fully written
  iovec iov[kTxMaxIov]{};
  uint8_t iovcnt = 0;
  uint8_t cur = 0;  // first iovec not fully written
  bool queued = false;

  void reset() {
    iovcnt = 0;
    cur = 0;
    done_req = nullptr;
  }
  void add(const void* p, size_t n) {
    if (n) iov[iovcnt++] = iovec{const_cast<void*>(p), n};
  }
};

class TcpRequest : public Request {
 public:
  TcpQpair* tq = nullptr;
  TcpRequest* next_free = nullptr;
  uint16_t ttag = 0;  // its index: H2CData names the request by it
  ReqState state = ReqState::Free;
  bool owns_cid = false;    // a cid-conflict duplicate must not release the original's cid
  bool in_capsule = false;  // data arrives in the capsule, not by R2T
  bool failed = false;      // completes with `status` instead of executing
  bool fail_dnr = true;
  Status status;
  uint32_t h2c_off = 0;  // data received so far = next expected H2C datao
  uint32_t r2t_end = 0;  // end of the data the outstanding R2T asked for

  TxPdu r2t_pdu, c2h_pdu, resp_pdu;
  alignas(8) uint8_t c2h_hdr[kC2hHdrMax]{};
  alignas(8) uint8_t r2t_hdr[sizeof(R2THdr) + kDigestLen]{};
  alignas(8) uint8_t resp_hdr[sizeof(CapsuleRespHdr) + kDigestLen]{};
  uint8_t ddgst[kDigestLen]{};

  // The first error wins: a later one would hide the cause.
  void fail(Status s, bool dnr) {
    if (failed) return;
    failed = true;
    status = s;
    fail_dnr = dnr;
  }
  void clear_transport_state() {
    owns_cid = false;
    in_capsule = false;
    failed = false;
    fail_dnr = true;
    status = Status{};
    h2c_off = 0;
    r2t_end = 0;
  }
};

// ---------------------------------------------------------------------------
// The qpair.

enum class RxState : uint8_t {
  AwaitIcReq,    // fresh connection: the first common header, which must be an ICReq
  AwaitPdu,      // between PDUs: the next common header (CapsuleCmd, H2CData, H2CTermReq)
  ReadHeader,    // common header valid: the rest of the header and its digest
  AwaitRequest,  // a command header is complete but every request is in use: paused
  ReadPad,       // padding between header and data (pdo), discarded
  ReadData,      // the PDU's data, into its destination (request buffer) or discarded
  ReadDdgst,     // the data digest after the data
  Stopped,       // fatal error, disconnect or dead socket: nothing more is read
};

class TcpTransport final : public Transport {
 public:
  TcpTransport(Target& target, const TransportOptions& o);
  ~TcpTransport() override;

  const uint32_t request_count;  // per qpair at most (the first capsule's SQSIZE may ask fewer)
  const uint32_t buffer_cap;     // per-request data buffer
  // ---- reactor 0 only ----
  std::map<std::string, std::unique_ptr<TcpListener>> listeners;
};

class TcpQpair final : public Qpair, public FdHandler {
 public:
  TcpQpair(TcpTransport& t, std::shared_ptr<PollGroup> g, TcpGroup& tg, int fd,
           std::string peer_addr, std::string local_addr);
  ~TcpQpair() override;

  int start();
  void on_fd_event(uint32_t events) override;
  void complete(TcpRequest* r);          // ops->req_complete
  void disconnect(const char* reason);   // ops->qpair_disconnect
  void flush_now();                      // the group's deferred flush
  void force_close();                    // the group goes away with us still open

 private:
  // Defers flushing, resuming and finishing until the outermost entry point
  // returns, so none of them runs in the middle of a parse or a send.
  class Busy {
   public:
    explicit Busy(TcpQpair* q) : q_(q) { q_->depth_++; }
    ~Busy() {
      if (--q_->depth_ == 0) q_->settle();
    }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

   private:
    TcpQpair* q_;
  };

  struct RxPdu {
    uint8_t type = 0;
    uint32_t hd = 0;        // header digest bytes
    uint32_t pad = 0;       // padding bytes still to skip
    uint32_t data_len = 0;  // data bytes in the PDU
    uint32_t pos = 0;       // data bytes consumed
    uint32_t dd = 0;        // data digest bytes
    uint8_t* dst = nullptr; // data positions [dst_off, dst_off + dst_len) land here
    uint32_t dst_off = 0;
    uint32_t dst_len = 0;
    uint32_t crc = ~0u;
    uint8_t digest[kDigestLen]{};
    uint32_t digest_have = 0;
    bool digest_ok = true;
  };

  void settle();
  void update_events();
  bool rx_wants_input() const { return rx_ != RxState::Stopped && rx_ != RxState::AwaitRequest; }
  // Before Connect qid is 0 too, and Connect's 1024 bytes fit either way.
  uint32_t in_capsule_limit() const {
    return qid == 0 ? std::max(tt_.opts.in_capsule_data, kAdminInCapsule) : tt_.opts.in_capsule_data;
  }

  // receive
  void on_readable();
  bool direct_target(uint8_t** dst, size_t* len) const;
  void rx_process();
  bool rx_step();
  bool fill_hdr();
  bool check_common_header();
  bool dispatch_header();
  bool on_icreq();
  bool on_capsule_header();
  bool on_h2c_header();
  bool on_term_req_header();
  bool rx_pad();
  bool rx_data();
  bool rx_ddgst();
  void take_data(const uint8_t* src, uint32_t n);
  void next_payload_part();
  void end_pdu();
  void capsule_done();
  void h2c_done();

  // requests
  bool alloc_requests(const SqEntry& first);
  TcpRequest* alloc_request();
  void recycle(TcpRequest* r);
  void claim_cid(TcpRequest* r);
  Status prepare_data(TcpRequest* r, uint32_t capsule_data);
  void req_process(TcpRequest* r);
  void release_unstarted();

  // send
  void enqueue(TxPdu* p);
  void send_r2t(TcpRequest* r);
  bool queue_c2h(TcpRequest* r);
  void queue_resp(TcpRequest* r);
  void queue_term_req(Fes fes, uint32_t fei);
  void flush();
  int gather(iovec* iov, int max) const;
  void advance(size_t n);
  void drop_sends();

  // teardown
  bool fail(Fes fes, uint32_t fei, const char* reason);
  void socket_error(int err);
  void peer_closed();
  void close_socket(bool graceful);
  void on_disconnect_timeout();
  void on_handshake_timeout();
  void cancel_timers();
  void check_finish();
  void log_once(const char* reason);

  TcpTransport& tt_;
  TcpGroup& tg_;
  int fd_;
  bool registered_ = false;  // fd_ is in the reactor's epoll set
  uint32_t ev_mask_ = 0;

  // Negotiated by ICReq/ICResp.
  bool hdgst_ = false;
  bool ddgst_ = false;
  uint8_t hpda_ = 0;

  RxState rx_ = RxState::AwaitIcReq;
  std::unique_ptr<uint8_t[]> rbuf_;
  size_t rpos_ = 0;
  size_t rlen_ = 0;
  alignas(8) uint8_t hdr_[kMaxHdrLen]{};
  uint32_t hdr_have_ = 0;
  uint32_t hdr_need_ = sizeof(CommonHeader);
  RxPdu pdu_;
  TcpRequest* rx_req_ = nullptr;  // request the current PDU's data belongs to
  bool in_rx_ = false;

  // Allocated with the first command capsule (alloc_requests), so a
  // connection that never gets that far costs a few KiB, not a queue's worth
  // of requests: idle or hostile connections before Connect stay cheap. That
  // capsule is Fabrics Connect, whose SQSIZE sizes the array: an admin queue
  // (32 entries) does not carry an I/O queue's 128 requests.
  uint32_t nreqs_ = 0;
  std::unique_ptr<TcpRequest[]> reqs_;
  TcpRequest* free_ = nullptr;
  uint32_t in_use_ = 0;
  std::vector<uint64_t> cids_;  // bitmap of cids in use

  TxPdu* txq_head_ = nullptr;
  TxPdu* txq_tail_ = nullptr;
  bool tx_blocked_ = false;     // EAGAIN: waiting for EPOLLOUT
  bool flush_deferred_ = false; // the group flushes us later, batched
  bool in_flush_ = false;
  IcResp icresp_{};
  TxPdu icresp_pdu_;
  alignas(8) uint8_t term_buf_[sizeof(TermReqHdr) + tcp::kTermReqMaxData]{};
  TxPdu term_pdu_;

  int depth_ = 0;
  bool want_rx_ = false;  // a request was freed while the parser waited for one
  bool closing_ = false;
  bool finished_ = false;
  bool logged_ = false;
  uint64_t timer_ = 0;     // disconnect safety net
  uint64_t hs_timer_ = 0;  // ICReq + Connect deadline
};

// ---------------------------------------------------------------------------
// Per poll group state.

class TcpGroup final : public TransportGroup {
 public:
  ~TcpGroup() override = default;

  void add(std::unique_ptr<TcpQpair> q) {
    uint64_t uid = q->uid();
    qpairs_.emplace(uid, std::move(q));
  }
  TcpQpair* find(uint64_t uid) {
    auto it = qpairs_.find(uid);
    return it == qpairs_.end() ? nullptr : it->second.get();
  }
  bool empty() const { return qpairs_.empty(); }
  iovec* iov_scratch() { return iov_.data(); }
  int iov_scratch_len() const { return int(iov_.size()); }

  // Frees `q` from a message, so no caller up the stack sees it vanish.
  void schedule_reap(TcpQpair* q);
  // Batches the flushes of completions that arrive outside our own event
  // handling (bdev pollers): one send per qpair per loop iteration. False if
  // the reactor no longer takes messages (flush now).
  bool defer_flush(TcpQpair* q);
  void disconnect_all(void (*done)(void*), void* arg);
  void destroy_leftovers();

 private:
  void reap();
  void flush_dirty();

  std::unordered_map<uint64_t, std::unique_ptr<TcpQpair>> qpairs_;
  std::vector<uint64_t> dying_;
  std::vector<uint64_t> dirty_;
  std::vector<uint64_t> flushing_;
  bool reap_posted_ = false;
  bool flush_posted_ = false;
  void (*done_)(void*) = nullptr;
  void* done_arg_ = nullptr;
  std::vector<iovec> iov_ = std::vector<iovec>(IOV_MAX);
};

TcpGroup* find_tcp_group(PollGroup& g) {
  auto it = g.tgroups.find(&kTcpTransportOps);
  return it == g.tgroups.end() ? nullptr : static_cast<TcpGroup*>(it->second.get());
}

TcpGroup& tcp_group_for(PollGroup& g) {
  if (TcpGroup* tg = find_tcp_group(g)) return *tg;
  auto tg = std::make_unique<TcpGroup>();
  TcpGroup& ref = *tg;
  g.tgroups[&kTcpTransportOps] = std::move(tg);
  return ref;
}

void TcpGroup::schedule_reap(TcpQpair* q) {
  dying_.push_back(q->uid());
  if (reap_posted_) return;
  std::shared_ptr<PollGroup> g = q->group_ref();
  // A refused post means the reactor is being torn down; poll_group_destroy
  // frees what is left.
  reap_posted_ = g->reactor().post([g] {
    if (TcpGroup* tg = find_tcp_group(*g)) tg->reap();
  });
}

void TcpGroup::reap() {
  reap_posted_ = false;
  std::vector<uint64_t> uids;
  uids.swap(dying_);
  for (uint64_t uid : uids) {
    auto it = qpairs_.find(uid);
    if (it == qpairs_.end()) continue;
    std::unique_ptr<TcpQpair> q = std::move(it->second);
    qpairs_.erase(it);
    qpair_destroyed(q.get());
  }
  if (qpairs_.empty() && done_) {
    auto done = done_;
    void* arg = done_arg_;
    done_ = nullptr;
    done(arg);  // last: it may destroy this group
  }
}

bool TcpGroup::defer_flush(TcpQpair* q) {
  if (!flush_posted_) {
    std::shared_ptr<PollGroup> g = q->group_ref();
    flush_posted_ = g->reactor().post([g] {
      if (TcpGroup* tg = find_tcp_group(*g)) tg->flush_dirty();
    });
    if (!flush_posted_) return false;
  }
  dirty_.push_back(q->uid());
  return true;
}

void TcpGroup::flush_dirty() {
  flush_posted_ = false;
  flushing_.swap(dirty_);  // two vectors swapped back and forth: no allocation
  for (uint64_t uid : flushing_) {
    if (TcpQpair* q = find(uid)) q->flush_now();
  }
  flushing_.clear();
}

void TcpGroup::disconnect_all(void (*done)(void*), void* arg) {
  done_ = done;
  done_arg_ = arg;
  std::vector<uint64_t> uids;
  uids.reserve(qpairs_.size());
  for (auto& [uid, q] : qpairs_) uids.push_back(uid);
  for (uint64_t uid : uids) {
    if (TcpQpair* q = find(uid)) qpair_disconnect(q, "target is shutting down");
  }
}

void TcpGroup::destroy_leftovers() {
  if (qpairs_.empty()) return;
  fprintf(stderr, "nvmf-target: tcp: poll group destroyed with %zu connection(s) still open\n",
          qpairs_.size());
  while (!qpairs_.empty()) {
    auto it = qpairs_.begin();
    std::unique_ptr<TcpQpair> q = std::move(it->second);
    qpairs_.erase(it);
    q->force_close();
    qpair_destroyed(q.get());
  }
}

// ---------------------------------------------------------------------------
// TcpQpair: construction, events, settling.

TcpQpair::TcpQpair(TcpTransport& t, std::shared_ptr<PollGroup> g, TcpGroup& tg, int fd,
                   std::string peer_addr, std::string local_addr)
    : Qpair(t, std::move(g)),
      tt_(t),
      tg_(tg),
      fd_(fd),
      rbuf_(std::make_unique_for_overwrite<uint8_t[]>(kRecvBufSize)) {
  peer = std::move(peer_addr);
  local = std::move(local_addr);
  max_queue_depth = t.opts.max_queue_depth;
  max_data_transfer = t.opts.max_data_transfer;
  in_capsule_data = t.opts.in_capsule_data;
}

// A host keeps at most SQSIZE + 1 commands outstanding; one that sends more
// waits for a free request (RxState::AwaitRequest), it is not failed. A first
// capsule that is not a Connect gets the transport's full count (it is
// refused right after anyway).
bool TcpQpair::alloc_requests(const SqEntry& first) {
  uint32_t n = tt_.request_count;
  FabricsConnectCmd c;
  std::memcpy(&c, &first, sizeof c);
  if (c.opc == uint8_t(AdminOpc::Fabrics) && c.fctype == uint8_t(FabricsType::Connect)) {
    n = std::clamp<uint32_t>(uint32_t(c.sqsize) + 1, 2, n);
  }
  reqs_.reset(new (std::nothrow) TcpRequest[n]);
  if (!reqs_) return false;
  try {
    cids_.assign(kCidWords, 0);
  } catch (const std::bad_alloc&) {
    reqs_.reset();
    return false;
  }
  nreqs_ = n;
  for (uint32_t i = nreqs_; i-- > 0;) {
    TcpRequest& r = reqs_[i];
    r.tq = this;
    r.qpair = this;
    r.ttag = uint16_t(i);
    r.next_free = free_;
    free_ = &r;
  }
  return true;
}

TcpQpair::~TcpQpair() {
  cancel_timers();
  if (fd_ >= 0) {
    if (registered_) reactor().del_fd(fd_);
    ::close(fd_);
  }
}

int TcpQpair::start() {
  int rc = reactor().add_fd(fd_, EPOLLIN, this);
  if (rc < 0) return rc;
  registered_ = true;
  ev_mask_ = EPOLLIN;
  if (const uint32_t ms = tt_.opts.handshake_timeout_ms) {
    hs_timer_ = reactor().add_timer(uint64_t(ms) * 1000000ull, [this] { on_handshake_timeout(); });
  }
  return 0;
}

void TcpQpair::on_fd_event(uint32_t events) {
  Busy busy(this);
  flush_deferred_ = false;  // we are here anyway: flush at settle
  if (events & EPOLLOUT) tx_blocked_ = false;
  if (rx_wants_input() && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    on_readable();  // read() reports what HUP/ERR mean
  } else if (events & (EPOLLHUP | EPOLLERR)) {
    int err = 0;
    socklen_t len = sizeof err;
    if (fd_ >= 0) getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    socket_error(err ? err : EPIPE);
  }
}

void TcpQpair::settle() {
  ++depth_;
  for (;;) {
    if (want_rx_) {
      want_rx_ = false;
      if (rx_ == RxState::AwaitRequest) rx_process();
      continue;
    }
    if (txq_head_ && fd_ >= 0 && !tx_blocked_ && !flush_deferred_ && !in_flush_) {
      // flush() returns with the queue empty, or blocked, or the socket
      // gone. Look again: what it wrote may have recycled requests that a
      // parser waiting for one (AwaitRequest) needs: want_rx_.
      flush();
      continue;
    }
    break;
  }
  update_events();
  check_finish();
  --depth_;
}

void TcpQpair::update_events() {
  if (fd_ < 0 || !registered_) return;
  uint32_t want = 0;
  if (rx_wants_input()) want |= EPOLLIN;
  if (tx_blocked_) want |= EPOLLOUT;
  if (want == ev_mask_) return;
  if (reactor().mod_fd(fd_, want, this) == 0) ev_mask_ = want;
}

void TcpQpair::log_once(const char* reason) {
  if (logged_) return;
  logged_ = true;
  fprintf(stderr, "nvmf-target: tcp %s: %s\n", peer.c_str(), reason);
}

// ---------------------------------------------------------------------------
// Receive: socket -> staging buffer (or request buffer) -> PDU parser.

void TcpQpair::on_readable() {
  for (int i = 0; i < kMaxReadsPerEvent && fd_ >= 0 && rx_wants_input(); i++) {
    if (rpos_ != rlen_) return;  // unparsed bytes: only while paused, never here
    uint8_t* dst;
    size_t want;
    const bool direct = direct_target(&dst, &want);
    if (!direct) {
      dst = rbuf_.get();
      want = kRecvBufSize;
    }
    ssize_t n = ::read(fd_, dst, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) socket_error(errno);
      return;
    }
    if (n == 0) {
      peer_closed();
      return;
    }
    if (direct) {
      if (pdu_.dd) pdu_.crc = crc32c(pdu_.crc, dst, size_t(n));
      pdu_.pos += uint32_t(n);
    } else {
      rpos_ = 0;
      rlen_ = size_t(n);
    }
    rx_process();
    if (size_t(n) < want) return;  // the socket is drained
  }
}

// Large data of the current PDU goes straight where it belongs; never more
// than the PDU still holds, so no byte of the next PDU lands there.
bool TcpQpair::direct_target(uint8_t** dst, size_t* len) const {
  if (rx_ != RxState::ReadData || !pdu_.dst || rpos_ != rlen_) return false;
  if (pdu_.pos < pdu_.dst_off || pdu_.pos >= pdu_.dst_off + pdu_.dst_len) return false;
  const uint32_t left = pdu_.dst_off + pdu_.dst_len - pdu_.pos;
  if (left < kDirectReadMin) return false;
  *dst = pdu_.dst + (pdu_.pos - pdu_.dst_off);
  *len = left;
  return true;
}

void TcpQpair::rx_process() {
  if (in_rx_) return;
  in_rx_ = true;
  while (rx_step()) {
  }
  in_rx_ = false;
  if (rpos_ == rlen_) rpos_ = rlen_ = 0;
}

// One step of the parser; false when it needs bytes it does not have, or
// must not go on.
bool TcpQpair::rx_step() {
  switch (rx_) {
    case RxState::AwaitIcReq:
    case RxState::AwaitPdu:
      if (!fill_hdr() || !check_common_header()) return false;
      rx_ = RxState::ReadHeader;
      return true;
    case RxState::ReadHeader:
      if (!fill_hdr()) return false;
      if (dispatch_header()) next_payload_part();
      return true;
    case RxState::AwaitRequest:
      if (!free_) return false;
      rx_ = RxState::ReadHeader;
      if (on_capsule_header()) next_payload_part();
      return true;
    case RxState::ReadPad:
      return rx_pad();
    case RxState::ReadData:
      return rx_data();
    case RxState::ReadDdgst:
      return rx_ddgst();
    case RxState::Stopped:
      return false;
  }
  return false;
}

bool TcpQpair::fill_hdr() {
  const size_t n = std::min<size_t>(hdr_need_ - hdr_have_, rlen_ - rpos_);
  std::memcpy(hdr_ + hdr_have_, rbuf_.get() + rpos_, n);
  hdr_have_ += uint32_t(n);
  rpos_ += n;
  return hdr_have_ == hdr_need_;
}

// Everything that bounds the PDU is checked here (tcp_parse.cc), before the
// rest of it is read or anything is set up for it.
bool TcpQpair::check_common_header() {
  CommonHeader ch;
  std::memcpy(&ch, hdr_, sizeof ch);
  tcp::RxContext ctx;
  ctx.expect_icreq = rx_ == RxState::AwaitIcReq;
  ctx.hdgst = hdgst_;
  ctx.ddgst = ddgst_;
  ctx.in_capsule_limit = in_capsule_limit();
  ctx.max_h2c_data = tt_.opts.io_unit;
  tcp::PduLayout layout;
  tcp::PduError e;
  if (!tcp::check_common_header(ch, ctx, &layout, &e)) return fail(e.fes, e.fei, e.reason);
  pdu_ = RxPdu{};
  pdu_.type = ch.type;
  pdu_.hd = layout.hd;
  pdu_.dd = layout.dd;
  pdu_.pad = layout.pad;
  pdu_.data_len = layout.data_len;
  hdr_need_ = ch.hlen + pdu_.hd;
  return true;
}

// Header complete: verify its digest and hand it to its type. True when the
// PDU's payload should be read next.
bool TcpQpair::dispatch_header() {
  const uint8_t hlen = hdr_[offsetof(CommonHeader, hlen)];
  if (pdu_.hd && get_le32(hdr_ + hlen) != crc32c_digest(hdr_, hlen)) {
    return fail(Fes::HeaderDigestError, 0, "header digest mismatch");
  }
  switch (PduType(pdu_.type)) {
    case PduType::IcReq:
      return on_icreq();
    case PduType::CapsuleCmd:
      return on_capsule_header();
    case PduType::H2CData:
      return on_h2c_header();
    case PduType::H2CTermReq:
      return on_term_req_header();
    default:
      return false;  // check_common_header lets no other type through
  }
}

bool TcpQpair::on_icreq() {
  IcReq req;
  std::memcpy(&req, hdr_, sizeof req);
  if (tcp::PduError e; !tcp::check_icreq(req, &e)) return fail(e.fes, e.fei, e.reason);
  // We grant exactly the digests the host asks for (Linux refuses anything
  // else); reserved DGST bits are ignored like any reserved field. MAXR2T
  // needs no check: we never have more than one R2T out per command.
  hdgst_ = req.dgst & tcp::kDgstHdr;
  ddgst_ = req.dgst & tcp::kDgstData;
  zero_copy_reads = !ddgst_;
  hpda_ = req.hpda;
  icresp_ = IcResp{};
  icresp_.ch = make_ch(PduType::IcResp, 0, sizeof(IcResp), 0, sizeof(IcResp));
  icresp_.pfv = tcp::kPfv10;
  icresp_.cpda = 0;  // we take H2C data at any dword offset; Linux requires 0
  icresp_.dgst = uint8_t((hdgst_ ? tcp::kDgstHdr : 0) | (ddgst_ ? tcp::kDgstData : 0));
  icresp_.maxh2cdata = tt_.opts.io_unit;
  icresp_pdu_.reset();
  icresp_pdu_.add(&icresp_, sizeof icresp_);
  enqueue(&icresp_pdu_);
  return true;
}

bool TcpQpair::on_capsule_header() {
  CapsuleCmdHdr h;
  std::memcpy(&h, hdr_, sizeof h);
  if (!reqs_ && !alloc_requests(h.sqe)) {
    log_once("out of memory for the queue's requests");
    rx_ = RxState::Stopped;
    qpair_disconnect(this, "out of memory");
    return false;
  }
  TcpRequest* r = alloc_request();
  if (!r) {
    // The host outran its queue depth (or responses are still being
    // written): wait for a request instead of failing the connection.
    rx_ = RxState::AwaitRequest;
    return false;
  }
  r->cmd = h.sqe;
  r->xfer = cmd_xfer_dir(r->cmd);
  r->state = ReqState::ReceivingCapsule;
  claim_cid(r);
  const Status s = prepare_data(r, pdu_.data_len);
  if (!s.ok()) r->fail(s, true);
  rx_req_ = r;
  if (r->in_capsule && !r->failed && r->length) {
    pdu_.dst = r->buf;
    pdu_.dst_off = uint32_t(r->cmd.dptr.sgl1.addr);
    pdu_.dst_len = r->length;
  }
  return true;
}

bool TcpQpair::on_h2c_header() {
  DataHdr h;
  std::memcpy(&h, hdr_, sizeof h);
  TcpRequest* r = h.ttag < nreqs_ ? &reqs_[h.ttag] : nullptr;
  // An R2T still in our send queue cannot have been answered yet.
  if (!r || r->state != ReqState::AwaitingH2C || r->r2t_pdu.queued) {
    return fail(Fes::InvalidHeaderField, offsetof(DataHdr, ttag), "H2CData for no outstanding R2T");
  }
  if (tcp::PduError e; !tcp::check_h2c_header(h, pdu_.data_len, r->cmd.cid, r->h2c_off, r->r2t_end, &e)) {
    return fail(e.fes, e.fei, e.reason);
  }
  rx_req_ = r;
  pdu_.dst = r->buf + h.datao;
  pdu_.dst_off = 0;
  pdu_.dst_len = h.datal;
  return true;
}

bool TcpQpair::on_term_req_header() {
  TermReqHdr h;
  std::memcpy(&h, hdr_, sizeof h);
  char why[96];
  snprintf(why, sizeof why, "host terminated the connection (H2CTermReq FES %u, FEI %u)",
           unsigned(h.fes), unsigned(h.fei_value()));
  log_once(why);
  // The host closes the connection after a TermReq: no reply, read no more.
  rx_ = RxState::Stopped;
  qpair_disconnect(this, "host sent H2CTermReq");
  return false;
}

bool TcpQpair::rx_pad() {
  const size_t n = std::min<size_t>(pdu_.pad, rlen_ - rpos_);
  if (n == 0) return false;
  rpos_ += n;
  pdu_.pad -= uint32_t(n);
  if (pdu_.pad == 0) next_payload_part();
  return true;
}

bool TcpQpair::rx_data() {
  const uint32_t left = pdu_.data_len - pdu_.pos;
  if (left == 0) {
    next_payload_part();
    return true;
  }
  const size_t n = std::min<size_t>(left, rlen_ - rpos_);
  if (n == 0) return false;
  take_data(rbuf_.get() + rpos_, uint32_t(n));
  rpos_ += n;
  return true;
}

bool TcpQpair::rx_ddgst() {
  const size_t n = std::min<size_t>(pdu_.dd - pdu_.digest_have, rlen_ - rpos_);
  if (n == 0) return false;
  std::memcpy(pdu_.digest + pdu_.digest_have, rbuf_.get() + rpos_, n);
  pdu_.digest_have += uint32_t(n);
  rpos_ += n;
  if (pdu_.digest_have == pdu_.dd) {
    pdu_.digest_ok = get_le32(pdu_.digest) == ~pdu_.crc;
    next_payload_part();
  }
  return true;
}

// Data bytes [pos, pos + n): the overlap with the destination range is
// copied, the rest discarded; all of it is digested.
void TcpQpair::take_data(const uint8_t* src, uint32_t n) {
  if (pdu_.dd) pdu_.crc = crc32c(pdu_.crc, src, n);
  if (pdu_.dst) {
    const uint64_t lo = std::max<uint64_t>(pdu_.pos, pdu_.dst_off);
    const uint64_t hi = std::min<uint64_t>(uint64_t(pdu_.pos) + n, uint64_t(pdu_.dst_off) + pdu_.dst_len);
    if (lo < hi) std::memcpy(pdu_.dst + (lo - pdu_.dst_off), src + (lo - pdu_.pos), hi - lo);
  }
  pdu_.pos += n;
}

void TcpQpair::next_payload_part() {
  if (pdu_.pad) {
    rx_ = RxState::ReadPad;
  } else if (pdu_.pos < pdu_.data_len) {
    rx_ = RxState::ReadData;
  } else if (pdu_.digest_have < pdu_.dd) {
    rx_ = RxState::ReadDdgst;
  } else {
    end_pdu();
  }
}

void TcpQpair::end_pdu() {
  const auto type = PduType(pdu_.type);
  // Ready for the next PDU first: what follows may stop the parser.
  rx_ = RxState::AwaitPdu;
  hdr_have_ = 0;
  hdr_need_ = sizeof(CommonHeader);
  if (type == PduType::CapsuleCmd) capsule_done();
  if (type == PduType::H2CData) h2c_done();
}

void TcpQpair::capsule_done() {
  TcpRequest* r = rx_req_;
  rx_req_ = nullptr;
  if (!r) return;
  // A data digest error leaves the framing intact: the command fails with a
  // retryable status, the connection lives on.
  if (!pdu_.digest_ok) r->fail(GenericSc::TransientTransportError, false);
  const bool by_r2t = r->xfer == XferDir::HostToCtrl && !r->in_capsule && r->length > 0;
  r->state = (r->failed || !by_r2t) ? ReqState::Ready : ReqState::NeedData;
  req_process(r);
}

void TcpQpair::h2c_done() {
  TcpRequest* r = rx_req_;
  rx_req_ = nullptr;
  if (!r) return;
  r->h2c_off += pdu_.data_len;
  if (!pdu_.digest_ok) r->fail(GenericSc::TransientTransportError, false);
  req_process(r);
}

// ---------------------------------------------------------------------------
// Requests.

TcpRequest* TcpQpair::alloc_request() {
  TcpRequest* r = free_;
  if (!r) return nullptr;
  free_ = r->next_free;
  r->next_free = nullptr;
  r->qpair = this;
  in_use_++;
  return r;
}

void TcpQpair::recycle(TcpRequest* r) {
  if (r->owns_cid) cids_[r->cmd.cid / 64] &= ~(1ull << (r->cmd.cid % 64));
  r->reset();
  r->clear_transport_state();
  r->qpair = this;
  r->state = ReqState::Free;
  r->next_free = free_;
  free_ = r;
  in_use_--;
  if (rx_ == RxState::AwaitRequest) want_rx_ = true;
}

void TcpQpair::claim_cid(TcpRequest* r) {
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

// Length and location of the command's data, from its SGL; gives the request
// its buffer. A non-success status fails the command (its capsule data is
// still consumed and discarded).
Status TcpQpair::prepare_data(TcpRequest* r, uint32_t capsule_data) {
  r->length = 0;
  tcp::SglPlacement at;
  const Status s = tcp::decode_command_sgl(r->cmd, r->xfer, capsule_data, in_capsule_limit(),
                                           tt_.opts.max_data_transfer, &at);
  // In-capsule data of a failed command is still consumed (and discarded).
  r->in_capsule = at.in_capsule;
  if (!s.ok()) return s;
  if (at.length && !r->use_own_buffer(at.length, tt_.buffer_cap)) return GenericSc::InternalError;
  r->length = at.length;
  return Status{};
}

// Moves a request forward until it waits for something (bytes, the NVMe
// layer, the socket).
void TcpQpair::req_process(TcpRequest* r) {
  for (;;) {
    const ReqState prev = r->state;
    switch (r->state) {
      case ReqState::NeedData:
        send_r2t(r);
        r->state = ReqState::AwaitingH2C;
        break;
      case ReqState::AwaitingH2C:
        if (r->h2c_off < r->r2t_end) return;
        // A failed transfer ends at the R2T boundary: no more R2Ts for it.
        r->state = (r->failed || r->h2c_off == r->length) ? ReqState::Ready : ReqState::NeedData;
        break;
      case ReqState::Ready:
        r->state = ReqState::Executing;
        if (r->failed) {
          request_fail_early(r, r->status, r->fail_dnr);
        } else {
          request_exec(r);
        }
        return;  // it may be recycled already
      case ReqState::Free:
      case ReqState::ReceivingCapsule:
      case ReqState::Executing:
      case ReqState::Sending:
        return;
    }
    if (r->state == prev) return;
  }
}

// Disconnect: requests the NVMe layer never saw have nobody to answer to.
void TcpQpair::release_unstarted() {
  for (uint32_t i = 0; i < nreqs_; i++) {
    TcpRequest& r = reqs_[i];
    switch (r.state) {
      case ReqState::ReceivingCapsule:
      case ReqState::NeedData:
      case ReqState::AwaitingH2C:
      case ReqState::Ready:
        recycle(&r);
        break;
      default:
        break;
    }
  }
}

void TcpQpair::complete(TcpRequest* r) {
  const bool outermost = depth_ == 0;
  Busy busy(this);
  if (r->state != ReqState::Executing) {
    // Completing twice would queue its PDUs twice and corrupt the queue.
    fprintf(stderr, "nvmf-target: tcp %s: completion of a command not executing (cid %u)\n",
            peer.c_str(), unsigned(r->cmd.cid));
    return;
  }
  r->state = ReqState::Sending;
  if (fd_ < 0) {
    recycle(r);  // the socket is gone: nobody to tell
    return;
  }
  bool need_resp = true;
  if (r->xfer == XferDir::CtrlToHost && r->ok()) need_resp = !queue_c2h(r);
  if (need_resp) queue_resp(r);
  if (outermost && !flush_deferred_) flush_deferred_ = tg_.defer_flush(this);
}

void TcpQpair::flush_now() {
  Busy busy(this);
  flush_deferred_ = false;
}

// ---------------------------------------------------------------------------
// Send.

void TcpQpair::enqueue(TxPdu* p) {
  p->next = nullptr;
  p->cur = 0;
  p->queued = true;
  if (txq_tail_) {
    txq_tail_->next = p;
  } else {
    txq_head_ = p;
  }
  txq_tail_ = p;
}

void TcpQpair::send_r2t(TcpRequest* r) {
  const uint32_t off = r->h2c_off;
  const uint32_t len = std::min(r->length - off, tt_.opts.io_unit);
  const uint32_t hd = hdgst_ ? kDigestLen : 0;
  r->r2t_end = off + len;
  R2THdr h{};
  h.ch = make_ch(PduType::R2T, hdgst_ ? tcp::kFlagHdgst : 0, sizeof h, 0, sizeof h + hd);
  h.cccid = r->cmd.cid;
  h.ttag = r->ttag;
  h.r2to = off;
  h.r2tl = len;
  std::memcpy(r->r2t_hdr, &h, sizeof h);
  if (hd) put_le32(r->r2t_hdr + sizeof h, crc32c_digest(r->r2t_hdr, sizeof h));
  r->r2t_pdu.reset();
  r->r2t_pdu.add(r->r2t_hdr, sizeof h + hd);
  enqueue(&r->r2t_pdu);
}

// Read data from req->iov, as one C2HData PDU. True when it carries the
// SUCCESS flag, i.e. no CapsuleResp follows: only allowed once the host
// disabled SQ flow control (the response would carry SQHD), and only when
// the completion has nothing but a zero status to say.
bool TcpQpair::queue_c2h(TcpRequest* r) {
  iovec data[Request::kMaxIov];
  int cnt = 0;
  uint32_t total = 0;
  for (int i = 0; i < r->iovcnt && i < Request::kMaxIov && total < r->length; i++) {
    const uint32_t n = uint32_t(std::min<size_t>(r->iov[i].iov_len, r->length - total));
    if (n == 0) continue;
    data[cnt++] = iovec{r->iov[i].iov_base, n};
    total += n;
  }
  if (total == 0) return false;
  const bool success = !sq_flow_control && r->cpl.dw0 == 0 && r->cpl.dw1 == 0;
  const uint32_t pdo = tcp::data_offset(sizeof(DataHdr), hdgst_, hpda_);
  const uint32_t dd = ddgst_ ? kDigestLen : 0;
  DataHdr h{};
  const uint8_t flags = uint8_t(tcp::kFlagDataLast | (success ? tcp::kFlagDataSuccess : 0) |
                                (hdgst_ ? tcp::kFlagHdgst : 0) | (ddgst_ ? tcp::kFlagDdgst : 0));
  h.ch = make_ch(PduType::C2HData, flags, sizeof h, uint8_t(pdo), pdo + total + dd);
  h.cccid = r->cmd.cid;
  h.datao = 0;
  h.datal = total;
  std::memset(r->c2h_hdr, 0, pdo);  // padding up to pdo goes out as zeros
  std::memcpy(r->c2h_hdr, &h, sizeof h);
  if (hdgst_) put_le32(r->c2h_hdr + sizeof h, crc32c_digest(r->c2h_hdr, sizeof h));
  TxPdu& p = r->c2h_pdu;
  p.reset();
  p.add(r->c2h_hdr, pdo);
  for (int i = 0; i < cnt; i++) p.add(data[i].iov_base, data[i].iov_len);
  if (dd) {
    put_le32(r->ddgst, crc32c_digest_iov(data, size_t(cnt)));
    p.add(r->ddgst, dd);
  }
  p.done_req = success ? r : nullptr;
  enqueue(&p);
  return success;
}

void TcpQpair::queue_resp(TcpRequest* r) {
  const uint32_t hd = hdgst_ ? kDigestLen : 0;
  CapsuleRespHdr h{};
  h.ch = make_ch(PduType::CapsuleResp, hdgst_ ? tcp::kFlagHdgst : 0, sizeof h, 0, sizeof h + hd);
  h.cqe = r->cpl;
  std::memcpy(r->resp_hdr, &h, sizeof h);
  if (hd) put_le32(r->resp_hdr + sizeof h, crc32c_digest(r->resp_hdr, sizeof h));
  TxPdu& p = r->resp_pdu;
  p.reset();
  p.add(r->resp_hdr, sizeof h + hd);
  p.done_req = r;
  enqueue(&p);
}

// Echoes the offending header (as much as we have of it) so the host can
// tell what we objected to.
void TcpQpair::queue_term_req(Fes fes, uint32_t fei) {
  if (term_pdu_.queued) return;
  const uint32_t n = std::min<uint32_t>(hdr_have_, tcp::kTermReqMaxData);
  TermReqHdr h{};
  h.ch = make_ch(PduType::C2HTermReq, 0, sizeof h, 0, uint32_t(sizeof h) + n);
  h.fes = uint16_t(fes);
  h.set_fei(fei);
  std::memcpy(term_buf_, &h, sizeof h);
  std::memcpy(term_buf_ + sizeof h, hdr_, n);
  term_pdu_.reset();
  term_pdu_.add(term_buf_, sizeof h + n);
  enqueue(&term_pdu_);
}

void TcpQpair::flush() {
  in_flush_ = true;
  while (txq_head_ && fd_ >= 0 && !tx_blocked_) {
    msghdr mh{};
    mh.msg_iov = tg_.iov_scratch();
    mh.msg_iovlen = size_t(gather(mh.msg_iov, tg_.iov_scratch_len()));
    ssize_t n = ::sendmsg(fd_, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        tx_blocked_ = true;  // settle() asks for EPOLLOUT
      } else {
        socket_error(errno);
      }
      break;
    }
    advance(size_t(n));
  }
  in_flush_ = false;
}

int TcpQpair::gather(iovec* iov, int max) const {
  int cnt = 0;
  for (const TxPdu* p = txq_head_; p && cnt < max; p = p->next) {
    for (int i = p->cur; i < p->iovcnt && cnt < max; i++) iov[cnt++] = p->iov[i];
  }
  return cnt;
}

// `n` bytes went out: retire fully written PDUs, trim the first partial one.
void TcpQpair::advance(size_t n) {
  while (txq_head_) {
    TxPdu* p = txq_head_;
    while (p->cur < p->iovcnt && n) {
      iovec& v = p->iov[p->cur];
      if (n >= v.iov_len) {
        n -= v.iov_len;
        p->cur++;
      } else {
        v.iov_base = static_cast<uint8_t*>(v.iov_base) + n;
        v.iov_len -= n;
        n = 0;
      }
    }
    if (p->cur < p->iovcnt) return;
    txq_head_ = p->next;
    if (!txq_head_) txq_tail_ = nullptr;
    p->next = nullptr;
    p->queued = false;
    if (p->done_req) recycle(p->done_req);
  }
}

// The socket is gone: nothing queued will be written.
void TcpQpair::drop_sends() {
  for (TxPdu* p = txq_head_; p;) {
    TxPdu* next = p->next;
    p->next = nullptr;
    p->queued = false;
    p = next;
  }
  txq_head_ = txq_tail_ = nullptr;
  for (uint32_t i = 0; i < nreqs_; i++) {
    if (reqs_[i].state == ReqState::Sending) recycle(&reqs_[i]);
  }
}

// ---------------------------------------------------------------------------
// Errors and teardown.

// Fatal protocol error: tell the host why (C2HTermReq), then disconnect.
bool TcpQpair::fail(Fes fes, uint32_t fei, const char* reason) {
  log_once(reason);
  if (!closing_ && fd_ >= 0) queue_term_req(fes, fei);
  rx_ = RxState::Stopped;
  qpair_disconnect(this, reason);
  return false;
}

void TcpQpair::socket_error(int err) {
  // Resets and broken pipes are how hosts usually leave; anything else is
  // worth a line.
  if (err != ECONNRESET && err != EPIPE) {
    std::string why = "socket error: " + errno_str(err);
    log_once(why.c_str());
  }
  close_socket(false);
  qpair_disconnect(this, err == ECONNRESET ? "connection reset by host" : "connection lost");
}

void TcpQpair::peer_closed() {
  close_socket(false);
  qpair_disconnect(this, "connection closed by host");
}

// graceful: everything queued was written; FIN after it, and empty our
// receive queue first so close() does not turn into a reset that could
// overtake that data.
void TcpQpair::close_socket(bool graceful) {
  if (fd_ < 0) return;
  if (registered_) reactor().del_fd(fd_);
  registered_ = false;
  if (graceful) {
    ::shutdown(fd_, SHUT_WR);
    for (int i = 0; i < 16 && ::read(fd_, rbuf_.get(), kRecvBufSize) > 0; i++) {
    }
  }
  ::close(fd_);
  fd_ = -1;
  ev_mask_ = 0;
  tx_blocked_ = false;
  rx_ = RxState::Stopped;
  rx_req_ = nullptr;
  rpos_ = rlen_ = 0;
  drop_sends();
}

void TcpQpair::disconnect(const char* reason) {
  (void)reason;  // the generic layer reports it
  Busy busy(this);
  if (closing_) return;
  closing_ = true;
  if (state() != QpairState::Disconnecting && state() != QpairState::Destroyed) {
    set_state(QpairState::Disconnecting);
  }
  rx_ = RxState::Stopped;
  rx_req_ = nullptr;
  release_unstarted();
  if (hs_timer_) {
    reactor().cancel_timer(hs_timer_);
    hs_timer_ = 0;
  }
  if (fd_ >= 0) {
    const uint64_t ns = uint64_t(tt_.target.options().disconnect_timeout_ms) * 1000000ull;
    timer_ = reactor().add_timer(ns, [this] { on_disconnect_timeout(); });
  }
}

// Safety net: give up on the socket, never on memory a bdev still owns
// (executing commands keep the qpair alive until they complete).
void TcpQpair::on_disconnect_timeout() {
  Busy busy(this);
  timer_ = 0;
  if (finished_) return;
  log_once("disconnect timed out; closing with data unsent");
  close_socket(false);
}

// A connection that has not completed ICReq and Connect in time (silent,
// stopped mid-PDU, or slow on purpose) is closed like any failed one.
void TcpQpair::on_handshake_timeout() {
  Busy busy(this);
  hs_timer_ = 0;
  if (closing_ || state() != QpairState::Connecting) return;
  char why[96];
  snprintf(why, sizeof why, "no %s within %u ms; closing", icresp_.ch.plen == 0 ? "complete ICReq" : "Connect",
           unsigned(tt_.opts.handshake_timeout_ms));
  log_once(why);
  rx_ = RxState::Stopped;
  qpair_disconnect(this, "handshake timeout");
}

void TcpQpair::cancel_timers() {
  if (timer_) reactor().cancel_timer(timer_);
  if (hs_timer_) reactor().cancel_timer(hs_timer_);
  timer_ = hs_timer_ = 0;
}

void TcpQpair::check_finish() {
  if (!closing_ || finished_ || in_use_ != 0) return;
  if (fd_ >= 0 && txq_head_) return;
  finished_ = true;
  cancel_timers();
  close_socket(true);
  tg_.schedule_reap(this);
}

void TcpQpair::force_close() {
  cancel_timers();
  if (in_use_) {
    fprintf(stderr, "nvmf-target: tcp %s: freed with %u command(s) in flight\n", peer.c_str(),
            unsigned(in_use_));
  }
  closing_ = finished_ = true;
  close_socket(false);
}

// ---------------------------------------------------------------------------
// Listeners (reactor 0).

class TcpListener final : public FdHandler {
 public:
  TcpListener(TcpTransport& t, Reactor& r, std::string name, int fd)
      : t_(t), r_(r), name_(std::move(name)), fd_(fd) {}
  ~TcpListener() override {
    if (fd_ >= 0) ::close(fd_);  // closing drops it from epoll too
  }
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  void on_fd_event(uint32_t events) override;
  void close_now();

 private:
  void hand_off(int fd, const sockaddr_storage& ss);
  void pause();

  TcpTransport& t_;
  Reactor& r_;
  const std::string name_;
  int fd_;
  uint64_t resume_timer_ = 0;
};

void adopt_connection(TcpTransport& t, const std::shared_ptr<PollGroup>& g, int fd,
                      const std::string& peer, const std::string& local) {
  if (g->closed || g->draining()) {
    ::close(fd);
    return;
  }
  TcpGroup& tg = tcp_group_for(*g);
  auto q = std::make_unique<TcpQpair>(t, g, tg, fd, peer, local);
  if (int rc = q->start(); rc < 0) {
    fprintf(stderr, "nvmf-target: tcp %s: cannot poll the connection: %s\n", peer.c_str(),
            errno_str(-rc).c_str());
    return;  // ~TcpQpair closes the socket
  }
  TcpQpair* raw = q.get();
  tg.add(std::move(q));
  qpair_accepted(raw);
}

void TcpListener::on_fd_event(uint32_t) {
  for (int i = 0; i < kAcceptBatch && fd_ >= 0; i++) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      hand_off(fd, ss);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    fprintf(stderr, "nvmf-target: %s: accept: %s\n", name_.c_str(), errno_str(errno).c_str());
    // Out of descriptors or memory: the pending connection stays ready, so a
    // level-triggered listener would spin. Look again a little later.
    pause();
    return;
  }
}

void TcpListener::hand_off(int fd, const sockaddr_storage& ss) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string peer = sockaddr_str(ss);
  std::string local = local_str(fd);
  std::shared_ptr<PollGroup> g = t_.target.pick_group();
  TcpTransport* t = &t_;
  // The message holds the group; a refused post runs nothing, so the socket
  // is still ours to close.
  if (!g || !g->reactor().post([t, g, fd, peer, local] { adopt_connection(*t, g, fd, peer, local); })) {
    ::close(fd);
  }
}

void TcpListener::pause() {
  if (resume_timer_) return;
  r_.mod_fd(fd_, 0, this);
  resume_timer_ = r_.add_timer(kAcceptRetryNs, [this] {
    resume_timer_ = 0;
    if (fd_ >= 0) r_.mod_fd(fd_, EPOLLIN, this);
  });
}

void TcpListener::close_now() {
  if (resume_timer_) r_.cancel_timer(resume_timer_);
  resume_timer_ = 0;
  if (fd_ < 0) return;
  r_.del_fd(fd_);
  ::close(fd_);
  fd_ = -1;
}

TcpTransport::TcpTransport(Target& target, const TransportOptions& o)
    : Transport(&kTcpTransportOps, target, o),
      request_count(std::min(std::max(o.max_queue_depth, o.max_admin_queue_depth), kMaxRequests)),
      buffer_cap(std::max({o.max_data_transfer, o.in_capsule_data, kAdminInCapsule})) {}

TcpTransport::~TcpTransport() = default;  // listeners left open close their sockets

// Runs fn(reactor) on reactor 0, where listeners live; fn(nullptr) on this
// thread once reactor 0 runs no more (nothing else can touch them then).
template <class Fn>
void on_acceptor(TcpTransport& t, Fn&& fn) {
  std::shared_ptr<PollGroup> g0 = t.target.group(0);
  if (!g0) {
    fn(static_cast<Reactor*>(nullptr));
    return;
  }
  Reactor& r = g0->reactor();
  if (r.on_thread()) {
    fn(&r);
    return;
  }
  if (!r.call([&] { fn(&r); })) fn(static_cast<Reactor*>(nullptr));
}

int bind_listen_socket(const ListenAddress& a, const std::string& name, int* out, std::string* err) {
  std::string host = a.address;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = a.ipv6 ? AF_INET6 : AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(a.port);
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    set_err(err, name + ": not a valid " + (a.ipv6 ? "IPv6" : "IPv4") + " address");
    return -EINVAL;
  }
  const char* step = "socket";
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int e = 0;
  if (fd < 0) {
    e = errno;
  } else {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // An IPv6 wildcard must not grab the IPv4 port: both may be listened on.
    if (a.ipv6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    step = "bind";
    if (::bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
      e = errno;
    } else if (step = "listen"; ::listen(fd, kListenBacklog) < 0) {
      e = errno;
    }
  }
  freeaddrinfo(res);
  if (e) {
    if (fd >= 0) ::close(fd);
    set_err(err, name + ": " + step + ": " + errno_str(e));
    return -e;
  }
  *out = fd;
  return 0;
}

int open_listener(TcpTransport& t, Reactor& r, const ListenAddress& a, std::string* err) {
  const std::string key = a.str();
  const std::string name = "listener " + key;
  if (t.listeners.count(key)) {
    set_err(err, name + ": already listening");
    return -EADDRINUSE;
  }
  int fd = -1;
  if (int rc = bind_listen_socket(a, name, &fd, err); rc < 0) return rc;
  auto l = std::make_unique<TcpListener>(t, r, name, fd);
  if (int rc = r.add_fd(fd, EPOLLIN, l.get()); rc < 0) {
    set_err(err, name + ": epoll: " + errno_str(-rc));
    return rc;
  }
  t.listeners.emplace(key, std::move(l));
  return 0;
}

// ---------------------------------------------------------------------------
// The ops table.

int tcp_create(Target& target, const TransportOptions& opts, std::unique_ptr<Transport>* out,
               std::string* err) {
  if (opts.io_unit < tcp::kMinMaxH2cData || opts.io_unit % 4) {
    // It is our MAXH2CDATA; hosts reject anything else.
    set_err(err, "tcp transport: io_unit must be at least 4096 and a multiple of 4");
    return -EINVAL;
  }
  if (opts.max_queue_depth < 2 || opts.max_queue_depth > kMaxRequests || opts.max_admin_queue_depth < 2 ||
      opts.max_admin_queue_depth > kMaxRequests) {
    set_err(err, "tcp transport: queue depths must be between 2 and 65536");
    return -EINVAL;
  }
  if (opts.max_data_transfer == 0) {
    set_err(err, "tcp transport: max_data_transfer must not be 0");
    return -EINVAL;
  }
  *out = std::make_unique<TcpTransport>(target, opts);
  return 0;
}

int tcp_listen(Transport& t, const ListenAddress& addr, std::string* err) {
  auto& tt = static_cast<TcpTransport&>(t);
  int rc = 0;
  on_acceptor(tt, [&](Reactor* r) {
    if (!r) {
      set_err(err, "listener " + addr.str() + ": the target is shutting down");
      rc = -ESHUTDOWN;
      return;
    }
    rc = open_listener(tt, *r, addr, err);
  });
  return rc;
}

void tcp_stop_listen(Transport& t, const ListenAddress& addr) {
  auto& tt = static_cast<TcpTransport&>(t);
  on_acceptor(tt, [&](Reactor* r) {
    auto it = tt.listeners.find(addr.str());
    if (it == tt.listeners.end()) return;
    if (r) it->second->close_now();
    tt.listeners.erase(it);
  });
}

int tcp_poll_group_create(Transport&, PollGroup& g, std::string*) {
  tcp_group_for(g);
  return 0;
}

void tcp_poll_group_disconnect_all(Transport&, PollGroup& g, void (*done)(void*), void* arg) {
  g.closed = true;  // hand-offs still in flight close their socket
  TcpGroup* tg = find_tcp_group(g);
  if (!tg || tg->empty()) {
    done(arg);
    return;
  }
  tg->disconnect_all(done, arg);
}

void tcp_poll_group_destroy(Transport&, PollGroup& g) {
  auto it = g.tgroups.find(&kTcpTransportOps);
  if (it == g.tgroups.end()) return;
  static_cast<TcpGroup*>(it->second.get())->destroy_leftovers();
  g.tgroups.erase(it);
}

void tcp_req_complete(Request* req) {
  auto* r = static_cast<TcpRequest*>(req);
  r->tq->complete(r);
}

void tcp_qpair_disconnect(Qpair* q, const char* reason) {
  static_cast<TcpQpair*>(q)->disconnect(reason);
}

void tcp_destroy(Transport& t) {
  auto& tt = static_cast<TcpTransport&>(t);
  on_acceptor(tt, [&](Reactor* r) {
    if (r) {
      for (auto& [key, l] : tt.listeners) l->close_now();
    }
    tt.listeners.clear();
  });
}

}  // namespace

const TransportOps kTcpTransportOps = {
    .name = "tcp",
    .trtype = kTrtypeTcp,
    .sgls = kSglsTransportData,
    .msdbd = 1,
    .create = tcp_create,
    .listen = tcp_listen,
    .stop_listen = tcp_stop_listen,
    .poll_group_create = tcp_poll_group_create,
    .poll_group_disconnect_all = tcp_poll_group_disconnect_all,
    .poll_group_destroy = tcp_poll_group_destroy,
    .req_complete = tcp_req_complete,
    .qpair_disconnect = tcp_qpair_disconnect,
    .destroy = tcp_destroy,
};

}  // namespace nvmf
