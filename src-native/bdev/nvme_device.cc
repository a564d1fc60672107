// NVMe passthrough bdev, creation: opens the generic char device, reads the
// device's Identify data with synchronous admin ioctls (this runs on a
// control-plane thread, never on a reactor), derives the transfer limits,
// and proves that io_uring passthrough works on it before any namespace can
// use it.
//
// What is mirrored from the device (see README, "NVMe devices"):
// - Identify Namespace: NSZE -> the bdev's size (the exported NSZE/NCAP/
//   NUSE), the current LBA format's data size (LBADS) -> the block size.
//   Formats with metadata or protection information are refused: the
//   fabrics side carries no metadata.
// - Identify Controller: ONCS Compare/DSM/Write Zeroes -> whether those
//   commands are passed through; VWC -> whether Flush goes to the device;
//   MDTS (with the kernel's queue limits) -> the largest command we send.
// - NVM Command Set Identify Controller (CNS 06h): WZSL and DMRSL.
// Device identifiers (EUI64/NGUID/UUID) are not copied: the same IDs behind
// a second subsystem make the Linux host refuse the namespace (and a host
// that sees both paths would take them for one device with two paths).
#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <liburing.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bdev/nvme_bdev.h"
#include "nvme/spec.h"

namespace nvmf {

namespace {

constexpr uint32_t kMaxNlb = 1u << 16;         // the 16-bit NLB field of I/O commands
constexpr uint64_t kMinPage = 4096;            // CAP.MPSMIN assumed 4 KiB (CAP is not readable here)
constexpr uint64_t kFallbackXfer = 128 * 1024;  // when neither MDTS nor sysfs says
constexpr int kProbeTimeoutS = 10;

int fail(std::string* err, const BdevInfo& info, int rc, const std::string& why) {
  if (err) *err = "nvme bdev \"" + info.name + "\": " + why;
  return rc;
}

int fail_errno(std::string* err, const BdevInfo& info, int e, const std::string& what) {
  return fail(err, info, -e, what + " " + info.path + ": " + strerror(e));
}

// A synchronous Identify through the admin passthrough ioctl. Returns 0, the
// NVMe status (> 0) or -errno.
int identify(int fd, uint8_t cns, uint32_t nsid, uint8_t csi, void* buf) {
  nvme_admin_cmd c{};
  c.opcode = uint8_t(AdminOpc::Identify);
  c.nsid = nsid;
  c.addr = reinterpret_cast<uintptr_t>(buf);
  c.data_len = kIdentifyDataLen;
  c.cdw10 = cns;
  c.cdw11 = uint32_t(csi) << 24;
  int rc = ioctl(fd, NVME_IOCTL_ADMIN_CMD, &c);
  return rc < 0 ? -errno : rc;
}

std::string status_text(int rc) {
  if (rc < 0) return strerror(-rc);
  char buf[48];
  snprintf(buf, sizeof buf, "NVMe status 0x%x", unsigned(rc));
  return buf;
}

// ---- sysfs: the namespace's block device and its queue limits ----

// The block device name of the generic char device `rdev` (ngXnY ->
// nvmeXnY) and the sysfs directory holding it, found through
// /sys/dev/char. Empty when the layout is not what we know.
bool sysfs_disk(dev_t rdev, std::string* dir, std::string* disk) {
  char link[64];
  snprintf(link, sizeof link, "/sys/dev/char/%u:%u", major(rdev), minor(rdev));
  char real[PATH_MAX];
  if (realpath(link, real) == nullptr) return false;
  std::string p(real);
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return false;
  std::string name = p.substr(slash + 1);
  if (name.rfind("ng", 0) != 0) return false;
  *dir = p.substr(0, slash);  // the controller (or, multipath, the subsystem)
  *disk = "nvme" + name.substr(2);
  return true;
}

bool read_u64(const std::string& path, uint64_t* out) {
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) return false;
  unsigned long long v = 0;
  int n = fscanf(f, "%llu", &v);
  fclose(f);
  if (n != 1) return false;
  *out = v;
  return true;
}

// The largest data transfer of one passthrough command: what the device
// takes (MDTS) and what the kernel maps for it (max_hw_sectors_kb, and
// max_segments pages for a buffer that is not page aligned).
uint64_t max_transfer(uint8_t mdts, const std::string& dir, const std::string& disk) {
  uint64_t limit = mdts ? (kMinPage << mdts) : 0;
  uint64_t kb = 0, segs = 0;
  const std::string q = dir + "/" + disk + "/queue/";
  if (read_u64(q + "max_hw_sectors_kb", &kb) && kb > 0) {
    limit = limit ? std::min(limit, kb * 1024) : kb * 1024;
  }
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  if (read_u64(q + "max_segments", &segs) && segs > 1) limit = std::min(limit ? limit : UINT64_MAX, (segs - 1) * page);
  return limit ? limit : kFallbackXfer;
}

// ---- the probe ----

// One read of block 0 through a private ring, exactly as the reactors will
// send commands: proves the kernel has io_uring NVMe passthrough and lets
// us use it on this device. Any NVMe status counts as success (the path
// works; an unwritten block may well fail its read).
int probe_passthrough(int fd, uint32_t nsid, uint32_t bs, std::string* why) {
  io_uring ring{};
  io_uring_params p{};
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32;
  int rc = io_uring_queue_init_params(2, &ring, &p);
  if (rc < 0) {
    *why = std::string("io_uring with big SQEs is unavailable (needs Linux 5.19+): ") + strerror(-rc);
    return rc;
  }
  void* buf = std::aligned_alloc(kMinPage, std::max<uint64_t>(bs, kMinPage));
  if (buf == nullptr) {
    io_uring_queue_exit(&ring);
    *why = "out of memory";
    return -ENOMEM;
  }
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  std::memset(static_cast<void*>(sqe), 0, 2 * sizeof(io_uring_sqe));
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd;
  sqe->cmd_op = NVME_URING_CMD_IO;
  auto* c = reinterpret_cast<nvme_uring_cmd*>(sqe->cmd);
  c->opcode = uint8_t(IoOpc::Read);
  c->nsid = nsid;
  c->addr = reinterpret_cast<uintptr_t>(buf);
  c->data_len = bs;
  rc = io_uring_submit(&ring);
  io_uring_cqe* cqe = nullptr;
  if (rc >= 0) {
    __kernel_timespec ts{kProbeTimeoutS, 0};
    rc = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
  }
  if (rc == 0) {
    rc = cqe->res > 0 ? 0 : cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    std::free(buf);
  } else if (rc == -ETIME) {
    rc = -ETIMEDOUT;
    // The kernel may still write into buf until its timeout aborts the
    // command: leave the 4 KiB behind rather than free it under the device.
  } else {
    std::free(buf);
  }
  io_uring_queue_exit(&ring);
  if (rc == -EOPNOTSUPP || rc == -EINVAL) {
    *why = "the kernel has no io_uring NVMe passthrough for it (needs Linux 5.19+): " +
           std::string(strerror(-rc));
  } else if (rc < 0) {
    *why = "io_uring NVMe passthrough failed: " + std::string(strerror(-rc));
  }
  return rc;
}

// ---- Identify data -> BdevInfo and limits ----

int read_namespace(int fd, BdevInfo* info, NvmeDevice* dev, std::string* err) {
  alignas(4096) IdentifyNamespace ns{};
  int rc = identify(fd, uint8_t(Cns::Namespace), dev->nsid, 0, &ns);
  if (rc != 0) {
    return fail(err, *info, rc < 0 ? rc : -EIO,
                "Identify Namespace " + std::to_string(dev->nsid) + " of " + info->path +
                    " failed: " + status_text(rc));
  }
  // FLBAS bits 3:0 index the format; bits 6:5 extend it past 16 formats.
  const unsigned idx = (ns.flbas & 0x0f) | (ns.nlbaf >= 16 ? ((ns.flbas >> 5) & 0x3) << 4 : 0);
  if (idx > ns.nlbaf || idx >= 64) {
    return fail(err, *info, -EINVAL, info->path + " reports an invalid LBA format index " + std::to_string(idx));
  }
  const LbaFormat& f = ns.lbaf[idx];
  if (f.ms != 0 || (ns.dps & 0x7) != 0) {
    return fail(err, *info, -EINVAL,
                info->path + " is formatted with " + std::to_string(f.ms) +
                    " metadata bytes per block (LBA format " + std::to_string(idx) +
                    "); only formats without metadata or protection information can be exported "
                    "(reformat with nvme format --lbaf=N)");
  }
  if (f.lbads < 9 || f.lbads > 16) {
    return fail(err, *info, -EINVAL,
                info->path + " has an unsupported block size 2^" + std::to_string(f.lbads));
  }
  if (ns.nsze == 0) return fail(err, *info, -EINVAL, info->path + " has no blocks (NSZE 0)");
  info->block_size = 1u << f.lbads;
  info->num_blocks = ns.nsze;
  return 0;
}

int read_controller(int fd, BdevInfo* info, NvmeDevice* dev, std::string* err) {
  alignas(4096) IdentifyController id{};
  int rc = identify(fd, uint8_t(Cns::Controller), 0, 0, &id);
  if (rc != 0) {
    return fail(err, *info, rc < 0 ? rc : -EIO,
                "Identify Controller of " + info->path + " failed: " + status_text(rc));
  }
  info->supports_compare = id.oncs & kOncsCompare;
  info->supports_deallocate = id.oncs & kOncsDsm;
  info->supports_write_zeroes = id.oncs & kOncsWriteZeroes;
  info->volatile_cache = id.vwc & kVwcPresent;

  // NVM Command Set controller data: optional (NVMe 2.0); all zero = no limits.
  alignas(4096) uint8_t nvm[kIdentifyDataLen] = {};
  if (identify(fd, uint8_t(Cns::IoCmdSetController), 0, kCsiNvm, nvm) != 0) std::memset(nvm, 0, sizeof nvm);
  const uint8_t wzsl = nvm[1];  // log2, in units of the minimum page size
  uint32_t dmrsl = 0;           // blocks per DSM range
  std::memcpy(&dmrsl, nvm + 4, sizeof dmrsl);

  const uint64_t bs = info->block_size;
  uint64_t wz = wzsl ? (kMinPage << std::min<unsigned>(wzsl, 40)) / bs : kMaxNlb;
  dev->max_wz_blocks = uint32_t(std::clamp<uint64_t>(wz, 1, kMaxNlb));
  dev->max_dsm_blocks = dmrsl ? dmrsl : UINT32_MAX;

  struct stat st {};
  std::string dir, disk;
  uint64_t xfer = kFallbackXfer;
  if (fstat(fd, &st) == 0 && sysfs_disk(st.st_rdev, &dir, &disk)) {
    xfer = max_transfer(id.mdts, dir, disk);
  } else if (id.mdts) {
    xfer = kMinPage << id.mdts;
  }
  xfer = std::min<uint64_t>(xfer, UINT32_MAX);
  dev->max_xfer_blocks = uint32_t(std::clamp<uint64_t>(xfer / bs, 1, kMaxNlb));
  // Tests lower every per-command limit to exercise the splitting on devices
  // whose own limits are far above what hosts send (emulated drives).
  if (const char* v = std::getenv("NVMF_NVME_MAX_CMD_BYTES"); v != nullptr && *v != '\0') {
    const uint64_t cap = std::max<uint64_t>(std::strtoull(v, nullptr, 0) / bs, 1);
    dev->max_xfer_blocks = uint32_t(std::min<uint64_t>(dev->max_xfer_blocks, cap));
    dev->max_wz_blocks = uint32_t(std::min<uint64_t>(dev->max_wz_blocks, cap));
    dev->max_dsm_blocks = uint32_t(std::min<uint64_t>(dev->max_dsm_blocks, cap));
  }
  info->max_transfer_bytes = uint32_t(uint64_t(dev->max_xfer_blocks) * bs);
  return 0;
}

// Holds the namespace's block device O_EXCL, as the uring backend does for
// block devices: a mounted or otherwise claimed namespace is refused, and
// nothing can mount it while it is exported. Reading or writing it directly
// (nvme-cli, dd without O_EXCL) stays possible. Best effort: no block device
// found, nothing held.
int claim_block_device(int fd, BdevInfo* info, NvmeDevice* dev, std::string* err) {
  struct stat st {};
  std::string dir, disk;
  if (fstat(fd, &st) != 0 || !sysfs_disk(st.st_rdev, &dir, &disk)) return 0;
  const std::string blk = "/dev/" + disk;
  int bfd = open(blk.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
  if (bfd >= 0) {
    dev->excl_fd = bfd;
    return 0;
  }
  if (errno == EBUSY) {
    return fail(err, *info, -EBUSY,
                info->path + ": its block device " + blk + " is in use (mounted or claimed)");
  }
  return 0;  // no such node here (containers, renamed): nothing to hold
}

// Opens the path and checks that it is an NVMe namespace's generic char
// device. Returns the fd or -errno.
int open_char_device(BdevInfo* info, std::string* err) {
  struct stat st {};
  if (stat(info->path.c_str(), &st) < 0) {
    if (errno == ENOENT) {
      return fail(err, *info, -ENOENT,
                  "path " + info->path + " does not exist (expected an NVMe generic char device, /dev/ngXnY)");
    }
    return fail_errno(err, *info, errno, "cannot stat");
  }
  if (S_ISBLK(st.st_mode)) {
    return fail(err, *info, -EINVAL,
                "path " + info->path +
                    " is a block device; give its NVMe generic char device (/dev/ngXnY), or use type 'uring'");
  }
  if (!S_ISCHR(st.st_mode)) {
    return fail(err, *info, -EINVAL,
                "path " + info->path + " is not a character device (expected /dev/ngXnY)");
  }
  int fd = open(info->path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail_errno(err, *info, errno, "cannot open");
  // fstat, not the earlier stat: the node may have been replaced in between.
  if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
    close(fd);
    return fail(err, *info, -EINVAL, "path " + info->path + " is not a character device");
  }
  return fd;
}

}  // namespace

int bdev_create_nvme(BdevInfo info, std::shared_ptr<Bdev>* out, std::string* err) {
  if (info.path.empty()) {
    return fail(err, info, -EINVAL, "path is required (the NVMe generic char device, /dev/ngXnY)");
  }
  int fd = open_char_device(&info, err);
  if (fd < 0) return fd;
  NvmeDevice dev;
  dev.fd = fd;
  int rc = 0;
  int id = ioctl(fd, NVME_IOCTL_ID);
  if (id <= 0) {
    rc = fail(err, info, -EINVAL,
              "path " + info.path + " is not an NVMe namespace generic char device (/dev/ngXnY): " +
                  (id < 0 ? strerror(errno) : "no namespace id"));
  }
  if (rc == 0) {
    dev.nsid = uint32_t(id);
    rc = read_namespace(fd, &info, &dev, err);
  }
  if (rc == 0) rc = read_controller(fd, &info, &dev, err);
  if (rc == 0) {
    std::string why;
    rc = probe_passthrough(fd, dev.nsid, info.block_size, &why);
    if (rc < 0) rc = fail(err, info, rc, info.path + ": " + why);
  }
  if (rc == 0) rc = claim_block_device(fd, &info, &dev, err);
  if (rc < 0) {
    close(fd);
    if (dev.excl_fd >= 0) close(dev.excl_fd);
    return rc;
  }
  info.type = "nvme";
  info.direct = true;  // no page cache between us and the device
  info.removable = true;
  rc = make_nvme_bdev(std::move(info), dev, out);
  if (rc < 0 && err) *err = "out of memory";
  return rc;
}

}  // namespace nvmf
