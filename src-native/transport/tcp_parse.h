// NVMe/TCP receive-side validation as pure functions: whether a PDU header
// a host sent is acceptable and how the rest of that PDU is laid out, whether
// an ICReq and an H2CData header are acceptable, and where a command's SGL
// puts its data. tcp.cc decides everything through these, and fuzz/ drives
// them directly: no I/O, no allocation, no state beyond the arguments.
//
// Every length is checked here before the receive path reads, allocates or
// copies anything for it.
#pragma once

#include <cstdint>

#include "core/request.h"
#include "nvme/spec.h"
#include "transport/tcp_pdu.h"

namespace nvmf::tcp {

// What the receiver knows when a common header arrives.
struct RxContext {
  bool expect_icreq = true;        // the connection's first PDU
  bool hdgst = false;              // negotiated digests
  bool ddgst = false;
  uint32_t in_capsule_limit = 0;   // largest in-capsule data accepted now
  uint32_t max_h2c_data = 0;       // MAXH2CDATA we advertised
};

// How the rest of an accepted PDU is laid out after its common header:
// hlen - 8 more header bytes, hd digest bytes, pad bytes, data_len data
// bytes, dd digest bytes (all of which add up to plen).
struct PduLayout {
  uint32_t hd = 0;
  uint32_t pad = 0;
  uint32_t data_len = 0;
  uint32_t dd = 0;
};

// A rejected PDU: what the C2HTermReq says and what the log says.
struct PduError {
  Fes fes = Fes::InvalidHeaderField;
  uint32_t fei = 0;
  const char* reason = "";
};

// The longest header (+ digest) check_common_header ever accepts: the
// receiver's header buffer must hold this much.
inline constexpr uint32_t kMaxRxHeader = sizeof(IcReq) + kDigestLen;

// True and *out filled when the PDU may be received; false and *err set when
// the connection must be terminated.
bool check_common_header(const CommonHeader& ch, const RxContext& ctx, PduLayout* out, PduError* err);

// The ICReq fields we check (PFV, HPDA).
bool check_icreq(const IcReq& req, PduError* err);

// An H2CData header against the request its TTAG named (the caller found
// that request waiting for exactly this data): CCCID, DATAL, DATAO.
bool check_h2c_header(const DataHdr& h, uint32_t pdu_data_len, uint16_t cid, uint32_t h2c_off,
                      uint32_t r2t_end, PduError* err);

// Where a command's data is, from its SGL.
struct SglPlacement {
  uint32_t length = 0;     // bytes the command moves (only on success)
  bool in_capsule = false; // in the capsule at byte `offset` of its data
  uint32_t offset = 0;
};

// The status to fail the command with (success: *out says where the data
// is). `capsule_data` is the in-capsule data the PDU carries.
Status decode_command_sgl(const SqEntry& cmd, XferDir xfer, uint32_t capsule_data,
                          uint32_t in_capsule_limit, uint32_t max_data_transfer, SglPlacement* out);

}  // namespace nvmf::tcp
