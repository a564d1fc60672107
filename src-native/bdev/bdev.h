// Block backends ("bdevs"). A bdev is created by the control plane, shared by
// namespaces (shared_ptr: in-flight I/O pins it) and driven from any reactor:
// submit() runs on the calling reactor and completes on that same reactor,
// either inline (RAM) or later from the reactor's io_uring.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/resources.h"

namespace nvmf {

class PollGroup;

enum class BdevOp : uint8_t { Read, Write, Flush, WriteZeroes, Deallocate };

struct BdevRange {
  uint64_t lba;
  uint32_t nlb;
};

struct BdevIo;
// status: 0, or -errno (-EIO, -ENOSPC, ...). Called exactly once per submit,
// on the submitting reactor, possibly before submit() returns.
using BdevCb = void (*)(BdevIo* io, int status);

struct BdevIo {
  BdevOp op = BdevOp::Read;
  uint64_t lba = 0;           // in bdev blocks
  uint32_t nlb = 0;           // number of blocks (1-based count)
  const iovec* iov = nullptr; // Read destination / Write source
  int iovcnt = 0;
  const BdevRange* ranges = nullptr;  // Deallocate
  uint32_t nranges = 0;
  BdevCb cb = nullptr;
  void* ctx = nullptr;
  // The NVMe status a device failed the I/O with (the CQE status field,
  // phase bit clear), set by passthrough backends (nvme) together with a
  // negative cb status so the host gets it unchanged; 0 = derive one from the
  // -errno. The submitter clears it before each submit.
  uint16_t nvme_status = 0;
  // Backend scratch owned by the submitter's memory (no allocation per I/O):
  // e.g. the uring backend keeps its completion record here.
  alignas(8) uint8_t scratch[64];
};

struct BdevInfo {
  std::string name;
  std::string type;      // "malloc", "null", "uring", "nvme"
  std::string path;      // uring/nvme
  std::string base;      // fault: the bdev it wraps
  uint32_t block_size = 512;
  uint64_t num_blocks = 0;
  bool volatile_cache = false;      // Flush does something
  bool supports_deallocate = false;
  bool supports_write_zeroes = true;
  bool direct = false;              // O_DIRECT
  uint32_t max_transfer_bytes = 0;  // 0 = no limit of its own
  bool supports_compare = false;    // Bdev::compare() compares on the device
  bool removable = false;           // the device at `path` may go away (hot removal)
};

class Bdev {
 public:
  explicit Bdev(BdevInfo info) : info_(std::move(info)) {
    process_resources().bdevs.fetch_add(1, std::memory_order_relaxed);
  }
  virtual ~Bdev() { process_resources().bdevs.fetch_sub(1, std::memory_order_relaxed); }
  Bdev(const Bdev&) = delete;
  Bdev& operator=(const Bdev&) = delete;

  const BdevInfo& info() const { return info_; }
  uint64_t size_bytes() const { return info_.num_blocks * info_.block_size; }

  // Reactor thread of `group`. The range was checked by the caller.
  virtual void submit(PollGroup& group, BdevIo* io) = 0;

  // RAM-resident bdevs expose their memory for zero-copy reads (C2H straight
  // from it); nullptr otherwise.
  virtual uint8_t* memory() { return nullptr; }

  // Compare, for bdevs with info().supports_compare: the iovs hold the host's
  // data for lba/nlb (op is Read: the media is read). Completes with 0 when
  // they match, otherwise with an error (nvme_status Compare Failure).
  virtual void compare(PollGroup& /*group*/, BdevIo* io) { io->cb(io, -EOPNOTSUPP); }

  // Hot removal of removable bdevs. The owner sets it before first use; the
  // bdev calls it from any thread (a reactor included) when its device is
  // gone (`sure`) or may be (the owner then checks the device node). It
  // must not block.
  std::function<void(bool sure)> on_gone;

  // Shutdown gave up waiting for in-flight I/O: complete, on `group`'s
  // reactor, whatever this bdev holds for that group and can give back
  // without the kernel or a device (status -ECANCELED). I/O the kernel still
  // owns is not touched: its buffers are the kernel's until it completes, so
  // shutdown keeps waiting for it. Default: nothing to give back.
  virtual void cancel_io(PollGroup& /*group*/) {}

  // Namespaces using this bdev (a claimed bdev cannot be deleted).
  std::atomic<int> claims{0};

 protected:
  BdevInfo info_;
};

// Factories. Return -errno; on failure *err names what is wrong.
int bdev_create_malloc(BdevInfo info, std::shared_ptr<Bdev>* out, std::string* err);
int bdev_create_null(BdevInfo info, std::shared_ptr<Bdev>* out, std::string* err);
// Opens info.path (a file or block device; a file is created/extended to
// info.num_blocks * block_size when num_blocks > 0). Block size and size of a
// block device come from the device.
int bdev_create_uring(BdevInfo info, std::shared_ptr<Bdev>* out, std::string* err);
// Opens info.path, an NVMe generic char device (/dev/ngXnY), for io_uring
// NVMe passthrough. Block size, size and limits come from the device's
// Identify data (bdev/nvme_device.cc).
int bdev_create_nvme(BdevInfo info, std::shared_ptr<Bdev>* out, std::string* err);

}  // namespace nvmf
