// NVMe passthrough bdev, data path. Every BdevIo becomes one or more NVMe
// commands (struct nvme_uring_cmd in a big SQE) on the submitting reactor's
// ring; the kernel maps the caller's buffers straight into the device's DMA
// (no copy of ours), and the CQE result is the device's own status.
//
// Decisions:
// - Commands of one BdevIo run one after another, each within the device's
//   limits (MDTS and the kernel's queue limits for data, WZSL for Write
//   Zeroes, DMRSL per deallocated range). A transfer larger than the device
//   takes is split; a split never cuts a block across two commands, so an
//   iovec list whose boundaries fall inside blocks can only go in one piece
//   (when it does not fit, the I/O fails with -EINVAL; the transports hand
//   us one buffer, so this does not happen in practice).
// - Deallocate sends one range per command: the range in device format
//   lives in the BdevIo scratch (no allocation per I/O), and hosts send few,
//   large ranges.
// - Status: CQE res > 0 is the NVMe status (SCT/SC/CRD/More/DNR) of the
//   device; it reaches the host unchanged through BdevIo::nvme_status.
//   res < 0 is the kernel's -errno. The kernel also makes up path statuses
//   of its own (host pathing error 0x370, aborted by host 0x371) when the
//   local controller resets or goes away; a fabrics host would treat those
//   as "try another path" and could spin on them, so they become Namespace
//   Not Ready (retryable) and the owner is asked to check the device.
// - Hot removal: -ENODEV/-ENXIO means the device is gone: the bdev fails
//   everything from then on with Invalid Namespace (DNR: the namespace is
//   being removed; a host must not retry) and tells its owner (on_gone),
//   which removes the namespaces off the reactor. I/O the kernel holds
//   completes through the kernel (with an error once the device is gone);
//   nothing here waits for a device.
// - No timeouts of our own: the kernel's NVMe I/O timeout (nvme_core.io_timeout)
//   aborts a stuck command and completes it with an error, so every command
//   completes.
#include <linux/nvme_ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>
#include <type_traits>

#include "bdev/nvme_bdev.h"
#include "core/poll_group.h"
#include "core/reactor.h"
#include "core/uring.h"
#include "nvme/spec.h"

namespace nvmf {

namespace {

constexpr unsigned kRingEntries = 256;
// The kernel refuses longer vectors (UIO_MAXIOV).
constexpr int kMaxVec = 1024;
// A device that is gone fails I/O with this (see the decisions above).
constexpr uint16_t kGoneStatus = cqe_status(GenericSc::InvalidNamespaceOrFormat, true);
// How often a run of kernel path errors may ask the owner to check the device.
constexpr uint64_t kSuspectIntervalNs = 100'000'000;

static_assert(sizeof(nvme_uring_cmd) <= 80, "nvme_uring_cmd must fit the big half of an SQE128");

class NvmeBdev;

// Completion record of one BdevIo, in its scratch area. The SQE's user_data
// points at `op`.
struct NvmeIo {
  UringOp op;
  BdevIo* io;
  NvmeBdev* bdev;
  Uring* ring;
  uint32_t done;   // blocks done: of the command, or of the current range (Deallocate)
  uint32_t chunk;  // blocks the command in flight covers
  uint32_t range;  // Deallocate: index of the current range
  uint8_t opc;     // NVMe opcode (IoOpc)
  DsmRange dsm;    // Deallocate: the range the command in flight sends
};
static_assert(sizeof(NvmeIo) <= sizeof(BdevIo::scratch), "NvmeIo must fit BdevIo::scratch");
static_assert(alignof(NvmeIo) <= 8, "BdevIo::scratch is 8-byte aligned");
static_assert(std::is_standard_layout_v<NvmeIo> && offsetof(NvmeIo, op) == 0,
              "the UringOp* of a CQE must convert back to its NvmeIo*");
static_assert(std::is_trivially_destructible_v<NvmeIo>, "scratch is reused without destruction");

NvmeIo* from_op(UringOp* op) { return reinterpret_cast<NvmeIo*>(op); }

// Calls the submitter back; the last thing that touches `u` (the callback
// may recycle the BdevIo and drop the last reference to the bdev).
void complete(NvmeIo* u, int status) {
  BdevIo* io = u->io;
  io->cb(io, status);
}

class NvmeBdev final : public Bdev {
 public:
  NvmeBdev(BdevInfo info, const NvmeDevice& dev) : Bdev(std::move(info)), dev_(dev) {}
  ~NvmeBdev() override {
    close(dev_.fd);
    if (dev_.excl_fd >= 0) close(dev_.excl_fd);
  }

  void submit(PollGroup& group, BdevIo* io) override;
  void compare(PollGroup& group, BdevIo* io) override { start(group, io, uint8_t(IoOpc::Compare)); }

 private:
  bool in_range(uint64_t lba, uint64_t nlb) const {
    return nlb <= info_.num_blocks && lba <= info_.num_blocks - nlb;
  }
  void start(PollGroup& group, BdevIo* io, uint8_t opc);
  int check(const NvmeIo* u) const;
  int issue(NvmeIo* u);
  int issue_data(NvmeIo* u);
  nvme_uring_cmd* new_cmd(NvmeIo* u, bool vec);
  void fail(NvmeIo* u, int32_t res);
  void gone(const char* why);
  void suspect();

  static void cmd_done(UringOp* op, int32_t res, const io_uring_cqe* cqe);

  const NvmeDevice dev_;
  std::atomic<bool> gone_{false};
  std::atomic<uint64_t> last_suspect_ns_{0};
};

// The group's ring must have big SQEs/CQEs; the uring backend creates it so
// whichever backend comes first. A ring without them (a kernel before 5.19)
// cannot carry passthrough commands.
int ensure_big_ring(PollGroup& group) {
  if (!group.uring.ready()) return group.uring.init(group.reactor(), kRingEntries, true);
  return group.uring.big() ? 0 : -EOPNOTSUPP;
}

uint8_t opcode_of(BdevOp op) {
  switch (op) {
    case BdevOp::Read: return uint8_t(IoOpc::Read);
    case BdevOp::Write: return uint8_t(IoOpc::Write);
    case BdevOp::Flush: return uint8_t(IoOpc::Flush);
    case BdevOp::WriteZeroes: return uint8_t(IoOpc::WriteZeroes);
    case BdevOp::Deallocate: return uint8_t(IoOpc::DatasetManagement);
  }
  return 0xff;
}

bool has_data(uint8_t opc) {
  return opc == uint8_t(IoOpc::Read) || opc == uint8_t(IoOpc::Write) ||
         opc == uint8_t(IoOpc::Compare);
}

void NvmeBdev::submit(PollGroup& group, BdevIo* io) { start(group, io, opcode_of(io->op)); }

void NvmeBdev::start(PollGroup& group, BdevIo* io, uint8_t opc) {
  if (gone_.load(std::memory_order_relaxed)) {
    io->nvme_status = kGoneStatus;
    io->cb(io, -ENODEV);
    return;
  }
  int rc = ensure_big_ring(group);
  if (rc < 0) {
    io->cb(io, rc);
    return;
  }
  auto* u = new (io->scratch) NvmeIo{};
  u->io = io;
  u->bdev = this;
  u->ring = &group.uring;
  u->opc = opc;
  rc = check(u);
  if (rc == 0) rc = issue(u);
  if (rc != 0) complete(u, rc > 0 ? 0 : rc);  // > 0: nothing to do
}

// Same checks as the other backends (the NVMe layer checked the range
// already); a failed command changes nothing.
int NvmeBdev::check(const NvmeIo* u) const {
  const BdevIo* io = u->io;
  if (has_data(u->opc)) {
    if (!in_range(io->lba, io->nlb)) return -ERANGE;
    if (io->nlb == 0) return 1;
    uint64_t total = 0;
    for (int i = 0; i < io->iovcnt; i++) total += io->iov[i].iov_len;
    return total == uint64_t(io->nlb) * info_.block_size ? 0 : -EINVAL;
  }
  if (u->opc == uint8_t(IoOpc::WriteZeroes)) return in_range(io->lba, io->nlb) ? 0 : -ERANGE;
  if (u->opc == uint8_t(IoOpc::DatasetManagement)) {
    for (uint32_t i = 0; i < io->nranges; i++) {
      if (!in_range(io->ranges[i].lba, io->ranges[i].nlb)) return -ERANGE;
    }
    return 0;
  }
  return u->opc == uint8_t(IoOpc::Flush) ? 0 : -EOPNOTSUPP;
}

// An SQE for one passthrough command on this namespace, or nullptr when the
// ring is full.
nvme_uring_cmd* NvmeBdev::new_cmd(NvmeIo* u, bool vec) {
  io_uring_sqe* sqe = u->ring->get_sqe(&u->op);  // zeroed, both halves
  if (sqe == nullptr) return nullptr;
  u->op.cb = cmd_done;
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = dev_.fd;
  sqe->cmd_op = vec ? NVME_URING_CMD_IO_VEC : NVME_URING_CMD_IO;
  auto* c = reinterpret_cast<nvme_uring_cmd*>(sqe->cmd);
  c->opcode = u->opc;
  c->nsid = dev_.nsid;
  return c;
}

void set_lba(nvme_uring_cmd* c, uint64_t slba, uint32_t nlb) {
  c->cdw10 = uint32_t(slba);
  c->cdw11 = uint32_t(slba >> 32);
  c->cdw12 = nlb - 1;  // NLB is 0's based
}

// Queues the next command of `u`. Returns 0 when one is queued, 1 when the
// I/O is complete, or -errno.
int NvmeBdev::issue(NvmeIo* u) {
  const BdevIo* io = u->io;
  switch (IoOpc(u->opc)) {
    case IoOpc::Read:
    case IoOpc::Write:
    case IoOpc::Compare: return issue_data(u);
    case IoOpc::Flush: {
      if (u->done > 0) return 1;
      nvme_uring_cmd* c = new_cmd(u, false);
      if (c == nullptr) return -EAGAIN;
      u->chunk = 1;
      return 0;
    }
    case IoOpc::WriteZeroes: {
      if (u->done >= io->nlb) return 1;
      const uint32_t n = std::min(io->nlb - u->done, dev_.max_wz_blocks);
      nvme_uring_cmd* c = new_cmd(u, false);
      if (c == nullptr) return -EAGAIN;
      set_lba(c, io->lba + u->done, n);
      u->chunk = n;
      return 0;
    }
    case IoOpc::DatasetManagement: {
      while (u->range < io->nranges && u->done >= io->ranges[u->range].nlb) {
        u->range++;
        u->done = 0;
      }
      if (u->range >= io->nranges) return 1;
      const BdevRange& r = io->ranges[u->range];
      const uint32_t n = std::min(r.nlb - u->done, dev_.max_dsm_blocks);
      nvme_uring_cmd* c = new_cmd(u, false);
      if (c == nullptr) return -EAGAIN;
      u->dsm = DsmRange{0, n, r.lba + u->done};
      c->addr = reinterpret_cast<uintptr_t>(&u->dsm);
      c->data_len = sizeof u->dsm;
      c->cdw10 = 0;  // NR: one range (0's based)
      c->cdw11 = kDsmAd;
      u->chunk = n;
      return 0;
    }
    default: break;
  }
  return -EOPNOTSUPP;
}

// Read/Write/Compare: the next piece of the iovecs, at most max_xfer_blocks.
// Whole iovecs go as one vectored command when they fit and end on a block
// boundary; otherwise a part of one iovec goes alone.
int NvmeBdev::issue_data(NvmeIo* u) {
  const BdevIo* io = u->io;
  if (u->done >= io->nlb) return 1;
  const uint64_t bs = info_.block_size;
  const uint64_t max_bytes = uint64_t(std::min(io->nlb - u->done, dev_.max_xfer_blocks)) * bs;
  uint64_t skip = uint64_t(u->done) * bs;
  int i = 0;
  while (i < io->iovcnt && skip >= io->iov[i].iov_len) skip -= io->iov[i++].iov_len;
  if (i == io->iovcnt) return -EINVAL;  // unreachable: check() matched the total

  int vec_cnt = 0;
  uint64_t bytes = 0;
  if (skip == 0 && io->iovcnt - i > 1) {
    uint64_t sum = 0;
    for (int j = i; j < io->iovcnt && j - i < kMaxVec; j++) {
      if (sum + io->iov[j].iov_len > max_bytes) break;
      sum += io->iov[j].iov_len;
      if (sum % bs == 0) {
        vec_cnt = j - i + 1;
        bytes = sum;
      }
    }
    if (vec_cnt < 2) vec_cnt = 0;
  }
  if (vec_cnt == 0) {
    bytes = std::min<uint64_t>(io->iov[i].iov_len - skip, max_bytes);
    bytes -= bytes % bs;
    if (bytes == 0) return -EINVAL;  // a block split across iovecs that need two commands
  }
  nvme_uring_cmd* c = new_cmd(u, vec_cnt > 0);
  if (c == nullptr) return -EAGAIN;
  const uint32_t n = uint32_t(bytes / bs);
  if (vec_cnt > 0) {
    c->addr = reinterpret_cast<uintptr_t>(io->iov + i);
    c->data_len = uint32_t(vec_cnt);
  } else {
    c->addr = reinterpret_cast<uintptr_t>(static_cast<uint8_t*>(io->iov[i].iov_base) + skip);
    c->data_len = uint32_t(bytes);
  }
  set_lba(c, io->lba + u->done, n);
  u->chunk = n;
  return 0;
}

void NvmeBdev::cmd_done(UringOp* op, int32_t res, const io_uring_cqe* /*cqe*/) {
  NvmeIo* u = from_op(op);
  if (res != 0) return u->bdev->fail(u, res);
  u->done += u->chunk;
  int rc = u->bdev->issue(u);
  if (rc != 0) complete(u, rc > 0 ? 0 : rc);
}

void NvmeBdev::fail(NvmeIo* u, int32_t res) {
  BdevIo* io = u->io;
  if (res > 0) {
    // The kernel's status word is the CQE status field shifted right by one
    // (no phase bit): DNR is bit 14, SCT bits 10:8, SC bits 7:0.
    const uint16_t st = uint16_t(uint32_t(res) << 1);
    const uint8_t sct = (res >> 8) & 0x7;
    const uint8_t sc = res & 0xff;
    if (sct == uint8_t(Sct::Path) && sc >= uint8_t(PathSc::HostPathingError)) {
      suspect();
      io->nvme_status = gone_.load(std::memory_order_relaxed)
                            ? kGoneStatus
                            : cqe_status(GenericSc::NamespaceNotReady);
    } else {
      io->nvme_status = st;
    }
    return complete(u, -EIO);
  }
  if (res == -ENODEV || res == -ENXIO) {
    gone(strerror(-res));
    io->nvme_status = kGoneStatus;
  }
  complete(u, res);
}

void NvmeBdev::gone(const char* why) {
  if (gone_.exchange(true)) return;
  fprintf(stderr, "nvmf-target: nvme bdev %s: device %s is gone (%s); removing its namespaces\n",
          info_.name.c_str(), info_.path.c_str(), why);
  if (on_gone) on_gone(true);
}

// Asks the owner to look at the device node, at most every 100 ms.
void NvmeBdev::suspect() {
  if (!on_gone || gone_.load(std::memory_order_relaxed)) return;
  const uint64_t now = now_ns();
  uint64_t last = last_suspect_ns_.load(std::memory_order_relaxed);
  if (now - last < kSuspectIntervalNs) return;
  if (!last_suspect_ns_.compare_exchange_strong(last, now)) return;
  on_gone(false);
}

}  // namespace

int make_nvme_bdev(BdevInfo info, const NvmeDevice& dev, std::shared_ptr<Bdev>* out) {
  try {
    *out = std::make_shared<NvmeBdev>(std::move(info), dev);
    return 0;
  } catch (const std::bad_alloc&) {
    close(dev.fd);
    if (dev.excl_fd >= 0) close(dev.excl_fd);
    return -ENOMEM;
  }
}

}  // namespace nvmf
