// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the NVMe/TCP header
// and data digest.
//
// Convention: crc32c() updates a raw CRC register. It neither inverts the
// seed nor the result, so calls chain over a buffer split in any way:
//
//   uint32_t r = ~0u;
//   r = crc32c(r, a, na);
//   r = crc32c(r, b, nb);
//   uint32_t digest = ~r;   // == crc32c_digest(a||b)
//
// The digest is what NVMe/TCP puts on the wire, stored little-endian
// (put_le32). crc32c_digest("123456789") == 0xE3069283.
//
// SSE4.2 is used when the CPU has it (checked once at run time); otherwise a
// slice-by-8 table. Both accept any alignment.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace nvmf {

uint32_t crc32c(uint32_t crc, const void* data, size_t len);

// Same register convention, over `iovcnt` buffers in order.
uint32_t crc32c_iov(uint32_t crc, const struct iovec* iov, size_t iovcnt);

inline uint32_t crc32c_digest(const void* data, size_t len) {
  return ~crc32c(~0u, data, len);
}

inline uint32_t crc32c_digest_iov(const struct iovec* iov, size_t iovcnt) {
  return ~crc32c_iov(~0u, iov, iovcnt);
}

// The two implementations, exposed for the self test and benchmarks.
namespace crc32c_impl {
uint32_t software(uint32_t crc, const void* data, size_t len);
// Only call when hardware_available() is true.
uint32_t hardware(uint32_t crc, const void* data, size_t len);
bool hardware_available();
}  // namespace crc32c_impl

}  // namespace nvmf
