// TcpQueue receive path: a byte-stream parser for controller-to-host PDUs.
//
// Bytes arrive in arbitrary pieces (feed()); the parser first collects the
// 8-byte common header, validates type, lengths, offsets and digest flags
// against the negotiated state, then collects the rest of the header (and
// its digest), then streams C2H data straight into the command's buffer.
// Every field is checked before it is used to index or size anything, so a
// hostile target can at worst fail the queue.
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "host/tcp_queue.h"
#include "nvme/crc32c.h"

namespace nvmf::host {

namespace {

const char* fes_name(uint16_t fes) {
  switch (tcp::Fes(fes)) {
    case tcp::Fes::InvalidHeaderField: return "Invalid PDU Header Field";
    case tcp::Fes::PduSequenceError: return "PDU Sequence Error";
    case tcp::Fes::HeaderDigestError: return "Header Digest Error";
    case tcp::Fes::DataTransferOutOfRange: return "Data Transfer Out of Range";
    case tcp::Fes::R2TLimitExceeded: return "Data Transfer Limit Exceeded";
    case tcp::Fes::UnsupportedParameter: return "Unsupported Parameter";
  }
  return "unknown";
}

}  // namespace

int TcpQueue::read_socket() {
  int work = 0;
  // Bounded so one busy connection cannot starve the rest of the loop;
  // epoll is level-triggered, so what is left wakes us again.
  for (int i = 0; i < 16; i++) {
    ssize_t n = ::recv(fd_, rx_buf_.get(), kRxBufLen, MSG_DONTWAIT);
    if (n > 0) {
      work++;
      if (feed(rx_buf_.get(), size_t(n)) < 0) return work;
      if (size_t(n) < kRxBufLen) break;
      continue;
    }
    if (n == 0) {
      fail(ECONNRESET, cfg_.label + ": connection closed by the target");
      return work;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    int e = errno;
    fail(e, cfg_.label + ": receive failed: " + strerror(e));
    return work;
  }
  return work;
}

int TcpQueue::feed(const uint8_t* p, size_t n) {
  while (n > 0) {
    if (state_ == State::Failed) break;
    switch (rx_) {
      case Rx::Header: {
        size_t take = std::min<size_t>(n, hdr_need_ - hdr_have_);
        std::memcpy(hdr_ + hdr_have_, p, take);
        hdr_have_ += uint32_t(take);
        p += take;
        n -= take;
        if (hdr_have_ < hdr_need_) break;
        if (!ch_ok_) {
          if (!on_common_header()) break;  // failed
          ch_ok_ = true;
          if (hdr_have_ < hdr_need_) break;  // the rest of the header
        }
        on_header();
        break;
      }
      case Rx::Data: {
        size_t take = std::min<size_t>(n, rx_left_);
        std::memcpy(rx_dst_, p, take);
        if (ddgst_) rx_crc_ = crc32c(rx_crc_, p, take);
        rx_dst_ += take;
        rx_left_ -= uint32_t(take);
        p += take;
        n -= take;
        if (rx_left_ == 0) {
          if (ddgst_) {
            rx_ = Rx::Ddgst;
            rx_ddgst_have_ = 0;
          } else {
            on_c2h_done();
          }
        }
        break;
      }
      case Rx::Ddgst: {
        size_t take = std::min<size_t>(n, 4 - rx_ddgst_have_);
        std::memcpy(rx_ddgst_ + rx_ddgst_have_, p, take);
        rx_ddgst_have_ += uint32_t(take);
        p += take;
        n -= take;
        if (rx_ddgst_have_ == 4) on_c2h_done();
        break;
      }
    }
  }
  return state_ == State::Failed ? -fail_err_ : 0;
}

// The first 8 bytes: decide whether this PDU may arrive now and how many
// header bytes follow. Returns false after failing the queue.
bool TcpQueue::on_common_header() {
  tcp::CommonHeader ch;
  std::memcpy(&ch, hdr_, sizeof ch);
  const auto type = tcp::PduType(ch.type);
  bool allowed;
  if (type == tcp::PduType::C2HTermReq) {
    allowed = true;
  } else if (state_ == State::IcWait) {
    allowed = type == tcp::PduType::IcResp;
  } else {
    allowed = state_ == State::Ready &&
              (type == tcp::PduType::CapsuleResp || type == tcp::PduType::C2HData ||
               type == tcp::PduType::R2T);
  }
  if (!allowed) {
    protocol_error("unexpected PDU type 0x%02x while %s", ch.type, queue_state_name(state_));
    return false;
  }
  const uint8_t want_hlen = tcp::expected_hlen(ch.type);
  if (ch.hlen != want_hlen) {
    protocol_error("PDU type 0x%02x has header length %u, expected %u", ch.type, ch.hlen,
                   want_hlen);
    return false;
  }
  const uint32_t hd = hdgst_ ? tcp::kDigestLen : 0;
  const uint32_t dd = ddgst_ ? tcp::kDigestLen : 0;
  switch (type) {
    case tcp::PduType::IcResp:
      if (ch.plen != sizeof(tcp::IcResp) || ch.pdo != 0) {
        protocol_error("ICResp with PDU length %u / data offset %u", ch.plen, ch.pdo);
        return false;
      }
      hdr_need_ = sizeof(tcp::IcResp);
      return true;
    case tcp::PduType::C2HTermReq:
      // Never carries digests; up to 128 bytes of the offending header.
      if (ch.plen < sizeof(tcp::TermReqHdr) ||
          ch.plen > sizeof(tcp::TermReqHdr) + tcp::kTermReqMaxData) {
        protocol_error("C2HTermReq with PDU length %u", ch.plen);
        return false;
      }
      hdr_need_ = ch.plen;
      return true;
    default:
      break;
  }
  if (bool(ch.flags & tcp::kFlagHdgst) != hdgst_) {
    protocol_error("PDU type 0x%02x %s a header digest, but header digests are %s", ch.type,
                   (ch.flags & tcp::kFlagHdgst) ? "carries" : "lacks",
                   hdgst_ ? "enabled" : "disabled");
    return false;
  }
  hdr_need_ = ch.hlen + hd;
  if (type == tcp::PduType::C2HData) {
    if (bool(ch.flags & tcp::kFlagDdgst) != ddgst_) {
      protocol_error("C2HData %s a data digest, but data digests are %s",
                     (ch.flags & tcp::kFlagDdgst) ? "carries" : "lacks",
                     ddgst_ ? "enabled" : "disabled");
      return false;
    }
    // We asked for HPDA 0, so data follows the header (and digest) directly.
    if (ch.pdo != ch.hlen + hd) {
      protocol_error("C2HData data offset %u, expected %u", ch.pdo, ch.hlen + hd);
      return false;
    }
    if (uint64_t(ch.plen) <= uint64_t(ch.pdo) + dd) {
      protocol_error("C2HData with PDU length %u carries no data", ch.plen);
      return false;
    }
    return true;
  }
  // CapsuleResp, R2T: fixed size, no data.
  if ((ch.flags & tcp::kFlagDdgst) || ch.pdo != 0 || ch.plen != ch.hlen + hd) {
    protocol_error("PDU type 0x%02x with flags 0x%02x, data offset %u, length %u", ch.type,
                   ch.flags, ch.pdo, ch.plen);
    return false;
  }
  return true;
}

void TcpQueue::on_header() {
  const auto type = tcp::PduType(hdr_[0]);
  if (type == tcp::PduType::IcResp) {
    rx_reset();
    on_icresp();
    return;
  }
  if (type == tcp::PduType::C2HTermReq) {
    on_term_req();
    return;
  }
  const uint8_t hlen = hdr_[2];
  if (hdgst_) {
    uint32_t got = get_le32(hdr_ + hlen);
    uint32_t want = crc32c_digest(hdr_, hlen);
    if (got != want) {
      protocol_error("header digest mismatch on PDU type 0x%02x (got 0x%08x, computed 0x%08x)",
                     hdr_[0], got, want);
      return;
    }
  }
  switch (type) {
    case tcp::PduType::CapsuleResp:
      on_capsule_resp();
      return;
    case tcp::PduType::R2T:
      on_r2t();
      return;
    case tcp::PduType::C2HData:
      on_c2h_header();
      return;
    default:
      protocol_error("unexpected PDU type 0x%02x", hdr_[0]);  // filtered earlier
  }
}

void TcpQueue::on_icresp() {
  tcp::IcResp r;
  std::memcpy(&r, hdr_, sizeof r);
  if (r.pfv != tcp::kPfv10) {
    protocol_error("ICResp with unsupported PDU format version %u", r.pfv);
    return;
  }
  if (r.cpda > tcp::kPdaMax) {
    protocol_error("ICResp with CPDA %u (at most %u)", r.cpda, tcp::kPdaMax);
    return;
  }
  const bool h = r.dgst & tcp::kDgstHdr;
  const bool d = r.dgst & tcp::kDgstData;
  if (h != cfg_.hdgst || d != cfg_.ddgst) {
    protocol_error("ICResp grants header digest %s / data digest %s; host asked for %s / %s",
                   h ? "on" : "off", d ? "on" : "off", cfg_.hdgst ? "on" : "off",
                   cfg_.ddgst ? "on" : "off");
    return;
  }
  if (r.maxh2cdata < tcp::kMinMaxH2cData || r.maxh2cdata % 4 != 0) {
    protocol_error("ICResp with MAXH2CDATA %u", r.maxh2cdata);
    return;
  }
  hdgst_ = h;
  ddgst_ = d;
  cpda_ = r.cpda;
  maxh2cdata_ = r.maxh2cdata;
  state_ = State::Ready;
  if (listener_) listener_->on_queue_ready(*this);
}

void TcpQueue::on_capsule_resp() {
  tcp::CapsuleRespHdr h;
  std::memcpy(&h, hdr_, sizeof h);
  rx_reset();
  Slot* s = lookup(h.cqe.cid, "CapsuleResp");
  if (s == nullptr) return;
  on_cqe(*s, h.cqe);
}

void TcpQueue::on_r2t() {
  tcp::R2THdr h;
  std::memcpy(&h, hdr_, sizeof h);
  rx_reset();
  Slot* s = lookup(h.cccid, "R2T");
  if (s == nullptr) return;
  if (s->cmd.dir != XferDir::H2C) {
    protocol_error("R2T for command id 0x%04x, which sends no data", h.cccid);
    return;
  }
  if (s->incapsule) {
    protocol_error("R2T for command id 0x%04x, whose data was in the capsule", h.cccid);
    return;
  }
  if (s->r2t_active) {
    protocol_error("second R2T for command id 0x%04x while one is outstanding (MAXR2T 1)",
                   h.cccid);
    return;
  }
  if (h.r2tl == 0 || uint64_t(h.r2to) + h.r2tl > s->cmd.len) {
    protocol_error("R2T for command id 0x%04x asks for %u bytes at offset %u of %u", h.cccid,
                   h.r2tl, h.r2to, s->cmd.len);
    return;
  }
  if (ring_count_ >= ring_.size()) {
    protocol_error("R2T overflow");  // unreachable: one H2C item per command at most
    return;
  }
  s->r2t_active = true;
  s->ttag = h.ttag;
  s->r2t_next = h.r2to;
  s->r2t_end = h.r2to + h.r2tl;
  ring_[(ring_head_ + ring_count_) % ring_.size()] = TxItem{tag_of(*s), s->cid, true};
  ring_count_++;
  // Sent by the flush at the end of poll(); feed() alone (fuzzing) only queues.
}

void TcpQueue::on_c2h_header() {
  tcp::DataHdr h;
  std::memcpy(&h, hdr_, sizeof h);
  Slot* s = lookup(h.cccid, "C2HData");
  if (s == nullptr) return;
  const uint32_t dd = ddgst_ ? tcp::kDigestLen : 0;
  if (s->cmd.dir != XferDir::C2H) {
    protocol_error("C2HData for command id 0x%04x, which receives no data", h.cccid);
    return;
  }
  if (h.datal == 0 || uint64_t(h.ch.plen) != uint64_t(h.ch.pdo) + h.datal + dd) {
    protocol_error("C2HData length fields disagree: PDU length %u, data offset %u, data length %u",
                   h.ch.plen, h.ch.pdo, h.datal);
    return;
  }
  if (h.datao != s->c2h_next) {
    protocol_error("C2HData for command id 0x%04x at offset %u, expected %u", h.cccid, h.datao,
                   s->c2h_next);
    return;
  }
  if (uint64_t(h.datao) + h.datal > s->cmd.len) {
    protocol_error("C2HData for command id 0x%04x: %u bytes at offset %u exceed its %u bytes",
                   h.cccid, h.datal, h.datao, s->cmd.len);
    return;
  }
  const bool success = h.ch.flags & tcp::kFlagDataSuccess;
  if (success && (!(h.ch.flags & tcp::kFlagDataLast) || h.datao + h.datal != s->cmd.len)) {
    protocol_error("C2HData SUCCESS flag on command id 0x%04x before its last data", h.cccid);
    return;
  }
  rx_tag_ = tag_of(*s);
  rx_dst_ = s->cmd.data + h.datao;
  rx_left_ = h.datal;
  rx_datal_ = h.datal;
  rx_flags_ = h.ch.flags;
  rx_crc_ = ~0u;
  rx_ = Rx::Data;
}

void TcpQueue::on_c2h_done() {
  Slot& s = slots_[rx_tag_];
  const uint8_t flags = rx_flags_;
  const uint32_t datal = rx_datal_;
  bool digest_ok = true;
  if (ddgst_) digest_ok = get_le32(rx_ddgst_) == ~rx_crc_;
  rx_reset();
  rx_dst_ = nullptr;
  // Nothing can complete the command while its data streams in (only a
  // queue failure, which stops the parser), so the slot is still ours.
  if (!s.busy) return;
  // A data digest error keeps the stream in sync: the command fails with
  // Data Transfer Error, the queue lives on.
  if (!digest_ok) s.data_error = true;
  s.c2h_next += datal;
  if (flags & tcp::kFlagDataSuccess) {
    CqEntry c{};
    c.cid = s.cid;
    c.sqid = cfg_.qid;
    on_cqe(s, c);
  }
}

void TcpQueue::on_term_req() {
  tcp::TermReqHdr t;
  std::memcpy(&t, hdr_, sizeof t);
  rx_reset();
  char buf[160];
  std::snprintf(buf, sizeof buf, "target terminated the connection (C2HTermReq: %s, FEI 0x%x)",
                fes_name(t.fes), t.fei_value());
  fail(ECONNRESET, cfg_.label + ": " + buf);
}

}  // namespace nvmf::host
