// RAM bdev: one anonymous mapping, every op completes inline on the
// submitting reactor. Deallocated or zeroed whole pages go back to the kernel,
// so a sparse namespace costs only what hosts actually wrote.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bdev/bdev.h"

namespace nvmf {

namespace {

// Zeroing at least this much goes through madvise (one syscall, pages freed)
// instead of memset (which would also fault every page in).
constexpr uint64_t kMadviseMin = 64 * 1024;

bool valid_block_size(uint32_t bs) {
  return bs >= 512 && bs <= 4096 && (bs & (bs - 1)) == 0;
}

uint64_t physical_memory() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
}

int fail(std::string* err, const BdevInfo& info, int rc, const std::string& why) {
  if (err) *err = "malloc bdev \"" + info.name + "\": " + why;
  return rc;
}

// The geometry the TS layer derived from sizeBytes/blockSize. MAP_NORESERVE
// defers the memory cost to first touch, so the only hard limit is RAM: a
// bigger namespace could never be filled and would OOM the process instead.
int check_geometry(const BdevInfo& info, std::string* err) {
  if (!valid_block_size(info.block_size)) {
    return fail(err, info, -EINVAL,
                "blockSize " + std::to_string(info.block_size) +
                    " must be a power of two from 512 to 4096");
  }
  if (info.num_blocks == 0) return fail(err, info, -EINVAL, "sizeBytes must be greater than 0");
  if (info.num_blocks > UINT64_MAX / info.block_size) {
    return fail(err, info, -EINVAL, "sizeBytes is too large");
  }
  const uint64_t size = info.num_blocks * info.block_size;
  const uint64_t ram = physical_memory();
  if (ram != 0 && size > ram) {
    return fail(err, info, -ENOMEM,
                "sizeBytes " + std::to_string(size) + " exceeds physical memory (" +
                    std::to_string(ram) + " bytes)");
  }
  return 0;
}

class MallocBdev final : public Bdev {
 public:
  MallocBdev(BdevInfo info, uint8_t* mem) : Bdev(std::move(info)), mem_(mem) {}
  ~MallocBdev() override { munmap(mem_, size_bytes()); }

  void submit(PollGroup& /*group*/, BdevIo* io) override { io->cb(io, execute(io)); }
  uint8_t* memory() override { return mem_; }

 private:
  bool in_range(uint64_t lba, uint64_t nlb) const {
    return nlb <= info_.num_blocks && lba <= info_.num_blocks - nlb;
  }

  int execute(BdevIo* io) {
    switch (io->op) {
      case BdevOp::Read:
      case BdevOp::Write:
        if (!in_range(io->lba, io->nlb)) return -ERANGE;
        return copy(io);
      case BdevOp::Flush:
        return 0;  // RAM has no cache to flush
      case BdevOp::WriteZeroes:
        if (!in_range(io->lba, io->nlb)) return -ERANGE;
        zero(io->lba, io->nlb);
        return 0;
      case BdevOp::Deallocate:
        return deallocate(io);
    }
    return -EOPNOTSUPP;
  }

  // Exactly nlb blocks between the iovs and memory; longer iovs are fine (the
  // transport's buffer may be rounded up), shorter ones are a caller bug.
  int copy(const BdevIo* io) {
    const uint64_t bs = info_.block_size;
    uint8_t* p = mem_ + io->lba * bs;
    uint64_t left = uint64_t(io->nlb) * bs;
    for (int i = 0; i < io->iovcnt && left > 0; i++) {
      auto* base = static_cast<uint8_t*>(io->iov[i].iov_base);
      uint64_t n = io->iov[i].iov_len < left ? io->iov[i].iov_len : left;
      // A zero-copy read may hand us our own memory back; memcpy onto itself
      // is undefined, and there is nothing to do anyway.
      if (base != p) {
        if (io->op == BdevOp::Read) {
          std::memcpy(base, p, n);
        } else {
          std::memcpy(p, base, n);
        }
      }
      p += n;
      left -= n;
    }
    return left == 0 ? 0 : -EINVAL;
  }

  int deallocate(const BdevIo* io) {
    // Check every range before touching any: a failed command changes nothing.
    for (uint32_t i = 0; i < io->nranges; i++) {
      if (!in_range(io->ranges[i].lba, io->ranges[i].nlb)) return -ERANGE;
    }
    // Deallocated blocks read as zeroes (DLFEAT), so this is write-zeroes.
    for (uint32_t i = 0; i < io->nranges; i++) zero(io->ranges[i].lba, io->ranges[i].nlb);
    return 0;
  }

  // memset the unaligned head and tail; whole pages in between are dropped
  // (a private anonymous mapping refills them with zeroes on next touch).
  void zero(uint64_t lba, uint64_t nlb) {
    const uint64_t bs = info_.block_size;
    uint64_t start = lba * bs;
    uint64_t end = start + nlb * bs;
    if (end - start >= kMadviseMin) {
      const uint64_t page = page_size();
      uint64_t first = (start + page - 1) & ~(page - 1);
      uint64_t last = end & ~(page - 1);
      if (last > first && madvise(mem_ + first, last - first, MADV_DONTNEED) == 0) {
        std::memset(mem_ + start, 0, first - start);
        std::memset(mem_ + last, 0, end - last);
        return;
      }
    }
    std::memset(mem_ + start, 0, end - start);
  }

  static uint64_t page_size() {
    static const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
    return page;
  }

  uint8_t* const mem_;
};

}  // namespace

int bdev_create_malloc(BdevInfo info, std::shared_ptr<Bdev>* out, std::string* err) {
  int rc = check_geometry(info, err);
  if (rc < 0) return rc;
  const uint64_t size = info.num_blocks * info.block_size;
  // Anonymous memory is zero-filled (a fresh namespace reads as zeroes) and
  // page aligned (O_DIRECT-friendly for anything that copies out of it).
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    int e = errno;
    return fail(err, info, -e, "cannot map " + std::to_string(size) + " bytes: " + strerror(e));
  }
  info.type = "malloc";
  info.path.clear();
  info.volatile_cache = false;
  info.supports_deallocate = true;
  info.supports_write_zeroes = true;
  info.direct = false;
  try {
    *out = std::make_shared<MallocBdev>(std::move(info), static_cast<uint8_t*>(mem));
  } catch (const std::bad_alloc&) {
    munmap(mem, size);
    return fail(err, info, -ENOMEM, "out of memory");
  }
  return 0;
}

}  // namespace nvmf
