#include "transport/tcp_parse.h"

#include <cstddef>

namespace nvmf::tcp {

namespace {

// FEI of InvalidHeaderField: byte offset of the offending field.
constexpr uint32_t kFeiType = offsetof(CommonHeader, type);
constexpr uint32_t kFeiFlags = offsetof(CommonHeader, flags);
constexpr uint32_t kFeiHlen = offsetof(CommonHeader, hlen);
constexpr uint32_t kFeiPdo = offsetof(CommonHeader, pdo);
constexpr uint32_t kFeiPlen = offsetof(CommonHeader, plen);

bool reject(PduError* err, Fes fes, uint32_t fei, const char* reason) {
  err->fes = fes;
  err->fei = fei;
  err->reason = reason;
  return false;
}

// CapsuleCmd and H2CData: digests as negotiated, pdo/plen consistent, data
// within what we advertised.
bool layout_data_pdu(const CommonHeader& ch, const RxContext& ctx, PduLayout* out, PduError* err) {
  const uint32_t hd = (ch.flags & kFlagHdgst) ? kDigestLen : 0;
  const uint32_t dd = (ch.flags & kFlagDdgst) ? kDigestLen : 0;
  if ((hd != 0) != ctx.hdgst || (dd != 0 && !ctx.ddgst)) {
    return reject(err, Fes::InvalidHeaderField, kFeiFlags, "PDU digest flags differ from the negotiated digests");
  }
  const uint32_t hdr_end = ch.hlen + hd;
  uint64_t data = 0;
  if (ch.plen < hdr_end) return reject(err, Fes::InvalidHeaderField, kFeiPlen, "PDU shorter than its header");
  if (ch.plen == hdr_end) {
    if (dd) return reject(err, Fes::InvalidHeaderField, kFeiFlags, "data digest flag on a PDU without data");
  } else {
    if (ch.pdo == 0) return reject(err, Fes::InvalidHeaderField, kFeiPlen, "PDU length beyond a header without data");
    if (ch.pdo < hdr_end || ch.pdo > ch.plen) {
      return reject(err, Fes::InvalidHeaderField, kFeiPdo, "bad PDU data offset");
    }
    if (uint64_t(ch.pdo) + dd >= ch.plen) return reject(err, Fes::InvalidHeaderField, kFeiPlen, "bad PDU length");
    if (ctx.ddgst && !dd) return reject(err, Fes::InvalidHeaderField, kFeiFlags, "data digest missing");
    data = ch.plen - ch.pdo - dd;
  }
  const bool capsule = PduType(ch.type) == PduType::CapsuleCmd;
  if (!capsule && data == 0) return reject(err, Fes::InvalidHeaderField, kFeiPlen, "H2CData PDU without data");
  const uint64_t limit = capsule ? ctx.in_capsule_limit : ctx.max_h2c_data;
  if (data > limit) {
    return reject(err, Fes::R2TLimitExceeded, 0,
                  capsule ? "in-capsule data exceeds the advertised size" : "H2CData exceeds MAXH2CDATA");
  }
  out->hd = hd;
  out->dd = dd;
  out->pad = data ? ch.pdo - hdr_end : 0;
  out->data_len = uint32_t(data);
  return true;
}

}  // namespace

bool check_common_header(const CommonHeader& ch, const RxContext& ctx, PduLayout* out, PduError* err) {
  const auto type = PduType(ch.type);
  const bool host_pdu = type == PduType::IcReq || type == PduType::CapsuleCmd || type == PduType::H2CData ||
                        type == PduType::H2CTermReq;
  if (!host_pdu) return reject(err, Fes::InvalidHeaderField, kFeiType, "invalid PDU type");
  if (ctx.expect_icreq != (type == PduType::IcReq)) {
    return reject(err, Fes::PduSequenceError, 0, ctx.expect_icreq ? "first PDU is not an ICReq" : "unexpected ICReq");
  }
  if (ch.hlen != expected_hlen(ch.type)) {
    return reject(err, Fes::InvalidHeaderField, kFeiHlen, "bad PDU header length");
  }
  *out = PduLayout{};
  if (type == PduType::IcReq) {
    // ICReq carries neither digests nor data.
    if (ch.plen != sizeof(IcReq)) return reject(err, Fes::InvalidHeaderField, kFeiPlen, "bad ICReq length");
    return true;
  }
  if (type == PduType::H2CTermReq) {
    if (ch.plen < ch.hlen || ch.plen > ch.hlen + kTermReqMaxData) {
      return reject(err, Fes::InvalidHeaderField, kFeiPlen, "bad H2CTermReq length");
    }
    out->data_len = ch.plen - ch.hlen;
    return true;
  }
  return layout_data_pdu(ch, ctx, out, err);
}

bool check_icreq(const IcReq& req, PduError* err) {
  if (req.pfv != kPfv10) {
    return reject(err, Fes::UnsupportedParameter, offsetof(IcReq, pfv), "unsupported PDU format version");
  }
  if (req.hpda > kPdaMax) return reject(err, Fes::InvalidHeaderField, offsetof(IcReq, hpda), "HPDA out of range");
  return true;
}

bool check_h2c_header(const DataHdr& h, uint32_t pdu_data_len, uint16_t cid, uint32_t h2c_off,
                      uint32_t r2t_end, PduError* err) {
  if (h.cccid != cid) {
    return reject(err, Fes::InvalidHeaderField, offsetof(DataHdr, cccid), "H2CData cccid does not match its R2T");
  }
  if (h.datal != pdu_data_len) {
    return reject(err, Fes::InvalidHeaderField, offsetof(DataHdr, datal), "H2CData datal does not match its length");
  }
  if (h.datao != h2c_off || h.datal > r2t_end - h.datao) {
    return reject(err, Fes::DataTransferOutOfRange, 0, "H2CData outside the range of its R2T");
  }
  return true;
}

Status decode_command_sgl(const SqEntry& cmd, XferDir xfer, uint32_t capsule_data,
                          uint32_t in_capsule_limit, uint32_t max_data_transfer, SglPlacement* out) {
  *out = SglPlacement{};
  if (xfer == XferDir::None) return Status{};
  if (cmd.psdt() == kPsdtPrp) return GenericSc::InvalidField;  // fabrics commands use SGLs
  const SglDescriptor& sgl = cmd.dptr.sgl1;
  if (sgl.sgl_type() == SglType::DataBlock && sgl.sgl_subtype() == SglSubtype::Offset) {
    if (xfer != XferDir::HostToCtrl) return GenericSc::SglDescriptorTypeInvalid;
    if (sgl.length > in_capsule_limit) return GenericSc::DataSglLengthInvalid;
    if (sgl.addr > capsule_data) return GenericSc::SglOffsetInvalid;
    if (sgl.length > capsule_data - sgl.addr) return GenericSc::DataSglLengthInvalid;
    out->in_capsule = true;
    out->offset = uint32_t(sgl.addr);
  } else if (sgl.sgl_type() == SglType::TransportDataBlock && sgl.sgl_subtype() == SglSubtype::TransportSpecific) {
    if (capsule_data) return GenericSc::InvalidField;  // data both in the capsule and by R2T
  } else {
    return GenericSc::SglDescriptorTypeInvalid;
  }
  if (sgl.length > max_data_transfer) return GenericSc::DataSglLengthInvalid;
  out->length = sgl.length;
  return Status{};
}

}  // namespace nvmf::tcp
