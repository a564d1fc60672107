// One NVMe command in flight on a qpair. Transports embed it in their own
// request type, preallocated per qpair (no allocation per I/O). The data
// buffer is allocated once per request, on first use, at the transport's
// maximum transfer size, and reused for the qpair's lifetime.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>

#include "bdev/bdev.h"
#include "core/resources.h"
#include "nvme/spec.h"

namespace nvmf {

class Qpair;
struct Namespace;

enum class XferDir : uint8_t { None, HostToCtrl, CtrlToHost };

struct Request {
  Qpair* qpair = nullptr;
  SqEntry cmd{};
  CqEntry cpl{};
  XferDir xfer = XferDir::None;
  uint32_t length = 0;  // bytes the command moves (from its SGL)

  // Where the data is: for HostToCtrl the transport fills it before
  // request_exec(); for CtrlToHost the command fills it (or points it at bdev
  // memory, zero-copy) before request_complete().
  static constexpr int kMaxIov = 4;
  iovec iov[kMaxIov]{};
  int iovcnt = 0;

  // The request's own buffer (lazily allocated, `buf_cap` bytes, 4 KiB aligned).
  uint8_t* buf = nullptr;
  uint32_t buf_cap = 0;

  // Pins the namespace (and its bdev) while the command runs.
  std::shared_ptr<Namespace> ns;
  BdevIo bio{};
  uint64_t start_ns = 0;
  // Command-specific scratch (e.g. Compare keeps its second buffer here).
  uint8_t* aux = nullptr;
  uint32_t aux_cap = 0;
  // Counts buf and aux in the target's resources while they exist.
  std::shared_ptr<Resources> buf_res;

  Request() = default;
  ~Request();
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // Points iov at the request's own buffer, `len` bytes (allocating it the
  // first time, at `cap` bytes). Returns false when len > cap or on ENOMEM.
  bool use_own_buffer(uint32_t len, uint32_t cap);
  // Allocates aux (once, `cap` bytes, 4 KiB aligned). False on ENOMEM.
  bool alloc_aux(uint32_t cap);
  // Copies up to `len` bytes of `src` into the data iov (CtrlToHost
  // commands that build their payload: identify, log pages).
  uint32_t copy_to_iov(const void* src, uint32_t len);
  uint32_t copy_from_iov(void* dst, uint32_t len) const;

  // Resets per-command state before reuse (keeps buf).
  void reset();

  // Completion helpers.
  void set_status(Status s, bool dnr = false) { cpl.status = cqe_status(s, dnr); }
  bool ok() const { return (cpl.status >> 1) == 0; }
};

}  // namespace nvmf
