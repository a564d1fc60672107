// TcpQueue: connection set-up, command submission, the send path and
// completion. The receive parser is in tcp_queue_rx.cc.
#include "host/tcp_queue.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "host/clock.h"
#include "nvme/crc32c.h"

namespace nvmf::host {

namespace {

int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  return 0;
}

// PSDT = SGL for data, MPTR contiguous: what every fabrics host sends.
constexpr uint8_t kFlagsSgl = uint8_t(kPsdtSglMptrContig << kPsdtShift);

}  // namespace

TcpQueue::TcpQueue(const HostQueueConfig& cfg, HostQueueListener* listener)
    : cfg_(cfg),
      listener_(listener),
      cids_(cfg.depth ? cfg.depth : 1),
      slots_(cids_.depth()),
      ring_(size_t(cids_.depth()) * 2 + 1),
      staged_(new Staged[kMaxStaged]),
      rx_buf_(new uint8_t[kRxBufLen]) {
  deferred_.reserve(cids_.depth());
  std::memset(hdr_, 0, sizeof hdr_);
}

TcpQueue::~TcpQueue() {
  if (fd_ >= 0) ::close(fd_);
}

int TcpQueue::connect(const sockaddr* addr, socklen_t len) {
  if (state_ != State::Idle) return -EALREADY;
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return -errno;
  // Capsules are small and latency bound: never wait for Nagle.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc = ::connect(fd, addr, len);
  if (rc < 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  fd_ = fd;
  if (rc == 0) {
    start_ic();
  } else {
    state_ = State::Connecting;
    set_want_write(true);  // writability announces the connect result
  }
  return 0;
}

int TcpQueue::adopt(int fd) {
  if (state_ != State::Idle) return -EALREADY;
  int fl = set_nonblock(fd);
  if (fl < 0) return fl;
  fd_ = fd;
  start_ic();
  return 0;
}

void TcpQueue::start_ic() {
  state_ = State::IcWait;
  tcp::IcReq r{};
  r.ch.type = uint8_t(tcp::PduType::IcReq);
  r.ch.hlen = sizeof(tcp::IcReq);
  r.ch.pdo = 0;
  r.ch.plen = sizeof(tcp::IcReq);
  r.pfv = tcp::kPfv10;
  r.hpda = 0;    // no alignment needed: C2H data is copied out of a staging buffer
  r.maxr2t = 0;  // 0's based: one R2T outstanding per command
  r.dgst = uint8_t((cfg_.hdgst ? tcp::kDgstHdr : 0) | (cfg_.ddgst ? tcp::kDgstData : 0));
  Staged& s = staged_[nstaged_++];
  std::memcpy(s.hdr, &r, sizeof r);
  s.hdr_len = sizeof r;
  s.data = nullptr;
  s.data_len = 0;
  s.has_ddgst = false;
  s.tag = kNoTag;
  flush(true);
}

void TcpQueue::finish_connect(uint32_t events) {
  if (events == 0) {
    // Busy polling: ask the socket whether the connect finished.
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, 0) <= 0) return;
  } else if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    return;
  }
  int soerr = 0;
  socklen_t l = sizeof soerr;
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0) soerr = errno;
  if (soerr != 0) {
    fail(soerr, std::string("cannot connect to ") + cfg_.label + ": " + strerror(soerr));
    return;
  }
  start_ic();
}

int TcpQueue::poll(uint32_t events) {
  if (state_ == State::Failed || state_ == State::Idle || fd_ < 0) return 0;
  guard_++;
  int work = 0;
  if (state_ == State::Connecting) {
    State before = state_;
    finish_connect(events);
    if (state_ != before) work++;
  } else if (tx_error_ != 0) {
    fail(tx_error_, cfg_.label + ": send failed: " + strerror(tx_error_));
    work++;
  } else {
    if (events == 0 || (events & EPOLLOUT)) work += flush(true);
    if (events == 0 || (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) work += read_socket();
    // Callbacks may have queued commands, and written PDUs may release
    // held completions; settle both before returning.
    for (int i = 0; i < 8 && state_ != State::Failed; i++) {
      int w = flush(true);
      bool had = !deferred_.empty();
      run_deferred();
      work += w;
      if (!had && w == 0) break;
    }
  }
  guard_--;
  return work;
}

int TcpQueue::submit(const HostCmd& c) {
  if (state_ != State::Ready) return -ENOTCONN;
  if (c.fn == nullptr) return -EINVAL;
  XferDir dir = c.len == 0 ? XferDir::None : c.dir;
  if (c.len != 0 && (c.data == nullptr || dir == XferDir::None)) return -EINVAL;
  if (ring_count_ >= ring_.size()) return -EAGAIN;  // cannot happen: ring holds 2x depth
  uint16_t tag, cid;
  if (!cids_.get(&tag, &cid)) return -EAGAIN;

  Slot& s = slots_[tag];
  s = Slot{};
  s.busy = true;
  s.cid = cid;
  s.cmd = c;
  s.cmd.dir = dir;
  s.cmd.sqe.cid = cid;
  s.submit_ns = mono_ns();
  s.incapsule = dir == XferDir::H2C && (c.force_incapsule || c.len <= cfg_.max_incapsule);
  if (!c.keep_dptr) {
    SqEntry& e = s.cmd.sqe;
    e.flags = uint8_t((e.flags & ~(0x3u << kPsdtShift)) | kFlagsSgl);
    e.mptr = 0;
    SglDescriptor& g = e.dptr.sgl1;
    g = SglDescriptor{};
    g.addr = 0;  // in-capsule: offset 0 into the capsule data (ICDOFF 0)
    g.length = c.len;
    if (s.incapsule) {
      g.set_id(SglType::DataBlock, SglSubtype::Offset);
    } else {
      g.set_id(SglType::TransportDataBlock, SglSubtype::TransportSpecific);
    }
  }
  s.capsule_queued = true;
  ring_[(ring_head_ + ring_count_) % ring_.size()] = TxItem{tag, cid, false};
  ring_count_++;
  if (guard_ == 0) flush(false);
  return 0;
}

void TcpQueue::hold_sends(bool on) {
  if (on) {
    guard_++;
  } else if (guard_ > 0 && --guard_ == 0) {
    flush(false);  // a send error is reported by the next poll()
  }
}

uint64_t TcpQueue::oldest_submit_ns() const {
  uint64_t oldest = 0;
  for (const Slot& s : slots_) {
    if (s.busy && (oldest == 0 || s.submit_ns < oldest)) oldest = s.submit_ns;
  }
  return oldest;
}

// ---------------------------------------------------------------------------
// Send path.

void TcpQueue::set_want_write(bool on) {
  if (want_write_ == on) return;
  want_write_ = on;
  if (listener_) listener_->on_queue_interest(*this);
}

bool TcpQueue::stage_capsule(Slot& s, uint16_t tag, Staged& out) {
  const uint32_t hd = hdgst_ ? tcp::kDigestLen : 0;
  const uint32_t icd = s.incapsule ? s.cmd.len : 0;
  const uint32_t hlen = sizeof(tcp::CapsuleCmdHdr);
  const uint32_t pdo = icd ? tcp::data_offset(uint8_t(hlen), hdgst_, cpda_) : 0;
  tcp::CapsuleCmdHdr h{};
  h.ch.type = uint8_t(tcp::PduType::CapsuleCmd);
  h.ch.flags = uint8_t((hdgst_ ? tcp::kFlagHdgst : 0) | (icd && ddgst_ ? tcp::kFlagDdgst : 0));
  h.ch.hlen = uint8_t(hlen);
  h.ch.pdo = uint8_t(pdo);
  h.ch.plen = icd ? pdo + icd + (ddgst_ ? tcp::kDigestLen : 0) : hlen + hd;
  h.sqe = s.cmd.sqe;
  std::memset(out.hdr, 0, kMaxHdr);
  std::memcpy(out.hdr, &h, hlen);
  if (hdgst_) put_le32(out.hdr + hlen, crc32c_digest(out.hdr, hlen));
  out.hdr_len = icd ? pdo : hlen + hd;  // padding up to PDO is the zeroed tail
  out.data = s.cmd.data;
  out.data_len = icd;
  out.has_ddgst = icd && ddgst_;
  if (out.has_ddgst) put_le32(out.ddgst, crc32c_digest(s.cmd.data, icd));
  out.tag = tag;
  s.h2c_bytes = icd;
  return true;
}

void TcpQueue::stage_h2c(Slot& s, uint16_t tag, Staged& out) {
  const uint32_t hlen = sizeof(tcp::DataHdr);
  const uint32_t left = s.r2t_end - s.r2t_next;
  const uint32_t chunk = std::min(left, maxh2cdata_);
  const bool last = chunk == left;
  const uint32_t pdo = tcp::data_offset(uint8_t(hlen), hdgst_, cpda_);
  tcp::DataHdr h{};
  h.ch.type = uint8_t(tcp::PduType::H2CData);
  h.ch.flags = uint8_t((hdgst_ ? tcp::kFlagHdgst : 0) | (ddgst_ ? tcp::kFlagDdgst : 0) |
                       (last ? tcp::kFlagDataLast : 0));
  h.ch.hlen = uint8_t(hlen);
  h.ch.pdo = uint8_t(pdo);
  h.ch.plen = pdo + chunk + (ddgst_ ? tcp::kDigestLen : 0);
  h.cccid = s.cid;
  h.ttag = s.ttag;
  h.datao = s.r2t_next;
  h.datal = chunk;
  std::memset(out.hdr, 0, kMaxHdr);
  std::memcpy(out.hdr, &h, hlen);
  if (hdgst_) put_le32(out.hdr + hlen, crc32c_digest(out.hdr, hlen));
  out.hdr_len = pdo;
  out.data = s.cmd.data + s.r2t_next;
  out.data_len = chunk;
  out.has_ddgst = ddgst_;
  if (ddgst_) put_le32(out.ddgst, crc32c_digest(out.data, chunk));
  out.tag = tag;
  s.r2t_next += chunk;
  s.h2c_bytes += chunk;
}

void TcpQueue::fill_staging() {
  while (nstaged_ < kMaxStaged && ring_count_ > 0) {
    TxItem& it = ring_[ring_head_];
    Slot& s = slots_[it.tag];
    bool live = s.busy && s.cid == it.cid && !s.cqe_held;
    bool pop = true;
    if (!it.h2c) {
      if (live && s.capsule_queued) {
        stage_capsule(s, it.tag, staged_[nstaged_++]);
        s.capsule_queued = false;
        s.staged++;
      }
    } else if (live && s.r2t_active) {
      stage_h2c(s, it.tag, staged_[nstaged_++]);
      s.staged++;
      if (s.r2t_next == s.r2t_end) {
        s.r2t_active = false;
      } else {
        pop = false;  // more H2CData PDUs for this R2T
      }
    }
    if (pop) {
      ring_head_ = (ring_head_ + 1) % ring_.size();
      ring_count_--;
    }
  }
}

int TcpQueue::flush(bool may_fail) {
  if (fd_ < 0 || state_ == State::Failed || state_ == State::Connecting ||
      state_ == State::Idle || tx_error_ != 0) {
    return 0;
  }
  int work = 0;
  while (true) {
    fill_staging();
    if (nstaged_ == 0) break;
    iovec iov[kMaxStaged * 3];
    int niov = 0;
    size_t skip = first_sent_;
    for (int i = 0; i < nstaged_; i++) {
      const Staged& st = staged_[i];
      const struct {
        const uint8_t* p;
        size_t n;
      } seg[3] = {{st.hdr, st.hdr_len}, {st.data, st.data_len},
                  {st.ddgst, st.has_ddgst ? size_t(4) : size_t(0)}};
      for (const auto& g : seg) {
        if (g.n == 0) continue;
        if (skip >= g.n) {
          skip -= g.n;
          continue;
        }
        iov[niov].iov_base = const_cast<uint8_t*>(g.p + skip);
        iov[niov].iov_len = g.n - skip;
        niov++;
        skip = 0;
      }
    }
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = size_t(niov);
    ssize_t n = ::sendmsg(fd_, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_want_write(true);
        return work;
      }
      int e = errno;
      if (may_fail) {
        fail(e, cfg_.label + ": send failed: " + strerror(e));
      } else {
        tx_error_ = e;
        set_want_write(true);  // the next poll() reports it
      }
      return work;
    }
    retire(size_t(n));
    work++;
  }
  set_want_write(false);
  return work;
}

void TcpQueue::retire(size_t n) {
  int i = 0;
  while (i < nstaged_) {
    size_t rem = staged_[i].total() - first_sent_;
    if (n < rem) {
      first_sent_ += uint32_t(n);
      break;
    }
    n -= rem;
    first_sent_ = 0;
    int tag = staged_[i].tag;
    if (tag != kNoTag) {
      Slot& s = slots_[tag];
      if (s.staged > 0) s.staged--;
      if (s.staged == 0 && s.cqe_held) deferred_.push_back(uint16_t(tag));
    }
    i++;
  }
  if (i > 0) {
    for (int j = i; j < nstaged_; j++) staged_[j - i] = staged_[j];
    nstaged_ -= i;
  }
}

void TcpQueue::run_deferred() {
  while (!deferred_.empty() && state_ != State::Failed) {
    uint16_t tag = deferred_.back();
    deferred_.pop_back();
    Slot& s = slots_[tag];
    if (s.busy && s.cqe_held && s.staged == 0) complete(tag, s.held);
  }
}

// ---------------------------------------------------------------------------
// Completion and failure.

TcpQueue::Slot* TcpQueue::lookup(uint16_t cid, const char* what) {
  int tag = cids_.tag_of(cid);
  if (tag < 0 || !slots_[tag].busy || slots_[tag].cid != cid) {
    protocol_error("%s names command id 0x%04x, which is not outstanding", what, cid);
    return nullptr;
  }
  Slot& s = slots_[tag];
  if (s.cqe_held) {
    protocol_error("%s for command id 0x%04x after its completion", what, cid);
    return nullptr;
  }
  if (s.capsule_queued) {
    protocol_error("%s for command id 0x%04x before the command was sent", what, cid);
    return nullptr;
  }
  return &s;
}

void TcpQueue::on_cqe(Slot& s, const CqEntry& cqe) {
  // The controller ended the command: H2C data it did not ask for yet is
  // not sent. PDUs already handed to sendmsg() in part must still finish
  // (the stream would lose its framing otherwise), so the completion (and
  // with it the caller's buffer) waits for them.
  s.r2t_active = false;
  if (s.staged > 0) {
    s.cqe_held = true;
    s.held = cqe;
    return;
  }
  complete(tag_of(s), cqe);
}

void TcpQueue::complete(uint16_t tag, CqEntry cqe) {
  Slot& s = slots_[tag];
  HostCompletion hc;
  hc.err = 0;
  if (s.data_error && cqe.status_code().ok()) cqe.set_status(GenericSc::DataTransferError);
  hc.cqe = cqe;
  hc.bytes = s.cmd.dir == XferDir::C2H ? s.c2h_next : s.h2c_bytes;
  CompletionFn fn = s.cmd.fn;
  void* ctx = s.cmd.ctx;
  // Free the slot before the callback, which may submit the next command.
  s.busy = false;
  s.cmd = HostCmd{};
  cids_.put(tag);
  fn(ctx, hc);
}

void TcpQueue::fail(int err, std::string why) {
  if (state_ == State::Failed) return;
  state_ = State::Failed;
  fail_err_ = err > 0 ? err : EIO;
  fail_reason_ = std::move(why);
  if (listener_) listener_->on_queue_failed(*this);
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  // From here on no PDU references a caller's buffer.
  nstaged_ = 0;
  first_sent_ = 0;
  ring_count_ = 0;
  ring_head_ = 0;
  deferred_.clear();
  want_write_ = false;
  for (size_t tag = 0; tag < slots_.size(); tag++) {
    Slot& s = slots_[tag];
    if (!s.busy) continue;
    HostCompletion hc;
    hc.err = -fail_err_;
    hc.reason = fail_reason_.c_str();
    hc.bytes = 0;
    CompletionFn fn = s.cmd.fn;
    void* ctx = s.cmd.ctx;
    s.busy = false;
    s.cmd = HostCmd{};
    cids_.put(uint16_t(tag));
    fn(ctx, hc);
  }
}

void TcpQueue::protocol_error(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fail(EPROTO, cfg_.label + ": protocol error from the target: " + buf);
}

}  // namespace nvmf::host
