// File or block device bdev driven by the submitting reactor's io_uring
// (PollGroup::uring). Nothing here blocks a reactor: reads and writes are
// async in the kernel, and fsync/fallocate are punted by io_uring to its own
// worker threads.
//
// Decisions:
// - The group ring is created on first use with big SQEs/CQEs (SQE128|CQE32)
//   so the NVMe passthrough backend can share it whichever backend touches
//   the group first; the cost is 64 extra bytes zeroed per SQE. A kernel
//   without big-SQE support (< 5.19) gets a normal ring.
// - Deallocated blocks must read as zeroes (we advertise DLFEAT "read
//   zeroes"), so Deallocate is FALLOC_FL_PUNCH_HOLE: a hole in a file, and on
//   a block device a Write Zeroes that may unmap (the kernel's NOFALLBACK
//   zero-out) -- never BLKDISCARD, whose data afterwards is undefined and
//   which is a synchronous ioctl that could stall the reactor for seconds.
// - WriteZeroes is FALLOC_FL_ZERO_RANGE (files and block devices alike; the
//   kernel uses the device's Write Zeroes or writes zero pages itself).
// - Whatever fallocate mode is unsupported (-EOPNOTSUPP/-EINVAL) falls back
//   to the next one, finally to writing from a shared zero buffer; the bdev
//   remembers so later commands skip the failing attempt.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>
#include <type_traits>

#include "bdev/bdev.h"
#include "core/poll_group.h"
#include "core/uring.h"

namespace nvmf {

namespace {

constexpr unsigned kRingEntries = 256;
// readv/writev reject more iovecs (UIO_MAXIOV); longer lists go in pieces
// through the short-transfer path.
constexpr int kMaxIov = 1024;
// One SQE moves at most this much (the SQE length field is 32 bits).
constexpr uint64_t kMaxChunk = 1ull << 30;

// Source of zero-writes. Never written, so it stays in .bss and every page
// maps the kernel's shared zero page: no memory cost. Page aligned for O_DIRECT.
constexpr uint64_t kZeroBytes = 1 << 20;
alignas(4096) uint8_t g_zeroes[kZeroBytes];

// How a range is being zeroed, in order of preference.
enum class ZeroMethod : uint8_t { Punch, ZeroRange, Write };

class UringBdev;

// Completion record of one BdevIo, living in its scratch area (no allocation
// per I/O). The SQE's user_data points at `op`.
struct UringIo {
  UringOp op;
  BdevIo* io;
  UringBdev* bdev;
  Uring* ring;
  uint64_t done;      // Read/Write: bytes done; zeroing: bytes done in this range
  uint32_t range;     // zeroing: index of the current range
  ZeroMethod method;  // zeroing: method for the current range
};
static_assert(sizeof(UringIo) <= sizeof(BdevIo::scratch), "UringIo must fit BdevIo::scratch");
static_assert(alignof(UringIo) <= 8, "BdevIo::scratch is 8-byte aligned");
static_assert(std::is_standard_layout_v<UringIo> && offsetof(UringIo, op) == 0,
              "the UringOp* of a CQE must convert back to its UringIo*");
static_assert(std::is_trivially_destructible_v<UringIo>, "scratch is reused without destruction");

UringIo* from_op(UringOp* op) { return reinterpret_cast<UringIo*>(op); }

class UringBdev final : public Bdev {
 public:
  UringBdev(BdevInfo info, int fd) : Bdev(std::move(info)), fd_(fd) {}
  ~UringBdev() override { close(fd_); }

  void submit(PollGroup& group, BdevIo* io) override;

 private:
  bool in_range(uint64_t lba, uint64_t nlb) const {
    return nlb <= info_.num_blocks && lba <= info_.num_blocks - nlb;
  }
  int start(UringIo* u);
  int check_rw(const BdevIo* io) const;
  int check_ranges(const BdevIo* io) const;

  int issue_rw(UringIo* u);
  int issue_flush(UringIo* u);
  int issue_zero(UringIo* u);
  ZeroMethod first_method(BdevOp op) const;
  bool range_at(const UringIo* u, uint64_t* off, uint64_t* len) const;
  void fall_back(UringIo* u);

  static void rw_done(UringOp* op, int32_t res, const io_uring_cqe* cqe);
  static void flush_done(UringOp* op, int32_t res, const io_uring_cqe* cqe);
  static void zero_done(UringOp* op, int32_t res, const io_uring_cqe* cqe);

  const int fd_;
  // Cleared for good the first time the kernel refuses the mode on this fd,
  // by whichever reactor sees it first (relaxed: a stale read costs one
  // extra failed fallocate, nothing else).
  std::atomic<bool> punch_ok_{true};
  std::atomic<bool> zero_range_ok_{true};
};

// Calls the submitter back. Must be the last thing that touches `u`: the
// callback may recycle the BdevIo (and its scratch) and drop the last
// reference to the bdev.
void complete(UringIo* u, int status) {
  BdevIo* io = u->io;
  io->cb(io, status);
}

// Lazily sets up the group's ring on its reactor (see the decisions above).
int ensure_ring(PollGroup& group) {
  if (group.uring.ready()) return 0;
  int rc = group.uring.init(group.reactor(), kRingEntries, true);
  if (rc == -EINVAL) rc = group.uring.init(group.reactor(), kRingEntries, false);
  return rc;
}

void UringBdev::submit(PollGroup& group, BdevIo* io) {
  int rc = ensure_ring(group);
  if (rc < 0) {
    io->cb(io, rc);
    return;
  }
  auto* u = new (io->scratch) UringIo{};
  u->io = io;
  u->bdev = this;
  u->ring = &group.uring;
  rc = start(u);
  if (rc != 0) complete(u, rc > 0 ? 0 : rc);  // > 0: nothing to do
}

// Returns 0 when an SQE is queued, 1 when the command had nothing to do,
// or -errno.
int UringBdev::start(UringIo* u) {
  const BdevIo* io = u->io;
  switch (io->op) {
    case BdevOp::Read:
    case BdevOp::Write: {
      int rc = check_rw(io);
      if (rc != 0) return rc;
      return issue_rw(u);
    }
    case BdevOp::Flush:
      return issue_flush(u);
    case BdevOp::WriteZeroes:
      if (!in_range(io->lba, io->nlb)) return -ERANGE;
      u->method = first_method(io->op);
      return issue_zero(u);
    case BdevOp::Deallocate: {
      int rc = check_ranges(io);
      if (rc != 0) return rc;
      u->method = first_method(io->op);
      return issue_zero(u);
    }
  }
  return -EOPNOTSUPP;
}

// The iovs must hold exactly nlb blocks: the kernel moves all of them.
int UringBdev::check_rw(const BdevIo* io) const {
  if (!in_range(io->lba, io->nlb)) return -ERANGE;
  if (io->nlb == 0) return 1;
  uint64_t total = 0;
  for (int i = 0; i < io->iovcnt; i++) total += io->iov[i].iov_len;
  return total == uint64_t(io->nlb) * info_.block_size ? 0 : -EINVAL;
}

// Every range is checked before any is touched: a failed command changes nothing.
int UringBdev::check_ranges(const BdevIo* io) const {
  for (uint32_t i = 0; i < io->nranges; i++) {
    if (!in_range(io->ranges[i].lba, io->ranges[i].nlb)) return -ERANGE;
  }
  return 0;
}

// ---- Read / Write ----

// Queues the part not yet transferred (all of it the first time). A short
// transfer that ended inside an iovec continues with a plain read/write of
// that iovec's rest; the array itself is the submitter's and stays untouched.
int UringBdev::issue_rw(UringIo* u) {
  const BdevIo* io = u->io;
  uint64_t skip = u->done;
  int i = 0;
  while (i < io->iovcnt && skip >= io->iov[i].iov_len) skip -= io->iov[i++].iov_len;
  if (i == io->iovcnt) return -EINVAL;  // unreachable: check_rw matched the total

  io_uring_sqe* sqe = u->ring->get_sqe(&u->op);
  if (sqe == nullptr) return -EAGAIN;
  u->op.cb = rw_done;
  const bool rd = io->op == BdevOp::Read;
  const uint64_t off = io->lba * info_.block_size + u->done;
  const int left = io->iovcnt - i;
  if (skip != 0 || left == 1) {
    auto* p = static_cast<uint8_t*>(io->iov[i].iov_base) + skip;
    uint64_t n = io->iov[i].iov_len - skip;
    if (n > kMaxChunk) n = kMaxChunk;
    if (rd) {
      io_uring_prep_read(sqe, fd_, p, unsigned(n), off);
    } else {
      io_uring_prep_write(sqe, fd_, p, unsigned(n), off);
    }
  } else {
    const unsigned cnt = unsigned(left < kMaxIov ? left : kMaxIov);
    if (rd) {
      io_uring_prep_readv(sqe, fd_, io->iov + i, cnt, off);
    } else {
      io_uring_prep_writev(sqe, fd_, io->iov + i, cnt, off);
    }
  }
  return 0;
}

void UringBdev::rw_done(UringOp* op, int32_t res, const io_uring_cqe* /*cqe*/) {
  UringIo* u = from_op(op);
  // 0 bytes inside the namespace: the file was truncated behind our back.
  if (res <= 0) return complete(u, res < 0 ? res : -EIO);
  u->done += uint64_t(res);
  if (u->done == uint64_t(u->io->nlb) * u->bdev->info_.block_size) return complete(u, 0);
  int rc = u->bdev->issue_rw(u);
  if (rc < 0) complete(u, rc);
}

// ---- Flush ----

// fdatasync: the data and whatever metadata is needed to read it back (file
// size, allocation); a block device gets a cache flush.
int UringBdev::issue_flush(UringIo* u) {
  io_uring_sqe* sqe = u->ring->get_sqe(&u->op);
  if (sqe == nullptr) return -EAGAIN;
  u->op.cb = flush_done;
  io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
  return 0;
}

void UringBdev::flush_done(UringOp* op, int32_t res, const io_uring_cqe* /*cqe*/) {
  complete(from_op(op), res < 0 ? res : 0);
}

// ---- WriteZeroes / Deallocate: ranges one at a time, chained ----

ZeroMethod UringBdev::first_method(BdevOp op) const {
  if (op == BdevOp::Deallocate && punch_ok_.load(std::memory_order_relaxed)) {
    return ZeroMethod::Punch;
  }
  return zero_range_ok_.load(std::memory_order_relaxed) ? ZeroMethod::ZeroRange
                                                        : ZeroMethod::Write;
}

// The byte range of the current range (WriteZeroes has one, the command's).
bool UringBdev::range_at(const UringIo* u, uint64_t* off, uint64_t* len) const {
  const BdevIo* io = u->io;
  const uint64_t bs = info_.block_size;
  if (io->op == BdevOp::WriteZeroes) {
    if (u->range > 0) return false;
    *off = io->lba * bs;
    *len = uint64_t(io->nlb) * bs;
    return true;
  }
  if (u->range >= io->nranges) return false;
  *off = io->ranges[u->range].lba * bs;
  *len = uint64_t(io->ranges[u->range].nlb) * bs;
  return true;
}

// Queues the next step of the current range, skipping empty ranges.
// Returns 1 once every range is done.
int UringBdev::issue_zero(UringIo* u) {
  uint64_t off = 0;
  uint64_t len = 0;
  while (true) {
    if (!range_at(u, &off, &len)) return 1;
    if (len > u->done) break;
    u->range++;
    u->done = 0;
  }
  io_uring_sqe* sqe = u->ring->get_sqe(&u->op);
  if (sqe == nullptr) return -EAGAIN;
  u->op.cb = zero_done;
  switch (u->method) {
    case ZeroMethod::Punch:
      io_uring_prep_fallocate(sqe, fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(off),
                              off_t(len));
      break;
    case ZeroMethod::ZeroRange:
      io_uring_prep_fallocate(sqe, fd_, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off_t(off),
                              off_t(len));
      break;
    case ZeroMethod::Write: {
      uint64_t n = len - u->done;
      if (n > kZeroBytes) n = kZeroBytes;
      io_uring_prep_write(sqe, fd_, g_zeroes, unsigned(n), off + u->done);
      break;
    }
  }
  return 0;
}

// The kernel refused the fallocate mode: remember it and use the next one.
void UringBdev::fall_back(UringIo* u) {
  if (u->method == ZeroMethod::Punch) {
    punch_ok_.store(false, std::memory_order_relaxed);
    u->method = zero_range_ok_.load(std::memory_order_relaxed) ? ZeroMethod::ZeroRange
                                                               : ZeroMethod::Write;
  } else {
    zero_range_ok_.store(false, std::memory_order_relaxed);
    u->method = ZeroMethod::Write;
  }
}

void UringBdev::zero_done(UringOp* op, int32_t res, const io_uring_cqe* /*cqe*/) {
  UringIo* u = from_op(op);
  UringBdev* b = u->bdev;
  const bool fallocated = u->method != ZeroMethod::Write;
  if (fallocated && (res == -EOPNOTSUPP || res == -EINVAL)) {
    b->fall_back(u);
  } else if (res < 0) {
    return complete(u, res);
  } else if (fallocated) {
    u->range++;  // the whole range in one go
    u->done = 0;
    u->method = b->first_method(u->io->op);
  } else if (res == 0) {
    return complete(u, -EIO);
  } else {
    u->done += uint64_t(res);  // next chunk, or the next range via issue_zero
  }
  int rc = b->issue_zero(u);
  if (rc != 0) complete(u, rc > 0 ? 0 : rc);
}

// ---- creation ----

bool valid_block_size(uint32_t bs) {
  return bs >= 512 && bs <= 4096 && (bs & (bs - 1)) == 0;
}

std::string block_size_error(uint32_t bs) {
  return "blockSize " + std::to_string(bs) + " must be a power of two from 512 to 4096";
}

int fail(std::string* err, const BdevInfo& info, int rc, const std::string& why) {
  if (err) *err = "uring bdev \"" + info.name + "\": " + why;
  return rc;
}

int fail_errno(std::string* err, const BdevInfo& info, int e, const std::string& what) {
  return fail(err, info, -e, what + " " + info.path + ": " + strerror(e));
}

// O_DIRECT needs file offsets aligned to what the filesystem reports; a
// smaller block size would fail every I/O with -EINVAL, so refuse it now.
int check_direct_alignment(int fd, const BdevInfo& info, std::string* err) {
#ifdef STATX_DIOALIGN
  struct statx stx {};
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
      (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align > info.block_size) {
    return fail(err, info, -EINVAL,
                "blockSize " + std::to_string(info.block_size) +
                    " is smaller than the direct I/O alignment (" +
                    std::to_string(stx.stx_dio_offset_align) + ") of " + info.path);
  }
#else
  (void)fd, (void)info, (void)err;
#endif
  return 0;
}

// A regular file: grown to num_blocks when given, else sized by its length.
int setup_file(int fd, const struct stat& st, BdevInfo* info, std::string* err) {
  if (info->block_size == 0) info->block_size = 512;
  const uint32_t bs = info->block_size;
  if (!valid_block_size(bs)) return fail(err, *info, -EINVAL, block_size_error(bs));
  if (info->direct) {
    int rc = check_direct_alignment(fd, *info, err);
    if (rc < 0) return rc;
  }
  if (info->num_blocks == 0) {
    if (st.st_size == 0) {
      return fail(err, *info, -EINVAL, info->path + " is empty (give sizeBytes to size it)");
    }
    if (uint64_t(st.st_size) % bs != 0) {
      return fail(err, *info, -EINVAL,
                  "size " + std::to_string(st.st_size) + " of " + info->path +
                      " is not a multiple of blockSize " + std::to_string(bs));
    }
    info->num_blocks = uint64_t(st.st_size) / bs;
  } else {
    if (info->num_blocks > uint64_t(INT64_MAX) / bs) {
      return fail(err, *info, -EINVAL, "sizeBytes is too large");
    }
    const uint64_t size = info->num_blocks * bs;
    // A longer file keeps its tail; only the first sizeBytes are exposed.
    if (uint64_t(st.st_size) < size && ftruncate(fd, off_t(size)) < 0) {
      return fail_errno(err, *info, errno, "cannot extend");
    }
  }
  // Punched holes read as zeroes.
  info->supports_deallocate = true;
  return 0;
}

// 1 when the block device accepts Write Zeroes (the kernel's hole punch on a
// block device needs it), read from sysfs; a partition's queue is its disk's.
bool blockdev_write_zeroes(dev_t rdev) {
  char path[96];
  for (const char* dir : {"queue", "../queue"}) {
    std::snprintf(path, sizeof path, "/sys/dev/block/%u:%u/%s/write_zeroes_max_bytes",
                  major(rdev), minor(rdev), dir);
    FILE* f = std::fopen(path, "re");
    if (f == nullptr) continue;
    unsigned long long v = 0;
    int n = std::fscanf(f, "%llu", &v);
    std::fclose(f);
    return n == 1 && v > 0;
  }
  return false;
}

// A block device: size and logical block size come from the device.
int setup_blockdev(int fd, const struct stat& st, BdevInfo* info, std::string* err) {
  uint64_t bytes = 0;
  int lbs = 0;
  if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) return fail_errno(err, *info, errno, "BLKGETSIZE64 on");
  if (ioctl(fd, BLKSSZGET, &lbs) < 0) return fail_errno(err, *info, errno, "BLKSSZGET on");
  if (info->block_size == 0) info->block_size = uint32_t(lbs);
  const uint32_t bs = info->block_size;
  if (bs != uint32_t(lbs)) {
    return fail(err, *info, -EINVAL,
                "blockSize " + std::to_string(bs) + " does not match the logical block size (" +
                    std::to_string(lbs) + ") of " + info->path);
  }
  if (!valid_block_size(bs)) return fail(err, *info, -EINVAL, block_size_error(bs));
  const uint64_t dev_blocks = bytes / bs;
  if (dev_blocks == 0) return fail(err, *info, -EINVAL, info->path + " has no blocks");
  if (info->num_blocks > dev_blocks) {
    return fail(err, *info, -EINVAL,
                "sizeBytes " + std::to_string(info->num_blocks * uint64_t(bs)) +
                    " exceeds the size (" + std::to_string(bytes) + ") of " + info->path);
  }
  // sizeBytes may expose a prefix of the device; 0 means all of it.
  if (info->num_blocks == 0) info->num_blocks = dev_blocks;
  // Without device Write Zeroes a deallocate would become a full zero write
  // (mkfs deallocates the whole namespace); better not to offer it.
  info->supports_deallocate = blockdev_write_zeroes(st.st_rdev);
  return 0;
}

// Opens (or creates) the path. O_EXCL on a block device refuses one that is
// mounted or claimed by another user: exporting it would corrupt both.
int open_path(BdevInfo* info, bool* created, std::string* err) {
  struct stat st {};
  const bool exists = stat(info->path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) return fail_errno(err, *info, errno, "cannot stat");
  if (!exists && info->num_blocks == 0) {
    return fail(err, *info, -ENOENT,
                info->path + " does not exist (give sizeBytes to create it)");
  }
  if (exists && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return fail(err, *info, -EINVAL, info->path + " is neither a regular file nor a block device");
  }
  int flags = O_RDWR | O_CLOEXEC | (info->direct ? O_DIRECT : 0);
  if (!exists) flags |= O_CREAT | O_EXCL;
  if (exists && S_ISBLK(st.st_mode)) flags |= O_EXCL;
  int fd = open(info->path.c_str(), flags, 0600);
  if (fd < 0) {
    int e = errno;
    std::string what = "cannot open";
    if (e == EINVAL && info->direct) what = "cannot open (O_DIRECT not supported?)";
    return fail_errno(err, *info, e, what);
  }
  *created = !exists;
  return fd;
}

int setup(int fd, BdevInfo* info, std::string* err) {
  struct stat st {};
  // fstat, not the earlier stat: the path may have been replaced in between.
  if (fstat(fd, &st) < 0) return fail_errno(err, *info, errno, "cannot stat");
  if (S_ISBLK(st.st_mode)) return setup_blockdev(fd, st, info, err);
  if (S_ISREG(st.st_mode)) return setup_file(fd, st, info, err);
  return fail(err, *info, -EINVAL, info->path + " is neither a regular file nor a block device");
}

}  // namespace

int bdev_create_uring(BdevInfo info, std::shared_ptr<Bdev>* out, std::string* err) {
  if (info.path.empty()) return fail(err, info, -EINVAL, "path is required");
  bool created = false;
  int fd = open_path(&info, &created, err);
  if (fd < 0) return fd;
  int rc = setup(fd, &info, err);
  if (rc == 0) {
    info.type = "uring";
    // The page cache (buffered) or the device's write cache (O_DIRECT) may
    // hold acknowledged writes: Flush must reach fdatasync.
    info.volatile_cache = true;
    info.supports_write_zeroes = true;
    info.max_transfer_bytes = 0;
    try {
      *out = std::make_shared<UringBdev>(std::move(info), fd);
      return 0;
    } catch (const std::bad_alloc&) {
      rc = fail(err, info, -ENOMEM, "out of memory");
    }
  }
  close(fd);
  // Leave no half-made file behind (the caller never saw it).
  if (created) unlink(info.path.c_str());
  return rc;
}

}  // namespace nvmf
