#include "transport/transport.h"

namespace nvmf {

extern const TransportOps kRdmaTransportOps;  // transport/rdma.cc

std::string ListenAddress::str() const {
  // A bare IPv6 address would be ambiguous next to ":port", hence the brackets.
  const bool v6 = ipv6 || address.find(':') != std::string::npos;
  std::string host = v6 ? "[" + address + "]" : address;
  return transport + ":" + host + ":" + std::to_string(port);
}

const TransportOps* transport_ops_by_name(const std::string& name) {
  if (name == kTcpTransportOps.name) return &kTcpTransportOps;
  if (name == kRdmaTransportOps.name) return &kRdmaTransportOps;
  return nullptr;
}

}  // namespace nvmf
