// The wire format of the benchmark's loopback ceiling: a bare request /
// response protocol over TCP with no NVMe processing at all. The benchmark
// drives it with the same client (fio engine or perf tool), the same I/O
// sizes, queue depth and connection count as the NVMe/TCP runs, so the
// ratio between the two is the cost of NVMe/TCP plus the target.
//
// The headers have the sizes of the NVMe/TCP PDUs they stand in for: a
// request is as long as a command capsule header (72 bytes) and a response
// as long as a C2HData header (24 bytes). Write data follows the request
// (like in-capsule data), read data follows the response. One round trip
// per I/O: the ceiling has no R2T and no separate response capsule.
#pragma once

#include <cstdint>

namespace nvmf::host::echo {

inline constexpr uint32_t kReqMagic = 0x4f484345;   // "ECHO"
inline constexpr uint32_t kRespMagic = 0x50534552;  // "RESP"
inline constexpr uint32_t kMaxLen = 1u << 20;       // largest I/O the server takes

enum class Op : uint8_t { Read = 1, Write = 2, Flush = 3 };

struct Request {
  uint32_t magic;
  uint8_t op;
  uint8_t rsvd0[3];
  uint32_t len;  // data bytes: following this header (write) or the response (read)
  uint16_t tag;
  uint16_t rsvd1;
  uint64_t offset;
  uint8_t pad[48];
};
static_assert(sizeof(Request) == 72);

struct Response {
  uint32_t magic;
  uint16_t tag;
  uint16_t status;  // 0 = ok
  uint32_t len;     // data bytes following this header
  uint8_t pad[12];
};
static_assert(sizeof(Response) == 24);

}  // namespace nvmf::host::echo
