// Internal helpers shared by the command handlers in nvme/ (fabrics.cc,
// admin.cc, io.cc, discovery.cc). Not part of any other layer's interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/request.h"
#include "nvme/spec.h"

namespace nvmf {

class Qpair;
class Target;

// The capacity a request's own buffer is allocated with: the transport's
// maximum transfer size, never less than one Identify page.
uint32_t request_buffer_cap(const Qpair& q);

// Completes a controller-to-host command whose payload is `n` bytes at
// `src`: points req->iov at the request's own buffer, sized to the command's
// transfer length, copies what fits and zero-fills the rest (the buffer is
// reused across commands, so stale bytes must never reach the host).
void complete_with_data(Request* req, const void* src, size_t n);

// Serves the window [offset, offset + len) of a log page image: bytes past
// the end of the page read as zero. Completes req.
void complete_with_log(Request* req, const uint8_t* page, size_t page_size, uint64_t offset,
                       uint64_t len);

// The discovery log page (header + entries) a host with `hostnqn` may see.
// `local` is the "addr:port" the host reached us on: it replaces wildcard
// listen addresses (0.0.0.0, ::) in the entries.
std::vector<uint8_t> build_discovery_log(Target& target, const std::string& hostnqn,
                                         const std::string& local);

// Splits "addr:port" / "[v6addr]:port" into its parts. False if malformed.
bool split_host_port(const std::string& s, std::string* addr, uint16_t* port);

}  // namespace nvmf
