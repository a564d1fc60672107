// The discovery log page (LID 70h) turned into plain records. Parsing is a
// pure function so it can be unit-tested and fuzzed on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nvmf::host {

struct DiscoveryEntry {
  uint8_t trtype = 0;   // kTrtype*
  uint8_t adrfam = 0;   // kAdrfam*
  uint8_t subtype = 0;  // kSubtype*
  uint8_t treq = 0;
  uint16_t portid = 0;
  uint16_t cntlid = 0;
  uint16_t asqsz = 0;
  uint16_t eflags = 0;
  std::string trsvcid;
  std::string subnqn;
  std::string traddr;
  uint8_t tcp_sectype = 0;  // TSAS for TCP
};

// At most this many records are read; a target claiming more is refused.
inline constexpr uint64_t kMaxDiscoveryRecords = 4096;

// Parses a whole log page (1024-byte header + records). Records beyond the
// bytes present are not invented: numrec is capped by the length. Strings
// stop at the first NUL or the field end; bytes outside printable ASCII
// become '?'. Returns false with *err when the page is shorter than its
// header.
bool parse_discovery_log(const uint8_t* p, size_t n, uint64_t* genctr,
                         std::vector<DiscoveryEntry>* out, std::string* err);

}  // namespace nvmf::host
