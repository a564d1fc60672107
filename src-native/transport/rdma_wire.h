// NVMe/RDMA transport binding: the RDMA_CM private data exchanged when a
// queue connects (NVMe over Fabrics 1.1, section 7.3.2 / the RDMA transport
// binding). Shared by the target (rdma.cc) and the host (host/rdma_queue.cc).
// All fields little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nvmf::rdma {

inline constexpr uint16_t kRecfmt10 = 0;  // the only record format defined

// RDMA_CM_REQUEST private data (host -> controller).
struct CmRequest {
  uint16_t recfmt;
  uint16_t qid;
  uint16_t hrqsize;  // host receive queue size: responses the host can take
  uint16_t hsqsize;  // host send queue size, 0's based (the SQSIZE Connect will carry)
  uint16_t cntlid;   // reserved in 1.0 (some hosts send 0xffff)
  uint8_t rsvd[22];
};
static_assert(sizeof(CmRequest) == 32);
static_assert(offsetof(CmRequest, hsqsize) == 6);

// RDMA_CM_ACCEPT private data (controller -> host).
struct CmAccept {
  uint16_t recfmt;
  uint16_t crqsize;  // controller receive queue size: capsules we can take
  uint8_t rsvd[28];
};
static_assert(sizeof(CmAccept) == 32);

// RDMA_CM_REJECT private data (controller -> host).
struct CmReject {
  uint16_t recfmt;
  uint16_t sts;  // a CmRejectStatus
};
static_assert(sizeof(CmReject) == 4);

enum class CmRejectStatus : uint16_t {
  InvalidLength = 0x01,   // private data missing or too short
  InvalidRecfmt = 0x02,
  InvalidQid = 0x03,
  InvalidHsqsize = 0x04,
  InvalidHrqsize = 0x05,
  NoResources = 0x06,
  InvalidIrd = 0x07,
  InvalidOrd = 0x08,
  InvalidCntlid = 0x09,
};

inline const char* cm_reject_name(uint16_t sts) {
  switch (CmRejectStatus(sts)) {
    case CmRejectStatus::InvalidLength: return "invalid private data length";
    case CmRejectStatus::InvalidRecfmt: return "invalid record format (RECFMT)";
    case CmRejectStatus::InvalidQid: return "invalid queue ID";
    case CmRejectStatus::InvalidHsqsize: return "invalid host send queue size (HSQSIZE)";
    case CmRejectStatus::InvalidHrqsize: return "invalid host receive queue size (HRQSIZE)";
    case CmRejectStatus::NoResources: return "no resources";
    case CmRejectStatus::InvalidIrd: return "invalid IRD";
    case CmRejectStatus::InvalidOrd: return "invalid ORD";
    case CmRejectStatus::InvalidCntlid: return "invalid controller ID";
  }
  return "unknown reject status";
}

}  // namespace nvmf::rdma
