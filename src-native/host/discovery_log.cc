#include "host/discovery_log.h"

#include <cstring>

#include "nvme/spec.h"

namespace nvmf::host {

namespace {

std::string printable(const char* src, size_t n) {
  std::string s(bounded_str(src, n));
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return s;
}

}  // namespace

bool parse_discovery_log(const uint8_t* p, size_t n, uint64_t* genctr,
                         std::vector<DiscoveryEntry>* out, std::string* err) {
  out->clear();
  if (n < sizeof(DiscoveryLogHeader)) {
    *err = "discovery log page shorter than its 1024-byte header";
    return false;
  }
  DiscoveryLogHeader h;
  std::memcpy(&h, p, sizeof h);
  *genctr = h.genctr;
  uint64_t present = (n - sizeof h) / sizeof(DiscoveryLogEntry);
  uint64_t count = h.numrec < present ? h.numrec : present;
  if (count > kMaxDiscoveryRecords) count = kMaxDiscoveryRecords;
  out->reserve(size_t(count));
  for (uint64_t i = 0; i < count; i++) {
    DiscoveryLogEntry e;
    std::memcpy(&e, p + sizeof h + i * sizeof e, sizeof e);
    DiscoveryEntry d;
    d.trtype = e.trtype;
    d.adrfam = e.adrfam;
    d.subtype = e.subtype;
    d.treq = e.treq;
    d.portid = e.portid;
    d.cntlid = e.cntlid;
    d.asqsz = e.asqsz;
    d.eflags = e.eflags;
    d.trsvcid = printable(e.trsvcid, sizeof e.trsvcid);
    d.subnqn = printable(e.subnqn, sizeof e.subnqn);
    d.traddr = printable(e.traddr, sizeof e.traddr);
    d.tcp_sectype = e.tsas.tcp.sectype;
    out->push_back(std::move(d));
  }
  return true;
}

}  // namespace nvmf::host
