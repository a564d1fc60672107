#include "host/identify_decode.h"

#include <cstdio>
#include <cstring>

namespace nvmf::host {

NamespaceInfo decode_namespace(const IdentifyNamespace& ns, const uint8_t* desc, size_t desc_len) {
  NamespaceInfo i;
  i.nsze = ns.nsze;
  i.ncap = ns.ncap;
  i.nuse = ns.nuse;
  i.nsfeat = ns.nsfeat;
  i.nlbaf = ns.nlbaf;
  i.flbas = ns.flbas;
  i.nmic = ns.nmic;
  i.dlfeat = ns.dlfeat;
  // FLBAS: format index bits 3:0, and bits 6:5 as the high bits (NVMe 2.0).
  i.lbaf_index = uint8_t((ns.flbas & 0x0f) | (((ns.flbas >> 5) & 0x3) << 4));
  if (i.lbaf_index <= ns.nlbaf && i.lbaf_index < 64) {
    const LbaFormat& f = ns.lbaf[i.lbaf_index];
    if (f.lbads >= 9 && f.lbads < 32) i.block_size = 1u << f.lbads;
    i.metadata_size = f.ms;
  }
  std::memcpy(i.nguid, ns.nguid, 16);
  std::memcpy(i.eui64, ns.eui64, 8);
  if (desc != nullptr) {
    size_t off = 0;
    while (off + sizeof(NsIdDescHeader) <= desc_len) {
      NsIdDescHeader h;
      std::memcpy(&h, desc + off, sizeof h);
      if (h.nidt == 0) break;
      off += sizeof h;
      if (h.nidl > desc_len - off) break;  // truncated: ignore the rest
      const uint8_t* v = desc + off;
      if (h.nidt == uint8_t(Nidt::Uuid) && h.nidl == 16) {
        std::memcpy(i.uuid, v, 16);
        i.has_uuid = true;
      } else if (h.nidt == uint8_t(Nidt::Nguid) && h.nidl == 16 && all_zero(i.nguid, 16)) {
        std::memcpy(i.nguid, v, 16);
      } else if (h.nidt == uint8_t(Nidt::Eui64) && h.nidl == 8 && all_zero(i.eui64, 8)) {
        std::memcpy(i.eui64, v, 8);
      }
      off += h.nidl;
    }
  }
  return i;
}

std::string ascii_field(const char* p, size_t n) {
  std::string s(bounded_str(p, n));
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return s;
}

std::string hex_string(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; i++) {
    s += d[p[i] >> 4];
    s += d[p[i] & 0xf];
  }
  return s;
}

std::string uuid_string(const uint8_t u[16]) {
  std::string h = hex_string(u, 16);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != 0) return false;
  }
  return true;
}

std::string version_string(uint32_t ver) {
  char b[32];
  std::snprintf(b, sizeof b, "%u.%u.%u", ver >> 16, (ver >> 8) & 0xff, ver & 0xff);
  return b;
}

std::vector<uint32_t> decode_ns_list(const uint8_t* p, size_t n) {
  std::vector<uint32_t> out;
  for (size_t off = 0; off + 4 <= n; off += 4) {
    uint32_t id = get_le32(p + off);
    if (id == 0) break;
    out.push_back(id);
  }
  return out;
}

}  // namespace nvmf::host
