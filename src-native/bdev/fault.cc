// Fault-injection bdev. Every I/O goes through a FaultIo record (pooled:
// allocated only when the pool runs dry, so steady state allocates nothing)
// that carries its own BdevIo to the base bdev, because the caller's scratch
// belongs to the base. Per poll group, on that group's reactor only, the bdev
// keeps the I/Os it holds: stalled ones (not yet submitted) and delayed ones
// (completed by the base, waiting for their due time).
//
// A stall is watched by a short timer on each reactor that holds I/O, so no
// other thread ever touches a reactor's lists; changing the faults is an
// atomic store plus a mutex-protected copy.
//
// The caller's callback is always the last thing done with a record: it may
// drop the last reference to this bdev. Loops that complete several I/Os
// hold a reference to the bdev themselves.
#include "bdev/fault.h"

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/poll_group.h"

namespace nvmf {

namespace {

// How often a reactor holding stalled I/O looks whether the stall ended.
constexpr uint64_t kStallRecheckNs = 2ull * 1000 * 1000;

class FaultBdev;

struct FaultIo {
  enum class St : uint8_t { Free, Held, AtBase, Delayed };
  BdevIo inner;               // what the base bdev sees
  BdevIo* outer = nullptr;    // the caller's
  FaultBdev* bdev = nullptr;
  PollGroup* group = nullptr;
  St st = St::Free;
  int status = 0;             // the base's result, while delayed
  uint64_t due_ns = 0;        // delayed: when it may complete
  uint64_t timer = 0;         // delayed: its timer
  FaultIo* next = nullptr;    // pool
};

// The I/Os one reactor holds. Reactor-only.
struct GroupState {
  std::vector<FaultIo*> held;     // stalled, in arrival order
  std::vector<FaultIo*> delayed;  // waiting for due_ns
  uint64_t recheck_timer = 0;
};

class FaultBdev final : public Bdev, public std::enable_shared_from_this<FaultBdev> {
 public:
  FaultBdev(BdevInfo info, std::shared_ptr<Bdev> base, const FaultConfig& cfg)
      : Bdev(std::move(info)), base_(std::move(base)), stall_(cfg.stall), cfg_(cfg) {
    base_->claims.fetch_add(1);
  }
  ~FaultBdev() override {
    // Every record is back in the pool: an I/O in flight pins this bdev.
    base_->claims.fetch_sub(1);
  }

  void submit(PollGroup& group, BdevIo* io) override;
  void cancel_io(PollGroup& group) override;

  void set(const FaultConfig& cfg) {
    std::lock_guard<std::mutex> g(mu_);
    cfg_ = cfg;
    injected_ = 0;
    stall_.store(cfg.stall, std::memory_order_release);
  }
  FaultStats stats() {
    std::lock_guard<std::mutex> g(mu_);
    FaultStats s = stats_;
    s.held = held_now_;
    return s;
  }

 private:
  FaultIo* take();
  void put(FaultIo* f);
  GroupState& state_of(PollGroup& g);
  void start(FaultIo* f);
  void finish(FaultIo* f, int status);
  void deliver(FaultIo* f, int status);
  void arm_recheck(GroupState& gs, PollGroup& g);
  void recheck(PollGroup& g);
  static void base_done(BdevIo* io, int status);
  static void erase(std::vector<FaultIo*>& v, FaultIo* f);

  const std::shared_ptr<Bdev> base_;
  std::atomic<bool> stall_;

  std::mutex mu_;  // guards everything below
  FaultConfig cfg_;
  uint64_t injected_ = 0;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;  // fixed seed: a given sequence of I/O fails the same way
  FaultStats stats_;
  uint64_t held_now_ = 0;
  FaultIo* pool_ = nullptr;
  std::vector<std::unique_ptr<FaultIo>> all_;
  std::unordered_map<PollGroup*, GroupState> groups_;  // entries touched by their reactor only
};

FaultIo* FaultBdev::take() {
  std::lock_guard<std::mutex> g(mu_);
  if (!pool_) {
    all_.push_back(std::make_unique<FaultIo>());
    return all_.back().get();
  }
  FaultIo* f = pool_;
  pool_ = f->next;
  f->next = nullptr;
  return f;
}

void FaultBdev::put(FaultIo* f) {
  f->st = FaultIo::St::Free;
  f->outer = nullptr;
  f->group = nullptr;
  f->timer = 0;
  std::lock_guard<std::mutex> g(mu_);
  f->next = pool_;
  pool_ = f;
}

GroupState& FaultBdev::state_of(PollGroup& g) {
  // The map node is created once per group and never moves (unordered_map
  // references are stable), so the reactor may use it without the lock.
  std::lock_guard<std::mutex> lk(mu_);
  return groups_[&g];
}

void FaultBdev::erase(std::vector<FaultIo*>& v, FaultIo* f) {
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i] == f) {
      v.erase(v.begin() + long(i));
      return;
    }
  }
}

void FaultBdev::submit(PollGroup& group, BdevIo* io) {
  // A base that completes inline may run the caller's callback, which may
  // drop the namespace's reference to us while we are still on the stack.
  std::shared_ptr<FaultBdev> self = shared_from_this();
  FaultIo* f = take();
  f->outer = io;
  f->bdev = this;
  f->group = &group;
  {
    std::lock_guard<std::mutex> g(mu_);
    stats_.ios++;
  }
  if (stall_.load(std::memory_order_acquire)) {
    GroupState& gs = state_of(group);
    f->st = FaultIo::St::Held;
    gs.held.push_back(f);
    {
      std::lock_guard<std::mutex> g(mu_);
      stats_.stalled++;
      held_now_++;
    }
    arm_recheck(gs, group);
    return;
  }
  start(f);
}

// Decides the fault now (so a stall that ends applies the faults of that
// moment) and sends the I/O to the base, or fails it.
void FaultBdev::start(FaultIo* f) {
  const BdevOp op = f->outer->op;
  bool inject = false;
  uint32_t delay_us;
  {
    std::lock_guard<std::mutex> g(mu_);
    const bool selected = op == BdevOp::Read    ? cfg_.error_read
                          : op == BdevOp::Write ? cfg_.error_write
                                                : cfg_.error_other;
    if (selected && (cfg_.error_count == 0 || injected_ < cfg_.error_count)) {
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      const double u = double(rng_ >> 11) * 0x1.0p-53;
      inject = u < cfg_.error_rate;
    }
    if (inject) {
      injected_++;
      stats_.errors++;
    }
    delay_us = cfg_.delay_us;
  }
  f->due_ns = delay_us ? now_ns() + uint64_t(delay_us) * 1000 : 0;
  if (inject) {
    finish(f, -EIO);
    return;
  }
  BdevIo& in = f->inner;
  const BdevIo& out = *f->outer;
  in.op = out.op;
  in.lba = out.lba;
  in.nlb = out.nlb;
  in.iov = out.iov;
  in.iovcnt = out.iovcnt;
  in.ranges = out.ranges;
  in.nranges = out.nranges;
  in.cb = base_done;
  in.ctx = f;
  f->st = FaultIo::St::AtBase;
  base_->submit(*f->group, &in);
}

void FaultBdev::base_done(BdevIo* io, int status) {
  auto* f = static_cast<FaultIo*>(io->ctx);
  f->bdev->finish(f, status);
}

void FaultBdev::finish(FaultIo* f, int status) {
  const uint64_t now = f->due_ns ? now_ns() : 0;
  if (f->due_ns && now < f->due_ns) {
    PollGroup& g = *f->group;
    GroupState& gs = state_of(g);
    f->st = FaultIo::St::Delayed;
    f->status = status;
    gs.delayed.push_back(f);
    {
      std::lock_guard<std::mutex> lk(mu_);
      stats_.delayed++;
      held_now_++;
    }
    std::weak_ptr<FaultBdev> weak = weak_from_this();
    f->timer = g.reactor().add_timer(f->due_ns - now, [weak, f, &gs] {
      std::shared_ptr<FaultBdev> self = weak.lock();
      if (!self) return;
      f->timer = 0;
      erase(gs.delayed, f);
      {
        std::lock_guard<std::mutex> lk(self->mu_);
        self->held_now_--;
      }
      self->deliver(f, f->status);
    });
    return;
  }
  deliver(f, status);
}

void FaultBdev::deliver(FaultIo* f, int status) {
  BdevIo* outer = f->outer;
  put(f);
  outer->cb(outer, status);  // last: may release this bdev
}

void FaultBdev::arm_recheck(GroupState& gs, PollGroup& g) {
  if (gs.recheck_timer) return;
  std::weak_ptr<FaultBdev> weak = weak_from_this();
  PollGroup* pg = &g;
  gs.recheck_timer = g.reactor().add_timer(kStallRecheckNs, [weak, pg, &gs] {
    std::shared_ptr<FaultBdev> self = weak.lock();
    if (!self) return;  // gs died with the bdev
    gs.recheck_timer = 0;
    self->recheck(*pg);
  });
}

void FaultBdev::recheck(PollGroup& g) {
  GroupState& gs = state_of(g);
  if (gs.held.empty()) return;
  if (stall_.load(std::memory_order_acquire)) {
    arm_recheck(gs, g);
    return;
  }
  std::shared_ptr<FaultBdev> self = shared_from_this();  // held across callbacks
  std::vector<FaultIo*> go;
  go.swap(gs.held);
  {
    std::lock_guard<std::mutex> lk(mu_);
    held_now_ -= go.size();
  }
  for (FaultIo* f : go) start(f);
}

void FaultBdev::cancel_io(PollGroup& g) {
  GroupState& gs = state_of(g);
  if (gs.held.empty() && gs.delayed.empty()) return;
  std::shared_ptr<FaultBdev> self = shared_from_this();  // held across callbacks
  if (gs.recheck_timer) {
    g.reactor().cancel_timer(gs.recheck_timer);
    gs.recheck_timer = 0;
  }
  std::vector<FaultIo*> held, delayed;
  held.swap(gs.held);
  delayed.swap(gs.delayed);
  {
    std::lock_guard<std::mutex> lk(mu_);
    held_now_ -= held.size() + delayed.size();
    stats_.cancelled += held.size() + delayed.size();
  }
  // Stalled I/O never reached the base: nothing was read or written.
  for (FaultIo* f : held) deliver(f, -ECANCELED);
  // Delayed I/O is done at the base: report its real result early.
  for (FaultIo* f : delayed) {
    if (f->timer) g.reactor().cancel_timer(f->timer);
    deliver(f, f->status);
  }
}

}  // namespace

int bdev_create_fault(BdevInfo info, std::shared_ptr<Bdev> base, const FaultConfig& cfg,
                      std::shared_ptr<Bdev>* out, std::string* err) {
  if (!base) {
    if (err) *err = "fault bdev \"" + info.name + "\": base bdev " + info.base + " does not exist";
    return -ENOENT;
  }
  if (!(cfg.error_rate >= 0.0 && cfg.error_rate <= 1.0)) {
    if (err) *err = "fault bdev \"" + info.name + "\": errorRate must be from 0 to 1";
    return -EINVAL;
  }
  const BdevInfo& b = base->info();
  info.type = "fault";
  info.path.clear();
  info.base = b.name;
  info.block_size = b.block_size;
  info.num_blocks = b.num_blocks;
  info.volatile_cache = b.volatile_cache;
  info.supports_deallocate = b.supports_deallocate;
  info.supports_write_zeroes = b.supports_write_zeroes;
  info.direct = b.direct;
  info.max_transfer_bytes = b.max_transfer_bytes;
  try {
    *out = std::make_shared<FaultBdev>(std::move(info), std::move(base), cfg);
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
  return 0;
}

// Only bdev_create_fault makes bdevs of type "fault" (no RTTI in the
// node-gyp build, hence no dynamic_cast).
static FaultBdev* as_fault(Bdev& b) { return b.info().type == "fault" ? static_cast<FaultBdev*>(&b) : nullptr; }

int bdev_set_faults(Bdev& b, const FaultConfig& cfg) {
  FaultBdev* f = as_fault(b);
  if (!f) return -ENOTSUP;
  if (!(cfg.error_rate >= 0.0 && cfg.error_rate <= 1.0)) return -EINVAL;
  f->set(cfg);
  return 0;
}

int bdev_fault_stats(Bdev& b, FaultStats* out) {
  FaultBdev* f = as_fault(b);
  if (!f) return -ENOTSUP;
  *out = f->stats();
  return 0;
}

}  // namespace nvmf
