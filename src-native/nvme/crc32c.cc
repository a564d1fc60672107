// CRC32C: SSE4.2 crc32 instruction when present, slice-by-8 tables otherwise.
// Loads go through memcpy so that any buffer alignment is fine under UBSan;
// compilers turn them into plain (unaligned-tolerant) loads on x86.
#include "nvme/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define NVMF_CRC32C_X86 1
#endif

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the slice-by-8 loop assumes little-endian loads");

namespace nvmf {
namespace {

constexpr uint32_t kPoly = 0x82f63b78;  // 0x1EDC6F41 bit-reversed

// table[k][b] is the CRC of byte b followed by k zero bytes, which lets the
// slice-by-8 loop fold eight input bytes with eight independent lookups.
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][b] = c;
  }
  for (size_t k = 1; k < 8; ++k)
    for (uint32_t b = 0; b < 256; ++b)
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  return t;
}

constexpr Tables kTables = make_tables();

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

#ifdef NVMF_CRC32C_X86
bool detect_sse42() {
  __builtin_cpu_init();  // harmless, and required if called before constructors
  return __builtin_cpu_supports("sse4.2");
}
#endif

}  // namespace

namespace crc32c_impl {

uint32_t software(uint32_t crc, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len >= 8) {
    uint64_t v = load64(p) ^ crc;
    crc = kTables[7][v & 0xff] ^ kTables[6][(v >> 8) & 0xff] ^
          kTables[5][(v >> 16) & 0xff] ^ kTables[4][(v >> 24) & 0xff] ^
          kTables[3][(v >> 32) & 0xff] ^ kTables[2][(v >> 40) & 0xff] ^
          kTables[1][(v >> 48) & 0xff] ^ kTables[0][v >> 56];
    p += 8;
    len -= 8;
  }
  while (len--) crc = (crc >> 8) ^ kTables[0][(crc ^ *p++) & 0xff];
  return crc;
}

#ifdef NVMF_CRC32C_X86

// One dependent crc32q per 8 bytes (3-cycle latency): about 2.5 bytes/cycle,
// ample for one connection's digests. Three interleaved streams merged with
// carry-less multiplies would triple that if profiling ever asks for it.
__attribute__((target("sse4.2"))) uint32_t hardware(uint32_t crc, const void* data,
                                                     size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  uint64_t c = crc;
  while (len >= 8) {
    c = _mm_crc32_u64(c, load64(p));
    p += 8;
    len -= 8;
  }
  crc = static_cast<uint32_t>(c);
#endif
  while (len >= 4) {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    crc = _mm_crc32_u32(crc, v);
    p += 4;
    len -= 4;
  }
  while (len--) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}

bool hardware_available() {
  static const bool has = detect_sse42();
  return has;
}

#else  // no accelerated path on this architecture yet

uint32_t hardware(uint32_t crc, const void* data, size_t len) {
  return software(crc, data, len);
}

bool hardware_available() { return false; }

#endif

}  // namespace crc32c_impl

uint32_t crc32c(uint32_t crc, const void* data, size_t len) {
  if (crc32c_impl::hardware_available()) return crc32c_impl::hardware(crc, data, len);
  return crc32c_impl::software(crc, data, len);
}

uint32_t crc32c_iov(uint32_t crc, const struct iovec* iov, size_t iovcnt) {
  for (size_t i = 0; i < iovcnt; ++i) crc = crc32c(crc, iov[i].iov_base, iov[i].iov_len);
  return crc;
}

}  // namespace nvmf
