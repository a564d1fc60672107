// NVMe/TCP PDU wire format (NVMe/TCP Transport Specification 1.0).
//
// A PDU is: common header (8 bytes) + PDU-specific header (hlen bytes in all),
// then a 4-byte header digest if HDGSTF, then padding up to pdo, then data,
// then a 4-byte data digest if DDGSTF. plen counts all of it. Digests are
// crc32c_digest() values stored little-endian.
//
// Same conventions as nvme/spec.h: natural alignment, no #pragma pack, sizes
// and offsets asserted, host order == wire order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nvme/spec.h"

namespace nvmf::tcp {

inline constexpr uint16_t kDefaultPort = 4420;
inline constexpr uint16_t kDiscoveryPort = 8009;
inline constexpr uint16_t kPfv10 = 0x0000;  // PDU format version 1.0
inline constexpr uint32_t kDigestLen = 4;
inline constexpr uint8_t kPdaMax = 31;  // HPDA/CPDA are 0's based dwords
inline constexpr uint32_t kMinMaxH2cData = 4096;  // MAXH2CDATA lower bound

enum class PduType : uint8_t {
  IcReq = 0x00,
  IcResp = 0x01,
  H2CTermReq = 0x02,
  C2HTermReq = 0x03,
  CapsuleCmd = 0x04,
  CapsuleResp = 0x05,
  H2CData = 0x06,
  C2HData = 0x07,
  R2T = 0x09,
};

// Common header flags. HDGSTF/DDGSTF say which digests this PDU carries.
inline constexpr uint8_t kFlagHdgst = 0x01;
inline constexpr uint8_t kFlagDdgst = 0x02;
inline constexpr uint8_t kFlagDataLast = 0x04;     // H2CData, C2HData: last PDU of the transfer
inline constexpr uint8_t kFlagDataSuccess = 0x08;  // C2HData only: no CapsuleResp follows

// ICReq/ICResp DGST field: digests negotiated for the connection.
inline constexpr uint8_t kDgstHdr = 0x01;
inline constexpr uint8_t kDgstData = 0x02;

struct CommonHeader {
  uint8_t type;   // PduType
  uint8_t flags;
  uint8_t hlen;   // header length, excluding the header digest
  uint8_t pdo;    // data offset from the PDU start; 0 if no data
  uint32_t plen;  // total PDU length in bytes
};
static_assert(sizeof(CommonHeader) == 8);
static_assert(offsetof(CommonHeader, hlen) == 2);
static_assert(offsetof(CommonHeader, pdo) == 3);
static_assert(offsetof(CommonHeader, plen) == 4);

// ICReq and ICResp never carry digests or data: hlen == plen == 128.
struct IcReq {
  CommonHeader ch;
  uint16_t pfv;
  uint8_t hpda;     // host PDU data alignment for C2H data, 0's based dwords
  uint8_t dgst;     // kDgst* the host asks for
  uint32_t maxr2t;  // max outstanding R2Ts per command, 0's based
  uint8_t rsvd16[112];
};
static_assert(sizeof(IcReq) == 128);
static_assert(offsetof(IcReq, pfv) == 8);
static_assert(offsetof(IcReq, hpda) == 10);
static_assert(offsetof(IcReq, dgst) == 11);
static_assert(offsetof(IcReq, maxr2t) == 12);

struct IcResp {
  CommonHeader ch;
  uint16_t pfv;
  uint8_t cpda;         // controller PDU data alignment for H2C data, 0's based dwords
  uint8_t dgst;         // kDgst* granted
  uint32_t maxh2cdata;  // max data bytes per H2CData PDU, >= 4096
  uint8_t rsvd16[112];
};
static_assert(sizeof(IcResp) == 128);
static_assert(offsetof(IcResp, cpda) == 10);
static_assert(offsetof(IcResp, dgst) == 11);
static_assert(offsetof(IcResp, maxh2cdata) == 12);

// H2CTermReq / C2HTermReq. The header is followed by up to
// kTermReqMaxData bytes of the offending PDU header; no digests.
struct TermReqHdr {
  CommonHeader ch;
  uint16_t fes;
  uint8_t fei[4];  // bytes 13:10; not dword aligned, hence the byte array
  uint8_t rsvd14[10];

  uint32_t fei_value() const { return get_le32(fei); }
  void set_fei(uint32_t v) { put_le32(fei, v); }
};
static_assert(sizeof(TermReqHdr) == 24);
static_assert(offsetof(TermReqHdr, fes) == 8);
static_assert(offsetof(TermReqHdr, fei) == 10);

inline constexpr uint32_t kTermReqMaxData = 128;  // so plen <= 152

// Fatal error status (FES). FEI meaning per code is noted.
enum class Fes : uint16_t {
  InvalidHeaderField = 0x01,        // FEI: byte offset of the bad field
  PduSequenceError = 0x02,
  HeaderDigestError = 0x03,
  DataTransferOutOfRange = 0x04,
  R2TLimitExceeded = 0x05,          // a.k.a. data transfer limit exceeded
  UnsupportedParameter = 0x06,      // FEI: byte offset of the bad field
};

struct CapsuleCmdHdr {
  CommonHeader ch;
  SqEntry sqe;  // followed by in-capsule data at pdo, if any
};
static_assert(sizeof(CapsuleCmdHdr) == 72);
static_assert(offsetof(CapsuleCmdHdr, sqe) == 8);

struct CapsuleRespHdr {
  CommonHeader ch;
  CqEntry cqe;
};
static_assert(sizeof(CapsuleRespHdr) == 24);
static_assert(offsetof(CapsuleRespHdr, cqe) == 8);

// H2CData answers an R2T (ttag echoes it); C2HData carries read data (ttag
// reserved).
struct DataHdr {
  CommonHeader ch;
  uint16_t cccid;  // command capsule CID
  uint16_t ttag;   // transfer tag (H2C only)
  uint32_t datao;  // offset into the command's data
  uint32_t datal;  // bytes of data in this PDU
  uint8_t rsvd20[4];
};
static_assert(sizeof(DataHdr) == 24);
static_assert(offsetof(DataHdr, cccid) == 8);
static_assert(offsetof(DataHdr, ttag) == 10);
static_assert(offsetof(DataHdr, datao) == 12);
static_assert(offsetof(DataHdr, datal) == 16);

using H2CDataHdr = DataHdr;
using C2HDataHdr = DataHdr;

struct R2THdr {
  CommonHeader ch;
  uint16_t cccid;
  uint16_t ttag;  // controller-chosen, echoed by the host's H2CData
  uint32_t r2to;  // offset into the command's data
  uint32_t r2tl;  // bytes requested
  uint8_t rsvd20[4];
};
static_assert(sizeof(R2THdr) == 24);
static_assert(offsetof(R2THdr, cccid) == 8);
static_assert(offsetof(R2THdr, ttag) == 10);
static_assert(offsetof(R2THdr, r2to) == 12);
static_assert(offsetof(R2THdr, r2tl) == 16);

static_assert(kIsWireStruct<IcReq> && kIsWireStruct<IcResp> && kIsWireStruct<TermReqHdr>);
static_assert(kIsWireStruct<CapsuleCmdHdr> && kIsWireStruct<CapsuleRespHdr>);
static_assert(kIsWireStruct<DataHdr> && kIsWireStruct<R2THdr>);

// The fixed hlen of each PDU type; 0 for an unknown type. Receivers reject a
// PDU whose hlen differs (FES InvalidHeaderField, FEI = 2).
constexpr uint8_t expected_hlen(uint8_t type) {
  switch (PduType(type)) {
    case PduType::IcReq:
    case PduType::IcResp:
      return 128;
    case PduType::H2CTermReq:
    case PduType::C2HTermReq:
      return sizeof(TermReqHdr);
    case PduType::CapsuleCmd:
      return sizeof(CapsuleCmdHdr);
    case PduType::CapsuleResp:
      return sizeof(CapsuleRespHdr);
    case PduType::H2CData:
    case PduType::C2HData:
      return sizeof(DataHdr);
    case PduType::R2T:
      return sizeof(R2THdr);
  }
  return 0;
}

// Where data starts in a PDU we send: after the header (and its digest),
// rounded up to the peer's alignment ((pda + 1) dwords).
constexpr uint32_t data_offset(uint8_t hlen, bool hdgst, uint8_t pda) {
  uint32_t off = hlen + (hdgst ? kDigestLen : 0);
  uint32_t align = (uint32_t(pda) + 1) * 4;
  return (off + align - 1) / align * align;
}

}  // namespace nvmf::tcp
