// Standalone self test for the bdevs (malloc, null, uring on files and, when
// the machine allows, on a loop block device) and the per-group io_uring.
// No framework. From the repository root:
//   g++ -std=c++20 -O1 -g -Wall -Wextra -Isrc-native test/native/bdev_selftest.cc
//       src-native/core/reactor.cc src-native/core/uring.cc src-native/bdev/*.cc
//       -luring -lpthread -o /tmp/bdev_selftest
//   clang++ -std=c++20 -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer
//       -Wall -Wextra -Isrc-native (same sources) -luring -lpthread -o /tmp/bdev_selftest_asan
// Prints "N passed, N failed" (and SKIP lines for what the machine cannot
// test, e.g. the block device part when not root) and exits non-zero on any
// failure. Every I/O is submitted from its reactor (Reactor::post) exactly
// as the target does.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "core/poll_group.h"

using namespace nvmf;

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  std::printf("FAIL: %s\n", what.c_str());
}

void check_rc(int got, int want, const std::string& what) {
  check(got == want, what + " (got " + std::to_string(got) + ", want " + std::to_string(want) + ")");
}

void check_err(int rc, int want_rc, const std::string& err, const std::string& needle,
               const std::string& what) {
  check_rc(rc, want_rc, what);
  check(err.find(needle) != std::string::npos,
        what + ": message \"" + err + "\" should mention \"" + needle + "\"");
}

void skip(const std::string& what) { std::printf("SKIP: %s\n", what.c_str()); }

// ---- page-aligned buffers (O_DIRECT) with a position-dependent pattern ----

struct Buf {
  explicit Buf(size_t n) : size(n), p(static_cast<uint8_t*>(std::aligned_alloc(4096, round(n)))) {
    std::memset(p, 0xee, round(n));
  }
  ~Buf() { std::free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  static size_t round(size_t n) { return (n + 4095) & ~size_t(4095); }
  size_t size;
  uint8_t* p;
};

uint8_t pattern(uint32_t seed, uint64_t byte) {
  return uint8_t(seed * 131 + byte * 7 + (byte >> 9) * 13 + 1);
}

void fill(uint8_t* p, size_t n, uint32_t seed, uint64_t base) {
  for (size_t i = 0; i < n; i++) p[i] = pattern(seed, base + i);
}

bool matches(const uint8_t* p, size_t n, uint32_t seed, uint64_t base) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != pattern(seed, base + i)) return false;
  }
  return true;
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != 0) return false;
  }
  return true;
}

// Splits [p, p+n) into iovecs of the given sizes (the last takes the rest).
std::vector<iovec> split(uint8_t* p, size_t n, std::initializer_list<size_t> sizes) {
  std::vector<iovec> v;
  for (size_t s : sizes) {
    if (s >= n) break;
    v.push_back({p, s});
    p += s;
    n -= s;
  }
  v.push_back({p, n});
  return v;
}

// ---- submitting from the reactor and waiting for the callbacks ----

struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  int outstanding = 0;
  std::vector<int> statuses;  // by index (BdevIo::ctx points at the Waiter)
};

struct IoSlot {
  BdevIo io;
  Waiter* w;
  size_t index;
};

void on_done(BdevIo* io, int status) {
  auto* slot = reinterpret_cast<IoSlot*>(reinterpret_cast<uint8_t*>(io) - offsetof(IoSlot, io));
  Waiter* w = slot->w;
  std::lock_guard<std::mutex> g(w->mu);
  w->statuses[slot->index] = status;
  if (--w->outstanding == 0) w->cv.notify_all();
}

// Submits every io in one reactor message (so they batch into one ring
// submission) and waits. A hang is fatal: the ios live on this stack.
std::vector<int> run_batch(PollGroup& g, Bdev& b, std::vector<IoSlot>& slots) {
  Waiter w;
  w.outstanding = int(slots.size());
  w.statuses.assign(slots.size(), 1);
  for (size_t i = 0; i < slots.size(); i++) {
    slots[i].w = &w;
    slots[i].index = i;
    slots[i].io.cb = on_done;
  }
  bool posted = g.reactor().post([&g, &b, &slots] {
    for (auto& s : slots) b.submit(g, &s.io);
  });
  if (!posted) {
    std::printf("FATAL: reactor refused the message\n");
    std::exit(2);
  }
  std::unique_lock<std::mutex> lk(w.mu);
  if (!w.cv.wait_for(lk, std::chrono::seconds(30), [&] { return w.outstanding == 0; })) {
    std::printf("FATAL: %d I/O(s) never completed on bdev %s\n", w.outstanding,
                b.info().name.c_str());
    std::fflush(stdout);
    std::_Exit(2);
  }
  return w.statuses;
}

int run_one(PollGroup& g, Bdev& b, const BdevIo& io) {
  std::vector<IoSlot> slots(1);
  slots[0].io = io;
  return run_batch(g, b, slots)[0];
}

BdevIo rw(BdevOp op, uint64_t lba, uint32_t nlb, const std::vector<iovec>& iov) {
  BdevIo io;
  io.op = op;
  io.lba = lba;
  io.nlb = nlb;
  io.iov = iov.data();
  io.iovcnt = int(iov.size());
  return io;
}

BdevIo simple(BdevOp op, uint64_t lba = 0, uint32_t nlb = 0) {
  BdevIo io;
  io.op = op;
  io.lba = lba;
  io.nlb = nlb;
  return io;
}

BdevIo dealloc(const std::vector<BdevRange>& r) {
  BdevIo io;
  io.op = BdevOp::Deallocate;
  io.ranges = r.data();
  io.nranges = uint32_t(r.size());
  return io;
}

// Reads nlb blocks at lba into a fresh buffer.
std::unique_ptr<Buf> read_blocks(PollGroup& g, Bdev& b, uint64_t lba, uint32_t nlb, int* rc) {
  const uint32_t bs = b.info().block_size;
  auto buf = std::make_unique<Buf>(size_t(nlb) * bs);
  auto iov = split(buf->p, buf->size, {bs, size_t(bs) * 2});
  *rc = run_one(g, b, rw(BdevOp::Read, lba, nlb, iov));
  return buf;
}

int write_blocks(PollGroup& g, Bdev& b, uint64_t lba, uint32_t nlb, uint32_t seed) {
  const uint32_t bs = b.info().block_size;
  Buf buf(size_t(nlb) * bs);
  fill(buf.p, buf.size, seed, lba * bs);
  auto iov = split(buf.p, buf.size, {size_t(bs) * 3, bs});
  return run_one(g, b, rw(BdevOp::Write, lba, nlb, iov));
}

bool blocks_match(PollGroup& g, Bdev& b, uint64_t lba, uint32_t nlb, uint32_t seed) {
  int rc = 0;
  auto buf = read_blocks(g, b, lba, nlb, &rc);
  return rc == 0 && matches(buf->p, buf->size, seed, lba * b.info().block_size);
}

bool blocks_zero(PollGroup& g, Bdev& b, uint64_t lba, uint32_t nlb) {
  int rc = 0;
  auto buf = read_blocks(g, b, lba, nlb, &rc);
  return rc == 0 && all_zero(buf->p, buf->size);
}

struct Group {
  explicit Group(PollMode mode) : g(0, mode, 200000) {
    if (g.reactor().start() < 0) {
      std::printf("FATAL: reactor start failed\n");
      std::exit(2);
    }
  }
  ~Group() { g.reactor().stop_and_join(); }
  PollGroup g;
};

// ---- the data-path checks every bdev type shares ----

// Writes patterns, reads them back through differently split iovs, zeroes
// and deallocates ranges and checks the blocks around them survived.
void exercise(PollGroup& g, Bdev& b, const std::string& tag) {
  const uint32_t bs = b.info().block_size;
  const uint64_t nb = b.info().num_blocks;
  // The area under test, clear of the last blocks (written separately).
  const uint32_t span = uint32_t(nb - 8 < 4096 ? nb - 8 : 4096);

  check_rc(write_blocks(g, b, 0, span, 1), 0, tag + ": write the test area");
  check(blocks_match(g, b, 0, span, 1), tag + ": read back the test area");
  check_rc(write_blocks(g, b, 5, 7, 2), 0, tag + ": overwrite blocks 5..11");
  check(blocks_match(g, b, 5, 7, 2), tag + ": overwritten blocks read back");
  check(blocks_match(g, b, 0, 5, 1) && blocks_match(g, b, 12, 20, 1),
        tag + ": neighbours of the overwrite are intact");
  check_rc(write_blocks(g, b, nb - 3, 3, 3), 0, tag + ": write the last blocks");
  check(blocks_match(g, b, nb - 3, 3, 3), tag + ": last blocks read back");
  check_rc(run_one(g, b, simple(BdevOp::Flush)), 0, tag + ": flush");

  // Write zeroes over a range large enough for page drops / zero chunks.
  const uint32_t wz_lba = 33, wz_nlb = span - 40;
  check_rc(run_one(g, b, simple(BdevOp::WriteZeroes, wz_lba, wz_nlb)), 0, tag + ": write zeroes");
  check(blocks_zero(g, b, wz_lba, wz_nlb), tag + ": zeroed range reads zeroes");
  check(blocks_match(g, b, 12, wz_lba - 12, 1) && blocks_match(g, b, wz_lba + wz_nlb, 7, 1),
        tag + ": write zeroes left its neighbours alone");

  // Deallocate several ranges (one empty) after rewriting the area.
  check_rc(write_blocks(g, b, 0, span, 4), 0, tag + ": rewrite the test area");
  std::vector<BdevRange> ranges = {{1, 2}, {10, 0}, {16, span / 2}, {span - 2, 1}};
  check_rc(run_one(g, b, dealloc(ranges)), 0, tag + ": deallocate 4 ranges");
  check(blocks_zero(g, b, 1, 2) && blocks_zero(g, b, 16, span / 2) &&
            blocks_zero(g, b, span - 2, 1),
        tag + ": deallocated ranges read zeroes");
  check(blocks_match(g, b, 0, 1, 4) && blocks_match(g, b, 3, 13, 4) &&
            blocks_match(g, b, 16 + span / 2, span - 2 - 16 - span / 2, 4) &&
            blocks_match(g, b, span - 1, 1, 4),
        tag + ": blocks between deallocated ranges are intact");

  // Caller errors are reported, not acted upon.
  check_rc(run_one(g, b, simple(BdevOp::WriteZeroes, nb - 1, 2)), -ERANGE,
           tag + ": write zeroes past the end");
  std::vector<BdevRange> bad = {{0, 1}, {nb, 1}};
  check_rc(run_one(g, b, dealloc(bad)), -ERANGE, tag + ": deallocate past the end");
  check(blocks_match(g, b, 0, 1, 4), tag + ": a refused deallocate changed nothing");
  Buf small(bs);
  std::vector<iovec> short_iov = {{small.p, bs}};
  check_rc(run_one(g, b, rw(BdevOp::Read, 0, 2, short_iov)), -EINVAL,
           tag + ": iovs shorter than nlb blocks");
  check_rc(run_one(g, b, simple(BdevOp::Read, 0, 0)), 0, tag + ": zero-length read");
  (void)bs;
}

// ---- malloc / null ----

BdevInfo info_of(const std::string& name, uint32_t bs, uint64_t nb) {
  BdevInfo i;
  i.name = name;
  i.block_size = bs;
  i.num_blocks = nb;
  return i;
}

void test_malloc(PollGroup& g) {
  std::shared_ptr<Bdev> b;
  std::string err;
  check_err(bdev_create_malloc(info_of("m0", 1000, 8), &b, &err), -EINVAL, err, "blockSize",
            "malloc: blockSize 1000");
  check_err(bdev_create_malloc(info_of("m0", 8192, 8), &b, &err), -EINVAL, err, "blockSize",
            "malloc: blockSize 8192");
  check_err(bdev_create_malloc(info_of("m0", 512, 0), &b, &err), -EINVAL, err, "sizeBytes",
            "malloc: size 0");
  check_err(bdev_create_malloc(info_of("m0", 4096, 1ull << 40), &b, &err), -ENOMEM, err,
            "physical memory", "malloc: 4 PiB");
  check_err(bdev_create_malloc(info_of("m0", 4096, UINT64_MAX / 1024), &b, &err), -EINVAL, err,
            "too large", "malloc: size overflow");
  check(err.find("\"m0\"") != std::string::npos, "malloc: message names the bdev");

  for (uint32_t bs : {512u, 4096u}) {
    std::string tag = "malloc/" + std::to_string(bs);
    int rc = bdev_create_malloc(info_of("m1", bs, (8u << 20) / bs), &b, &err);
    check_rc(rc, 0, tag + ": create (" + err + ")");
    if (rc != 0) continue;
    check(b->info().type == "malloc" && b->info().supports_deallocate &&
              !b->info().volatile_cache,
          tag + ": info flags");
    check(b->memory() != nullptr && all_zero(b->memory(), b->size_bytes()),
          tag + ": memory() is zero-filled");
    exercise(g, *b, tag);
    // Zero-copy path: memory() holds exactly what was written.
    check_rc(write_blocks(g, *b, 2, 1, 9), 0, tag + ": write for memory()");
    check(matches(b->memory() + 2 * bs, bs, 9, 2 * bs), tag + ": memory() shows the write");
    // A read straight into the bdev's own memory must be harmless.
    std::vector<iovec> self = {{b->memory() + 2 * bs, bs}};
    check_rc(run_one(g, *b, rw(BdevOp::Read, 2, 1, self)), 0, tag + ": read onto itself");
    check(matches(b->memory() + 2 * bs, bs, 9, 2 * bs), tag + ": data survived");
    b.reset();
  }
}

void test_null(PollGroup& g) {
  std::shared_ptr<Bdev> b;
  std::string err;
  check_err(bdev_create_null(info_of("n0", 3000, 8), &b, &err), -EINVAL, err, "blockSize",
            "null: blockSize 3000");
  check_err(bdev_create_null(info_of("n0", 512, 0), &b, &err), -EINVAL, err, "sizeBytes",
            "null: size 0");
  int rc = bdev_create_null(info_of("n1", 512, 1ull << 40), &b, &err);  // 512 TiB: costs nothing
  check_rc(rc, 0, "null: create 512 TiB");
  if (rc != 0) return;
  check(b->info().type == "null" && b->memory() == nullptr, "null: info");
  check_rc(write_blocks(g, *b, 100, 8, 1), 0, "null: write");
  Buf buf(8 * 512);  // pre-filled with 0xee: stale data must not leak
  auto iov = split(buf.p, buf.size, {1000, 24});
  check_rc(run_one(g, *b, rw(BdevOp::Read, 100, 8, iov)), 0, "null: read");
  check(all_zero(buf.p, buf.size), "null: reads return zeroes");
  check_rc(run_one(g, *b, simple(BdevOp::Flush)), 0, "null: flush");
  check_rc(run_one(g, *b, simple(BdevOp::WriteZeroes, 0, 8)), 0, "null: write zeroes");
  std::vector<BdevRange> r = {{0, 8}};
  check_rc(run_one(g, *b, dealloc(r)), 0, "null: deallocate");
}

// ---- uring on files ----

std::string g_dir;

std::string path_in(const std::string& dir, const std::string& name) { return dir + "/" + name; }

off_t file_size(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 ? st.st_size : -1;
}

bool exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

BdevInfo uring_info(const std::string& name, const std::string& path, uint32_t bs, uint64_t nb,
                    bool direct) {
  BdevInfo i = info_of(name, bs, nb);
  i.path = path;
  i.direct = direct;
  return i;
}

void test_uring_errors() {
  std::shared_ptr<Bdev> b;
  std::string err;
  const std::string missing = path_in(g_dir, "missing.img");
  check_err(bdev_create_uring(uring_info("u0", "", 512, 8, false), &b, &err), -EINVAL, err,
            "path is required", "uring: empty path");
  check_err(bdev_create_uring(uring_info("u0", missing, 512, 0, false), &b, &err), -ENOENT, err,
            missing, "uring: missing file without a size");
  const std::string nodir = path_in(g_dir, "no/such/dir.img");
  check_err(bdev_create_uring(uring_info("u0", nodir, 512, 8, false), &b, &err), -ENOENT, err,
            "No such file or directory", "uring: missing directory");
  check(err.find(nodir) != std::string::npos, "uring: open error names the path");
  check_err(bdev_create_uring(uring_info("u0", g_dir, 512, 8, false), &b, &err), -EINVAL, err,
            "neither a regular file nor a block device", "uring: a directory");
  check_err(bdev_create_uring(uring_info("u0", "/dev/null", 512, 8, false), &b, &err), -EINVAL,
            err, "neither", "uring: a character device");

  // A file we create and then reject must not be left behind.
  check_err(bdev_create_uring(uring_info("u0", missing, 1000, 8, false), &b, &err), -EINVAL, err,
            "blockSize", "uring: bad blockSize on a new file");
  check(!exists(missing), "uring: the rejected new file was removed");

  const std::string odd = path_in(g_dir, "odd.img");
  int fd = open(odd.c_str(), O_CREAT | O_WRONLY, 0600);
  check(fd >= 0 && ftruncate(fd, 4096 + 100) == 0, "uring: make an odd-sized file");
  if (fd >= 0) close(fd);
  check_err(bdev_create_uring(uring_info("u0", odd, 512, 0, false), &b, &err), -EINVAL, err,
            "not a multiple of blockSize", "uring: odd-sized file");
  check(exists(odd), "uring: an existing file is never removed on failure");
  const std::string empty = path_in(g_dir, "empty.img");
  fd = open(empty.c_str(), O_CREAT | O_WRONLY, 0600);
  if (fd >= 0) close(fd);
  check_err(bdev_create_uring(uring_info("u0", empty, 512, 0, false), &b, &err), -EINVAL, err,
            "is empty", "uring: empty file without a size");
}

// A file sized by num_blocks, exercised, closed, reopened by its own size.
void test_uring_file(PollGroup& g, const std::string& dir, uint32_t bs, bool direct,
                     const std::string& label) {
  const std::string tag = label + (direct ? "/direct/" : "/buffered/") + std::to_string(bs);
  const std::string p = path_in(dir, "u" + std::to_string(bs) + (direct ? "d" : "b") + ".img");
  unlink(p.c_str());
  const uint64_t nb = (6u << 20) / bs;
  std::shared_ptr<Bdev> b;
  std::string err;
  int rc = bdev_create_uring(uring_info("u1", p, bs, nb, direct), &b, &err);
  if (rc == -EINVAL && direct && err.find("O_DIRECT") != std::string::npos) {
    skip(tag + ": " + err);
    return;
  }
  check_rc(rc, 0, tag + ": create (" + err + ")");
  if (rc != 0) return;
  check(file_size(p) == off_t(nb * bs), tag + ": the file was created at sizeBytes");
  check(b->info().type == "uring" && b->info().volatile_cache && b->info().supports_deallocate &&
            b->info().num_blocks == nb,
        tag + ": info");
  exercise(g, *b, tag);
  check(g.uring.ready() && g.uring.big(), tag + ": the group ring is up, with big SQEs");
  check_rc(write_blocks(g, *b, 7, 9, 42), 0, tag + ": write before close");
  check_rc(run_one(g, *b, simple(BdevOp::Flush)), 0, tag + ": flush before close");
  b.reset();

  rc = bdev_create_uring(uring_info("u1", p, bs, 0, direct), &b, &err);
  check_rc(rc, 0, tag + ": reopen sized by the file (" + err + ")");
  if (rc != 0) return;
  check(b->info().num_blocks == nb, tag + ": reopened size");
  check(blocks_match(g, *b, 7, 9, 42), tag + ": data survived close/reopen");
  b.reset();
  // Growing an existing file keeps its content.
  rc = bdev_create_uring(uring_info("u1", p, bs, nb * 2, direct), &b, &err);
  check_rc(rc, 0, tag + ": reopen larger (" + err + ")");
  if (rc != 0) return;
  check(file_size(p) == off_t(nb * 2 * bs), tag + ": file extended");
  check(blocks_match(g, *b, 7, 9, 42) && blocks_zero(g, *b, nb, 16),
        tag + ": old data kept, new area reads zeroes");
  b.reset();
  unlink(p.c_str());
}

// Many I/Os in one reactor turn: more than the SQ (256) and the CQ (1024)
// hold, so get_sqe must flush a full SQ and poll() must drain CQ overflow.
void test_uring_queue_depth(PollGroup& g) {
  const std::string p = path_in(g_dir, "qd.img");
  std::shared_ptr<Bdev> b;
  std::string err;
  const uint32_t n = 3000;
  int rc = bdev_create_uring(uring_info("qd", p, 512, n, false), &b, &err);
  check_rc(rc, 0, "uring qd: create (" + err + ")");
  if (rc != 0) return;
  Buf data(size_t(n) * 512);
  fill(data.p, data.size, 77, 0);
  std::vector<iovec> iovs(n);
  std::vector<IoSlot> slots(n);
  for (uint32_t i = 0; i < n; i++) {
    iovs[i] = {data.p + size_t(i) * 512, 512};
    slots[i].io = simple(BdevOp::Write, i, 1);
    slots[i].io.iov = &iovs[i];
    slots[i].io.iovcnt = 1;
  }
  auto st = run_batch(g, *b, slots);
  int bad = 0;
  for (int s : st) bad += s != 0;
  check_rc(bad, 0, "uring qd: 3000 concurrent writes all succeed");
  check(blocks_match(g, *b, 0, n, 77), "uring qd: all 3000 blocks read back");

  // 1500 iovecs in one read: more than readv takes, so it goes in pieces.
  Buf back(size_t(n) * 512);
  std::vector<iovec> many(1500);
  for (size_t i = 0; i < many.size(); i++) many[i] = {back.p + i * 1024, 1024};
  check_rc(run_one(g, *b, rw(BdevOp::Read, 0, n, many)), 0, "uring qd: read with 1500 iovecs");
  check(matches(back.p, back.size, 77, 0), "uring qd: 1500-iovec read is correct");

  unsigned inflight = 99;
  g.reactor().call([&] { inflight = g.uring.inflight(); });
  check_rc(int(inflight), 0, "uring qd: nothing left in flight");
  b.reset();
  unlink(p.c_str());
}

// A file cut short behind the bdev's back: the first read comes back short,
// the rest is resubmitted from the middle of an iovec and hits EOF.
void test_uring_short_read(PollGroup& g) {
  const std::string p = path_in(g_dir, "short.img");
  std::shared_ptr<Bdev> b;
  std::string err;
  int rc = bdev_create_uring(uring_info("sh", p, 512, 16, false), &b, &err);
  check_rc(rc, 0, "uring short: create (" + err + ")");
  if (rc != 0) return;
  check_rc(write_blocks(g, *b, 0, 16, 5), 0, "uring short: write");
  check(truncate(p.c_str(), 4 * 512) == 0, "uring short: truncate the file to 4 blocks");
  Buf buf(8 * 512);
  auto iov = split(buf.p, buf.size, {3 * 512});
  check_rc(run_one(g, *b, rw(BdevOp::Read, 0, 8, iov)), -EIO, "uring short: read past EOF fails");
  check(matches(buf.p, 4 * 512, 5, 0), "uring short: the part before EOF was read");
  b.reset();
  unlink(p.c_str());
}

// tmpfs has no FALLOC_FL_ZERO_RANGE: write zeroes falls back to writing the
// shared zero buffer in 1 MiB chunks.
void test_uring_tmpfs(PollGroup& g) {
  struct statfs sfs {};
  if (statfs("/dev/shm", &sfs) != 0 || sfs.f_type != 0x01021994 /* TMPFS_MAGIC */) {
    skip("uring tmpfs: /dev/shm is not a tmpfs");
    return;
  }
  char dir[] = "/dev/shm/bdev_selftest.XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    skip("uring tmpfs: mkdtemp failed");
    return;
  }
  test_uring_file(g, dir, 512, false, "uring tmpfs");
  rmdir(dir);
}

// ---- uring on a block device (a loop device over a file) ----

std::string sh(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char line[256];
  while (std::fgets(line, sizeof line, f)) out += line;
  pclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

void test_uring_blockdev(PollGroup& g) {
  if (geteuid() != 0) {
    skip("uring blockdev: needs root for a loop device");
    return;
  }
  const std::string backing = path_in(g_dir, "loop.img");
  int fd = open(backing.c_str(), O_CREAT | O_RDWR, 0600);
  bool sized = fd >= 0 && ftruncate(fd, 16 << 20) == 0;
  if (fd >= 0) close(fd);
  std::string dev = sized ? sh("losetup -f --show " + backing + " 2>/dev/null") : "";
  if (dev.rfind("/dev/loop", 0) != 0) {
    skip("uring blockdev: cannot attach a loop device (" + dev + ")");
    unlink(backing.c_str());
    return;
  }
  std::shared_ptr<Bdev> b;
  std::string err;
  check_err(bdev_create_uring(uring_info("blk", dev, 4096, 0, false), &b, &err), -EINVAL, err,
            "logical block size", "uring blockdev: blockSize mismatch");
  check_err(bdev_create_uring(uring_info("blk", dev, 0, (32 << 20) / 512, false), &b, &err),
            -EINVAL, err, "exceeds the size", "uring blockdev: sizeBytes beyond the device");
  for (bool direct : {false, true}) {
    const std::string tag = std::string("uring blockdev/") + (direct ? "direct" : "buffered");
    int rc = bdev_create_uring(uring_info("blk", dev, 0, 0, direct), &b, &err);
    check_rc(rc, 0, tag + ": create (" + err + ")");
    if (rc != 0) continue;
    check(b->info().block_size == 512 && b->info().num_blocks == (16u << 20) / 512,
          tag + ": geometry from the device");
    std::shared_ptr<Bdev> b2;
    check_err(bdev_create_uring(uring_info("blk2", dev, 0, 0, direct), &b2, &err), -EBUSY, err,
              dev, "uring blockdev: a second open is refused (O_EXCL)");
    exercise(g, *b, tag);
    b.reset();
  }
  sh("losetup -d " + dev);
  unlink(backing.c_str());
}

// ---- Uring lifecycle ----

void test_uring_lifecycle() {
  {
    Uring never;  // destructor with no init
  }
  Group grp(PollMode::Interrupt);
  Reactor& r = grp.g.reactor();
  int rc = 1;
  bool again = false, big = false;
  r.call([&] {
    rc = grp.g.uring.init(r, 8, true);
    big = grp.g.uring.big();
    again = grp.g.uring.init(r, 8, false) == 0;  // already up: a no-op
    grp.g.uring.fini();
    grp.g.uring.fini();  // idempotent
  });
  check_rc(rc, 0, "uring lifecycle: init with big SQEs");
  check(big && again, "uring lifecycle: big() and a repeated init");
  check(!grp.g.uring.ready(), "uring lifecycle: fini leaves it not ready");
  // Up again and left for the destructor (after the reactor stopped).
  r.call([&] { rc = grp.g.uring.init(r, 8, false); });
  check_rc(rc, 0, "uring lifecycle: init after fini");
  check(!grp.g.uring.big(), "uring lifecycle: small SQEs on request");
}

}  // namespace

int main() {
  char dir[] = "/tmp/bdev_selftest.XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    std::perror("mkdtemp");
    return 2;
  }
  g_dir = dir;

  test_uring_lifecycle();
  {
    Group grp(PollMode::Adaptive);
    test_malloc(grp.g);
    test_null(grp.g);
  }
  test_uring_errors();
  // Interrupt mode proves the ring's eventfd wakes a sleeping reactor; poll
  // mode runs with the eventfd switched off.
  for (PollMode mode : {PollMode::Interrupt, PollMode::Poll}) {
    Group grp(mode);
    const std::string label = std::string("uring ") + poll_mode_name(mode);
    test_uring_file(grp.g, g_dir, 512, false, label);
    test_uring_file(grp.g, g_dir, 4096, false, label);
    test_uring_file(grp.g, g_dir, 4096, true, label);
    if (mode == PollMode::Interrupt) {
      test_uring_file(grp.g, g_dir, 512, true, label);
      test_uring_queue_depth(grp.g);
      test_uring_short_read(grp.g);
      test_uring_tmpfs(grp.g);
      test_uring_blockdev(grp.g);
    }
    // Orderly teardown on the reactor, as the target does it.
    grp.g.reactor().call([&] { grp.g.uring.fini(); });
  }

  for (const char* f : {"odd.img", "empty.img"}) unlink(path_in(g_dir, f).c_str());
  if (rmdir(dir) != 0) std::printf("note: %s not empty, left in place\n", dir);
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
