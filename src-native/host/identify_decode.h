// Identify data decoded into what callers want to print or compute with:
// trimmed strings, the namespace block size, IDs from the namespace
// identification descriptor list. Pure functions over untrusted bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nvme/spec.h"

namespace nvmf::host {

struct NamespaceInfo {
  uint64_t nsze = 0;
  uint64_t ncap = 0;
  uint64_t nuse = 0;
  uint8_t nsfeat = 0;
  uint8_t nlbaf = 0;
  uint8_t flbas = 0;
  uint8_t lbaf_index = 0;    // the format in use
  uint32_t block_size = 0;   // 0 when the format is out of range
  uint16_t metadata_size = 0;
  uint8_t nmic = 0;
  uint8_t dlfeat = 0;
  uint8_t nguid[16]{};
  uint8_t eui64[8]{};
  bool has_uuid = false;
  uint8_t uuid[16]{};
};

// `desc` is the CNS 03h descriptor list (may be null when the controller
// refused it); its NGUID/EUI-64 fill in zero fields of the namespace data.
NamespaceInfo decode_namespace(const IdentifyNamespace& ns, const uint8_t* desc, size_t desc_len);

// An ASCII field of Identify data (SN, MN, FR, NQN): up to the first NUL,
// trailing spaces removed, non-printable bytes replaced by '?'.
std::string ascii_field(const char* p, size_t n);
std::string hex_string(const uint8_t* p, size_t n);
std::string uuid_string(const uint8_t u[16]);
bool all_zero(const uint8_t* p, size_t n);
// "1.4.0" from the VER field.
std::string version_string(uint32_t ver);
// Active namespace list (CNS 02h): the NSIDs before the first zero.
std::vector<uint32_t> decode_ns_list(const uint8_t* p, size_t n);

}  // namespace nvmf::host
