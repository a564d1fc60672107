// The discovery log page (LID 70h): one entry per (NVM subsystem the host
// may access x listener that subsystem is offered on).
#include <algorithm>
#include <cstring>

#include "core/target.h"
#include "nvme/handlers.h"
#include "transport/transport.h"

namespace nvmf {

namespace {

bool is_ipv6(const std::string& addr) { return addr.find(':') != std::string::npos; }
bool is_wildcard(const std::string& addr) { return addr == "0.0.0.0" || addr == "::"; }

// A wildcard listener cannot be advertised as such: a host must be told an
// address it can connect to. The one it reached us on serves when it is of
// the same family.
std::string advertised_addr(const ListenAddress& l, const std::string& local) {
  if (!is_wildcard(l.address)) return l.address;
  std::string addr;
  uint16_t port = 0;
  if (!split_host_port(local, &addr, &port)) return l.address;
  if (addr.rfind("::ffff:", 0) == 0 && addr.find('.') != std::string::npos) addr.erase(0, 7);
  return is_ipv6(addr) == (l.ipv6 || is_ipv6(l.address)) ? addr : l.address;
}

void fill_tsas(uint8_t trtype, Tsas* t) {
  if (trtype == kTrtypeRdma) {
    t->rdma.qptype = kRdmaQptypeConnected;
    t->rdma.prtype = kRdmaPrtypeNone;  // no provider type specified
    t->rdma.cms = kRdmaCmsRdmaCm;
  } else if (trtype == kTrtypeTcp) {
    t->tcp.sectype = kTcpSectypeNone;
  }
}

bool make_entry(const Subsystem& s, const ListenAddress& l, uint16_t portid, uint16_t asqsz,
                const std::string& local, DiscoveryLogEntry* e) {
  const TransportOps* ops = transport_ops_by_name(l.transport);
  if (!ops) return false;
  *e = DiscoveryLogEntry{};
  e->trtype = ops->trtype;
  e->adrfam = (l.ipv6 || is_ipv6(l.address)) ? kAdrfamIpv6 : kAdrfamIpv4;
  e->subtype = kSubtypeNvme;
  // Secure channel "not specified" (no TLS offered), as the Linux target
  // reports it: nvme-cli and libnvme know that combination. The generic
  // layer honours a host's request to disable SQ flow control (Connect CATTR).
  e->treq = kTreqDisableSqFlow;
  e->portid = portid;
  e->cntlid = kCntlidDynamic;
  e->asqsz = asqsz;
  copy_nul_padded(e->trsvcid, sizeof e->trsvcid, std::to_string(l.port));
  copy_nul_padded(e->subnqn, sizeof e->subnqn, s.nqn());
  copy_nul_padded(e->traddr, sizeof e->traddr, advertised_addr(l, local));
  fill_tsas(ops->trtype, &e->tsas);
  return true;
}

bool offered(const Subsystem& s) {
  SubsystemState st = s.state();
  return s.type() == SubsystemType::Nvm && st != SubsystemState::Inactive &&
         st != SubsystemState::Deactivating;
}

// GENCTR must change whenever the content does and stay put otherwise; a
// hash of the entries does exactly that without a global counter.
uint64_t generation_of(const std::vector<uint8_t>& bytes) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (uint8_t b : bytes) h = (h ^ b) * 1099511628211ull;
  return h;
}

}  // namespace

bool split_host_port(const std::string& s, std::string* addr, uint16_t* port) {
  size_t colon;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    *addr = s.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    *addr = s.substr(0, colon);
  }
  std::string p = s.substr(colon + 1);
  if (p.empty() || p.size() > 5) return false;
  uint32_t v = 0;
  for (char ch : p) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + uint32_t(ch - '0');
  }
  if (v > 65535) return false;
  *port = uint16_t(v);
  return true;
}

std::vector<uint8_t> build_discovery_log(Target& target, const std::string& hostnqn,
                                         const std::string& local) {
  // Both calls take the target's lookup mutex only (never the control-plane
  // one), so they are safe on a reactor.
  std::vector<std::shared_ptr<Subsystem>> subs = target.subsystems();
  std::vector<ListenAddress> listeners = target.listeners();
  uint16_t asqsz = uint16_t(std::max<uint32_t>(target.options().transport.max_admin_queue_depth, 32));

  std::vector<uint8_t> out(sizeof(DiscoveryLogHeader));
  DiscoveryLogEntry e;
  uint64_t numrec = 0;
  for (auto& s : subs) {
    if (!offered(*s) || !s->host_allowed(hostnqn)) continue;
    for (size_t i = 0; i < listeners.size(); i++) {
      if (!s->listener_allowed(listeners[i])) continue;
      if (!make_entry(*s, listeners[i], uint16_t(i), asqsz, local, &e)) continue;
      const uint8_t* p = reinterpret_cast<const uint8_t*>(&e);
      out.insert(out.end(), p, p + sizeof e);
      numrec++;
    }
  }
  DiscoveryLogHeader h{};
  h.genctr = generation_of(out);
  h.numrec = numrec;
  h.recfmt = 0;
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

}  // namespace nvmf
