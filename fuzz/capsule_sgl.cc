// libFuzzer harness: command capsules and SGL decoding. The input is one
// CapsuleCmd PDU as a host would send it (72-byte header, then in-capsule
// data), preceded by two bytes choosing the receiver's limits. The SGL is
// decoded the way tcp.cc does for the command's data direction (from its
// opcode, as nvme/exec.cc derives it), and the command-specific argument
// decoders of nvme/spec.h run on the SQE.
//
// Invariants checked: an accepted in-capsule SGL lies inside the data the
// PDU carries and inside the in-capsule limit; an accepted length never
// exceeds MDTS; decoded block counts stay within their field widths.
#include <cstdint>
#include <cstdlib>
#include <cstring>

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

namespace {

// nvme/exec.cc cmd_xfer_dir(), restated: data direction from opcode bits
// 1:0 (Fabrics: from FCTYPE).
XferDir xfer_of(const SqEntry& c) {
  const uint8_t bits = c.opc == 0x7f ? c.fctype() : c.opc;
  switch (bits & 3) {
    case 1: return XferDir::HostToCtrl;
    case 2: return XferDir::CtrlToHost;
    default: return XferDir::None;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 + sizeof(CapsuleCmdHdr)) return 0;
  const uint32_t in_capsule_limit = 1024u << (data[0] & 7);  // 1 KiB .. 128 KiB
  const uint32_t mdts = 4096u << (data[1] & 7);              // 4 KiB .. 512 KiB
  CapsuleCmdHdr h;
  std::memcpy(&h, data + 2, sizeof h);
  const size_t capsule_data = size - 2 - sizeof h;  // what follows the header
  SglPlacement at;
  const XferDir x = xfer_of(h.sqe);
  const Status s = decode_command_sgl(h.sqe, x, uint32_t(capsule_data), in_capsule_limit, mdts, &at);
  if (s.ok()) {
    CHECK(at.length <= mdts);
    if (x == XferDir::None) CHECK(at.length == 0 && !at.in_capsule);
    if (at.in_capsule) {
      CHECK(x == XferDir::HostToCtrl);
      CHECK(at.length <= in_capsule_limit);
      CHECK(uint64_t(at.offset) + at.length <= capsule_data);
      // The copy the transport makes of the in-capsule data.
      static uint8_t buf[128 * 1024];
      std::memcpy(buf, data + 2 + sizeof h + at.offset, at.length);
    } else if (x != XferDir::None) {
      CHECK(h.sqe.dptr.sgl1.sgl_type() == SglType::TransportDataBlock);
    }
  } else {
    CHECK(!(s.sct == Sct::Generic && s.sc == 0));
  }
  // Argument decoders used by the admin and I/O handlers.
  const auto rw = RwArgs::decode(h.sqe);
  CHECK(rw.nlb >= 1 && rw.nlb <= 65536);
  (void)IdentifyArgs::decode(h.sqe);
  (void)GetLogPageArgs::decode(h.sqe);
  (void)FeatureArgs::decode(h.sqe);
  return 0;
}
