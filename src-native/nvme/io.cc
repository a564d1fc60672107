// NVM I/O commands: Read, Write, Compare, Write Zeroes, Flush, Dataset
// Management. Each command pins its namespace (req->ns, which keeps the bdev
// alive) and runs one or more BdevIo on req->bio; the bdev completes on this
// reactor, possibly inline, so nothing touches req after a submit.
//
// exec.cc raised subsystem.io_inflight before calling exec_io(); every path
// out of here goes through finish() or fail(), which lower it exactly once.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/controller.h"
#include "nvme/exec.h"
#include "nvme/handlers.h"

namespace nvmf {

namespace {

// req->aux layout: a 4 KiB scratch header (the Compare read's iovec, or the
// Deallocate ranges: 256 x 16 bytes) followed by a data area of the request
// buffer's size, so the data stays 4 KiB aligned for O_DIRECT backends.
constexpr uint32_t kAuxHeader = 4096;
static_assert(kDsmMaxRanges * sizeof(BdevRange) <= kAuxHeader);

Subsystem& subsys_of(Request* req) { return req->qpair->ctrlr->subsystem(); }

void fail(Request* req, Status s, bool dnr = true) {
  subsys_of(req).io_inflight.fetch_sub(1, std::memory_order_seq_cst);
  request_complete_status(req, s, dnr);
}

void finish(Request* req) { fail(req, GenericSc::Success, false); }

const BdevInfo& info(Request* req) { return req->ns->bdev->info(); }

bool in_range(const BdevInfo& b, uint64_t slba, uint64_t nlb) {
  return slba <= b.num_blocks && nlb <= b.num_blocks - slba;
}

// Pins the command's namespace in req->ns. Fails req and returns false when
// the NSID names no active namespace.
bool pin_ns(Request* req, uint32_t nsid) {
  req->ns = subsys_of(req).ns_table()->get(nsid);
  if (req->ns && req->ns->bdev) return true;
  fail(req, GenericSc::InvalidNamespaceOrFormat);
  return false;
}

// The status for a failed bdev I/O. Media errors may be transient (no DNR);
// running out of space is not.
void fail_bdev(Request* req, int err, BdevOp op) {
  if (err == -EIO) {
    fail(req, op == BdevOp::Read ? MediaSc::UnrecoveredReadError : MediaSc::WriteFault, false);
  } else if (err == -ENOSPC) {
    fail(req, GenericSc::CapacityExceeded, true);
  } else if (err == -ECANCELED) {
    // Given back by the backend at shutdown: never executed, may be retried.
    fail(req, GenericSc::AbortedSqDeletion, false);
  } else {
    fail(req, GenericSc::InternalError, false);
  }
}

// A status the device itself returned (BdevIo::nvme_status), passed to the
// host as it is: SCT, SC and DNR. CRD and More are dropped: we report no
// retry delay times (CRDT) and keep no error log entries.
void fail_device(Request* req, uint16_t st) {
  fail(req, Status(Sct((st >> 9) & 0x7), uint8_t(st >> 1)), (st & kStatusDnr) != 0);
}

bool ensure_aux(Request* req, uint32_t data_bytes) {
  if (!req->aux) {
    // Allocated once at the largest size any command on this queue needs.
    uint32_t cap = kAuxHeader + request_buffer_cap(*req->qpair);
    if (!req->alloc_aux(cap)) return false;  // counted in the target's resources
  }
  return uint64_t(data_bytes) + kAuxHeader <= req->aux_cap;
}

void bdev_done(BdevIo* io, int status);

BdevIo& prepare(Request* req, BdevOp op, uint64_t lba, uint32_t nlb, const iovec* iov, int iovcnt) {
  BdevIo& b = req->bio;
  b.op = op;
  b.lba = lba;
  b.nlb = nlb;
  b.iov = iov;
  b.iovcnt = iovcnt;
  b.ranges = nullptr;
  b.nranges = 0;
  b.cb = bdev_done;
  b.ctx = req;
  b.nvme_status = 0;
  return b;
}

void submit(Request* req, BdevOp op, uint64_t lba, uint32_t nlb, const iovec* iov, int iovcnt) {
  req->ns->bdev->submit(req->qpair->group(), &prepare(req, op, lba, nlb, iov, iovcnt));
}

// Checks SLBA/NLB and that the data length matches; fails req otherwise.
bool check_rw(Request* req, const RwArgs& a, bool has_data) {
  const BdevInfo& b = info(req);
  if (!in_range(b, a.slba, a.nlb)) {
    fail(req, GenericSc::LbaOutOfRange);
    return false;
  }
  if (has_data && uint64_t(a.nlb) * b.block_size != req->length) {
    fail(req, GenericSc::DataSglLengthInvalid);
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Read, Write, Write Zeroes.

void read_done(Request* req) {
  req->qpair->stats.bytes_read += req->length;
  finish(req);
}

void io_read(Request* req) {
  auto a = RwArgs::decode(req->cmd);
  if (!pin_ns(req, req->cmd.nsid) || !check_rw(req, a, true)) return;
  const BdevInfo& b = info(req);
  if (uint8_t* mem = req->ns->bdev->memory(); mem && req->qpair->zero_copy_reads) {
    // Zero copy: the transport sends straight from bdev memory, which
    // req->ns keeps alive until the request is recycled.
    req->iov[0].iov_base = mem + a.slba * b.block_size;
    req->iov[0].iov_len = req->length;
    req->iovcnt = 1;
    read_done(req);
    return;
  }
  uint32_t cap = request_buffer_cap(*req->qpair);
  if (!req->use_own_buffer(req->length, cap)) {
    bool too_big = req->length > std::max(cap, req->buf_cap);
    fail(req, too_big ? Status(GenericSc::DataSglLengthInvalid) : Status(GenericSc::InternalError),
         too_big);
    return;
  }
  submit(req, BdevOp::Read, a.slba, a.nlb, req->iov, req->iovcnt);
}

void io_write(Request* req) {
  auto a = RwArgs::decode(req->cmd);
  if (!pin_ns(req, req->cmd.nsid) || !check_rw(req, a, true)) return;
  submit(req, BdevOp::Write, a.slba, a.nlb, req->iov, req->iovcnt);
}

void io_write_zeroes(Request* req) {
  auto a = RwArgs::decode(req->cmd);
  if (!pin_ns(req, req->cmd.nsid) || !check_rw(req, a, false)) return;
  if (!info(req).supports_write_zeroes) {
    fail(req, GenericSc::InvalidOpcode);
    return;
  }
  submit(req, BdevOp::WriteZeroes, a.slba, a.nlb, nullptr, 0);
}

// A write that must be durable (FUA) on a bdev with a volatile cache is
// followed by a Flush: BdevIo has no FUA flag of its own.
bool needs_fua_flush(Request* req) {
  return RwArgs::decode(req->cmd).fua && info(req).volatile_cache;
}

void write_done(Request* req, BdevOp op) {
  if (op != BdevOp::Flush && needs_fua_flush(req)) {
    submit(req, BdevOp::Flush, 0, 0, nullptr, 0);
    return;
  }
  if (IoOpc(req->cmd.opc) == IoOpc::Write) req->qpair->stats.bytes_written += req->length;
  finish(req);
}

// ---------------------------------------------------------------------------
// Compare.

// Whether the host data in req->iov equals `len` bytes at `p`.
bool host_data_equals(const Request* req, const uint8_t* p, uint64_t len) {
  uint64_t off = 0;
  for (int i = 0; i < req->iovcnt && off < len; i++) {
    uint64_t n = std::min<uint64_t>(req->iov[i].iov_len, len - off);
    if (std::memcmp(req->iov[i].iov_base, p + off, n) != 0) return false;
    off += n;
  }
  return off == len;
}

void compare_result(Request* req, const uint8_t* media) {
  if (host_data_equals(req, media, req->length)) {
    finish(req);
  } else {
    fail(req, MediaSc::CompareFailure);
  }
}

void io_compare(Request* req) {
  auto a = RwArgs::decode(req->cmd);
  if (!pin_ns(req, req->cmd.nsid) || !check_rw(req, a, true)) return;
  if (uint8_t* mem = req->ns->bdev->memory()) {
    compare_result(req, mem + a.slba * info(req).block_size);
    return;
  }
  if (info(req).supports_compare) {  // the device compares (NVMe passthrough)
    req->ns->bdev->compare(req->qpair->group(),
                           &prepare(req, BdevOp::Read, a.slba, a.nlb, req->iov, req->iovcnt));
    return;
  }
  if (!ensure_aux(req, req->length)) {
    fail(req, GenericSc::InternalError, false);
    return;
  }
  iovec* v = new (req->aux) iovec{req->aux + kAuxHeader, req->length};
  submit(req, BdevOp::Read, a.slba, a.nlb, v, 1);
}

// ---------------------------------------------------------------------------
// Flush.

// Flushes the next namespace after `after` whose bdev has a volatile cache
// (Flush with NSID FFFFFFFFh walks them one by one), or completes.
void flush_next(Request* req, uint32_t after) {
  std::shared_ptr<const NsTable> t = subsys_of(req).ns_table();
  for (uint32_t nsid = after + 1; nsid <= t->max_nsid(); nsid++) {
    std::shared_ptr<Namespace> ns = t->get(nsid);
    if (ns && ns->bdev && ns->bdev->info().volatile_cache) {
      req->ns = std::move(ns);
      submit(req, BdevOp::Flush, 0, 0, nullptr, 0);
      return;
    }
  }
  finish(req);
}

void io_flush(Request* req) {
  if (req->cmd.nsid == kNsidAll) {
    flush_next(req, 0);
    return;
  }
  if (!pin_ns(req, req->cmd.nsid)) return;
  if (!info(req).volatile_cache) {  // nothing volatile to write back
    finish(req);
    return;
  }
  submit(req, BdevOp::Flush, 0, 0, nullptr, 0);
}

// ---------------------------------------------------------------------------
// Dataset Management.

// Reads and checks the ranges into the aux header. Returns how many to
// deallocate (empty ranges dropped), or -1 after failing req.
int read_dsm_ranges(Request* req, uint32_t nr) {
  uint32_t bytes = nr * uint32_t(sizeof(DsmRange));
  if (req->length < bytes) {
    fail(req, GenericSc::DataSglLengthInvalid);
    return -1;
  }
  if (!ensure_aux(req, bytes)) {
    fail(req, GenericSc::InternalError, false);
    return -1;
  }
  uint8_t* raw = req->aux + kAuxHeader;
  if (req->copy_from_iov(raw, bytes) != bytes) {
    fail(req, GenericSc::DataSglLengthInvalid);
    return -1;
  }
  BdevRange* out = reinterpret_cast<BdevRange*>(req->aux);
  const BdevInfo& b = info(req);
  int n = 0;
  for (uint32_t i = 0; i < nr; i++) {
    DsmRange r;
    std::memcpy(&r, raw + i * sizeof r, sizeof r);
    if (!in_range(b, r.slba, r.nlb)) {
      fail(req, GenericSc::LbaOutOfRange);
      return -1;
    }
    if (r.nlb) new (&out[n++]) BdevRange{r.slba, r.nlb};
  }
  return n;
}

void io_dsm(Request* req) {
  uint32_t nr = (req->cmd.cdw10 & 0xff) + 1;
  if (!pin_ns(req, req->cmd.nsid)) return;
  // Without the deallocate attribute the command only carries hints.
  if (!(req->cmd.cdw11 & kDsmAd)) {
    finish(req);
    return;
  }
  int n = read_dsm_ranges(req, nr);
  if (n < 0) return;
  // Deallocation is advisory: a bdev that cannot do it just keeps the data.
  if (n == 0 || !info(req).supports_deallocate) {
    finish(req);
    return;
  }
  BdevIo& bio = req->bio;
  bio.op = BdevOp::Deallocate;
  bio.lba = 0;
  bio.nlb = 0;
  bio.iov = nullptr;
  bio.iovcnt = 0;
  bio.ranges = reinterpret_cast<const BdevRange*>(req->aux);
  bio.nranges = uint32_t(n);
  bio.cb = bdev_done;
  bio.ctx = req;
  bio.nvme_status = 0;
  req->ns->bdev->submit(req->qpair->group(), &bio);
}

// ---------------------------------------------------------------------------

void bdev_done(BdevIo* io, int status) {
  Request* req = static_cast<Request*>(io->ctx);
  if (status < 0) {
    if (io->nvme_status != 0) {
      fail_device(req, io->nvme_status);
    } else {
      fail_bdev(req, status, io->op);
    }
    return;
  }
  switch (IoOpc(req->cmd.opc)) {
    case IoOpc::Read: read_done(req); return;
    case IoOpc::Write:
    case IoOpc::WriteZeroes: write_done(req, io->op); return;
    case IoOpc::Compare:
      if (info(req).supports_compare) {  // compared on the device
        finish(req);
        return;
      }
      compare_result(req, req->aux + kAuxHeader);
      return;
    case IoOpc::Flush:
      if (req->cmd.nsid == kNsidAll) {
        flush_next(req, req->ns->nsid);
        return;
      }
      finish(req);
      return;
    default: finish(req); return;  // Dataset Management
  }
}

}  // namespace

void exec_io(Request* req) {
  switch (IoOpc(req->cmd.opc)) {
    case IoOpc::Read: io_read(req); return;
    case IoOpc::Write: io_write(req); return;
    case IoOpc::Compare: io_compare(req); return;
    case IoOpc::WriteZeroes: io_write_zeroes(req); return;
    case IoOpc::Flush: io_flush(req); return;
    case IoOpc::DatasetManagement: io_dsm(req); return;
    default: break;
  }
  fail(req, GenericSc::InvalidOpcode);
}

}  // namespace nvmf
