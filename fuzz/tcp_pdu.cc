// libFuzzer harness: the NVMe/TCP receive path's PDU validation
// (transport/tcp_parse.h), driven the way tcp.cc drives it: the input is the
// byte stream a host sends on one connection. Each common header is checked
// with the connection's current context (ICReq first, digests as the ICReq
// negotiated, the admin or I/O in-capsule limit), the rest of the header is
// taken, ICReq and H2CData headers are checked, the PDU is skipped by plen.
//
// Besides "no crash, no sanitizer report", the harness asserts what tcp.cc
// relies on without checking again: an accepted header fits its header
// buffer, the layout adds up to plen, data never exceeds the advertised
// limits, and an accepted H2CData stays inside its R2T.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "nvme/crc32c.h"
#include "transport/tcp_parse.h"

using namespace nvmf;
using namespace nvmf::tcp;

#define CHECK(c)                                                      \
  do {                                                                \
    if (!(c)) {                                                       \
      __builtin_printf("invariant failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                        \
    }                                                                 \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // Byte 0: the receiver's limits, so admin (8 KiB) and I/O queue limits and
  // small/large MAXH2CDATA are all exercised.
  const uint8_t knobs = data[0];
  RxContext ctx;
  ctx.expect_icreq = true;
  ctx.in_capsule_limit = (knobs & 1) ? 8192 : 4096;
  ctx.max_h2c_data = (knobs & 2) ? 131072 : 4096;
  // One simulated request waiting for H2CData after an R2T.
  const uint16_t cid = uint16_t((knobs >> 2) & 0x1f);
  uint32_t h2c_off = 0;
  const uint32_t r2t_end = (knobs & 0x80) ? 65536 : 8192;

  const uint8_t* p = data + 1;
  size_t n = size - 1;
  alignas(8) uint8_t hdr[kMaxRxHeader];
  while (n >= sizeof(CommonHeader)) {
    CommonHeader ch;
    std::memcpy(&ch, p, sizeof ch);
    PduLayout lay;
    PduError err;
    if (!check_common_header(ch, ctx, &lay, &err)) {
      CHECK(err.reason && err.reason[0]);
      return 0;  // the connection is terminated
    }
    const uint64_t hdr_len = uint64_t(ch.hlen) + lay.hd;
    CHECK(hdr_len >= sizeof(CommonHeader) && hdr_len <= sizeof hdr);
    CHECK(hdr_len + lay.pad + lay.data_len + lay.dd == ch.plen);
    CHECK(lay.hd == 0 || lay.hd == kDigestLen);
    CHECK(lay.dd == 0 || lay.dd == kDigestLen);
    const auto type = PduType(ch.type);
    if (type == PduType::CapsuleCmd) CHECK(lay.data_len <= ctx.in_capsule_limit);
    if (type == PduType::H2CData) CHECK(lay.data_len > 0 && lay.data_len <= ctx.max_h2c_data);
    if (type == PduType::H2CTermReq) CHECK(lay.data_len <= kTermReqMaxData);
    if (n < hdr_len) return 0;
    std::memcpy(hdr, p, hdr_len);
    if (lay.hd) (void)(get_le32(hdr + ch.hlen) == crc32c_digest(hdr, ch.hlen));
    switch (type) {
      case PduType::IcReq: {
        IcReq req;
        std::memcpy(&req, hdr, sizeof req);
        if (!check_icreq(req, &err)) return 0;
        CHECK(req.hpda <= kPdaMax);
        ctx.expect_icreq = false;
        ctx.hdgst = req.dgst & kDgstHdr;
        ctx.ddgst = req.dgst & kDgstData;
        break;
      }
      case PduType::H2CData: {
        DataHdr h;
        std::memcpy(&h, hdr, sizeof h);
        if (!check_h2c_header(h, lay.data_len, cid, h2c_off, r2t_end, &err)) return 0;
        CHECK(h.datao == h2c_off && uint64_t(h.datao) + h.datal <= r2t_end);
        h2c_off += h.datal;
        break;
      }
      case PduType::CapsuleCmd: {
        CapsuleCmdHdr h;
        std::memcpy(&h, hdr, sizeof h);
        // Whatever the command, its SGL is decoded against this PDU.
        for (XferDir x : {XferDir::None, XferDir::HostToCtrl, XferDir::CtrlToHost}) {
          SglPlacement at;
          Status s = decode_command_sgl(h.sqe, x, lay.data_len, ctx.in_capsule_limit, 131072, &at);
          if (!s.ok()) continue;
          CHECK(at.length <= 131072);
          if (at.in_capsule) CHECK(uint64_t(at.offset) + at.length <= lay.data_len);
        }
        break;
      }
      case PduType::H2CTermReq:
        return 0;  // the host ends the connection
      default:
        CHECK(false);  // check_common_header lets no other type through
    }
    if (n < ch.plen) return 0;
    p += ch.plen;
    n -= ch.plen;
  }
  return 0;
}
