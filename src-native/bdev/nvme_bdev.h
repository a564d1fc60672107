// NVMe passthrough bdev: one namespace of a real NVMe device, driven through
// the kernel's NVMe generic char device (/dev/ngXnY) with io_uring
// passthrough (IORING_OP_URING_CMD) -- a real device without a userspace
// driver. Creation (open, Identify, limits, a probe) is in nvme_device.cc;
// the data path in nvme_bdev.cc.
#pragma once

#include <cstdint>
#include <memory>

#include "bdev/bdev.h"

namespace nvmf {

// What creation learned from the device; the bdev takes over the fds.
struct NvmeDevice {
  int fd = -1;        // the generic char device, O_RDWR
  int excl_fd = -1;   // its block device held O_EXCL (nothing mounts it meanwhile), or -1
  uint32_t nsid = 0;
  uint32_t max_xfer_blocks = 1;  // per Read/Write/Compare command (MDTS, kernel queue limits)
  uint32_t max_wz_blocks = 1;    // per Write Zeroes command (NLB field, WZSL)
  uint32_t max_dsm_blocks = 1;   // per Dataset Management range (DMRSL)
};

// Takes ownership of dev's fds (closed by the bdev, or here on failure).
int make_nvme_bdev(BdevInfo info, const NvmeDevice& dev, std::shared_ptr<Bdev>* out);

}  // namespace nvmf
