// How the host library reports a failure: a stable NvmfError code plus a
// message naming the command/queue, and the errno or NVMe status behind it.
// Plain data, no N-API: the binding turns it into an NvmfError, the perf
// tool and fio engine print it.
#pragma once

#include <string>

namespace nvmf::host {

struct HostError {
  const char* code = nullptr;  // nullptr = success; else "ERR_..."
  std::string message;
  int err = 0;            // positive errno, when one applies
  int nvme_status = -1;   // (SCT << 8) | SC, when an NVMe completion failed
  std::string reason;     // ERR_AUTH_FAILED: the AUTH_Failure reason ("failed", ...)

  bool ok() const { return code == nullptr; }

  static HostError connection(std::string msg, int err = 0) {
    return {"ERR_CONNECTION", std::move(msg), err, -1, {}};
  }
  static HostError timeout(std::string msg) { return {"ERR_TIMEOUT", std::move(msg), 110, -1, {}}; }
  static HostError invalid(std::string msg) { return {"ERR_INVALID_ARGUMENT", std::move(msg), 0, -1, {}}; }
  static HostError nvme(std::string msg, int status) {
    return {"ERR_NVME_STATUS", std::move(msg), 0, status, {}};
  }
  static HostError io(std::string msg, int err = 0) { return {"ERR_IO", std::move(msg), err, -1, {}}; }
  static HostError auth(std::string msg, std::string reason = "") {
    return {"ERR_AUTH_FAILED", std::move(msg), 0, -1, std::move(reason)};
  }
  static HostError resource(std::string msg, int err) {
    return {"ERR_RESOURCE", std::move(msg), err, -1, {}};
  }
};

}  // namespace nvmf::host
