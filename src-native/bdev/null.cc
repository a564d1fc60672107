// Null bdev: writes are dropped, reads return zeroes, everything completes
// inline. It measures the transport alone. Unlike SPDK's null bdev, reads
// zero the buffer: pooled transport buffers would otherwise show a host the
// data of some earlier command (possibly another host's).
#include <cerrno>
#include <cstring>

#include "bdev/bdev.h"

namespace nvmf {

namespace {

int fail(std::string* err, const BdevInfo& info, int rc, const std::string& why) {
  if (err) *err = "null bdev \"" + info.name + "\": " + why;
  return rc;
}

int check_geometry(const BdevInfo& info, std::string* err) {
  const uint32_t bs = info.block_size;
  if (bs < 512 || bs > 4096 || (bs & (bs - 1)) != 0) {
    return fail(err, info, -EINVAL,
                "blockSize " + std::to_string(bs) + " must be a power of two from 512 to 4096");
  }
  if (info.num_blocks == 0) return fail(err, info, -EINVAL, "sizeBytes must be greater than 0");
  if (info.num_blocks > UINT64_MAX / bs) return fail(err, info, -EINVAL, "sizeBytes is too large");
  return 0;
}

class NullBdev final : public Bdev {
 public:
  explicit NullBdev(BdevInfo info) : Bdev(std::move(info)) {}

  void submit(PollGroup& /*group*/, BdevIo* io) override {
    io->cb(io, io->op == BdevOp::Read ? zero_iovs(io) : 0);
  }

 private:
  int zero_iovs(const BdevIo* io) const {
    uint64_t left = uint64_t(io->nlb) * info_.block_size;
    for (int i = 0; i < io->iovcnt && left > 0; i++) {
      uint64_t n = io->iov[i].iov_len < left ? io->iov[i].iov_len : left;
      std::memset(io->iov[i].iov_base, 0, n);
      left -= n;
    }
    return left == 0 ? 0 : -EINVAL;
  }
};

}  // namespace

int bdev_create_null(BdevInfo info, std::shared_ptr<Bdev>* out, std::string* err) {
  int rc = check_geometry(info, err);
  if (rc < 0) return rc;
  info.type = "null";
  info.path.clear();
  info.volatile_cache = false;
  // Deallocated blocks read as zeroes like every other block here.
  info.supports_deallocate = true;
  info.supports_write_zeroes = true;
  info.direct = false;
  try {
    *out = std::make_shared<NullBdev>(std::move(info));
  } catch (const std::bad_alloc&) {
    return fail(err, info, -ENOMEM, "out of memory");
  }
  return 0;
}

}  // namespace nvmf
