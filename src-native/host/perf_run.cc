#include "host/perf_run.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "host/clock.h"
#include "host/perf_hist.h"

namespace nvmf::host {

namespace {

struct Loop {
  const PerfConfig* cfg = nullptr;
  PerfClient* client = nullptr;
  LatencyHistogram hist;
  uint64_t rng = 0;
  uint64_t range = 0;     // bytes
  uint64_t seq_next = 0;  // sequential cursor
  uint64_t measure_from = 0, measure_to = 0;
  bool submitting = true;
  size_t outstanding = 0;
  std::vector<PerfIo*> retry;  // -EAGAIN (should not happen: depth + 1 CIDs)
  PerfResult* out = nullptr;

  uint64_t next_rand() {
    // xorshift64*: fast, good enough to pick offsets.
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
  }

  void prepare(PerfIo* io) {
    const uint32_t sz = cfg->io_size;
    if (cfg->random) {
      uint64_t slots = range / sz;
      io->offset = (next_rand() % slots) * sz;
    } else {
      if (seq_next + sz > range) seq_next = 0;
      io->offset = seq_next;
      seq_next += sz;
    }
    io->op = (cfg->read_pct >= 100 || next_rand() % 100 < cfg->read_pct) ? PerfOp::Read
                                                                          : PerfOp::Write;
    io->len = sz;
  }

  void issue(PerfIo* io) {
    prepare(io);
    io->start_ns = mono_ns();
    int rc = client->submit(io);
    if (rc == 0) {
      outstanding++;
    } else if (rc == -EAGAIN) {
      retry.push_back(io);
    } else {
      out->errors++;
      if (out->first_error.empty()) out->first_error = std::string("submit: ") + strerror(-rc);
      submitting = false;  // a dead connection: stop the run
    }
  }

  static void on_done(void* owner, PerfIo* io) {
    auto* l = static_cast<Loop*>(owner);
    l->outstanding--;
    uint64_t now = mono_ns();
    if (io->err != 0) {
      l->out->errors++;
      if (l->out->first_error.empty()) {
        l->out->first_error = io->nvme_status
                                  ? "NVMe status " + std::to_string(io->nvme_status)
                                  : std::string(strerror(-io->err));
      }
    } else if (io->start_ns >= l->measure_from && now <= l->measure_to) {
      l->hist.record(now - io->start_ns);
      l->out->ios++;
      l->out->bytes += io->len;
      (io->op == PerfOp::Read ? l->out->reads : l->out->writes)++;
    }
    if (l->submitting && now < l->measure_to) l->issue(io);
  }
};

}  // namespace

bool run_perf(const PerfConfig& cfg, PerfResult* out, std::string* err,
              const std::atomic<bool>* stop) {
  *out = PerfResult{};
  if (cfg.io_size == 0) {
    *err = "the I/O size must be positive";
    out->error_code = "ERR_INVALID_ARGUMENT";
    return false;
  }
  if (cfg.read_pct > 100) {
    *err = "the read percentage must be from 0 to 100";
    out->error_code = "ERR_INVALID_ARGUMENT";
    return false;
  }
  Loop l;
  l.cfg = &cfg;
  l.out = out;
  std::unique_ptr<PerfClient> client =
      PerfClient::connect(cfg.target, &Loop::on_done, &l, err, &out->error_code);
  if (!client) return false;
  out->error_code = "ERR_CONNECTION";  // from here on, unless a check below says otherwise
  l.client = client.get();
  const uint32_t bs = client->block_size();
  if (cfg.io_size % bs) {
    *err = "the I/O size (" + std::to_string(cfg.io_size) + ") is not a multiple of the " +
           std::to_string(bs) + "-byte block size";
    out->error_code = "ERR_INVALID_ARGUMENT";
    client->close();
    return false;
  }
  if (client->max_transfer() && cfg.io_size > client->max_transfer()) {
    *err = "the I/O size (" + std::to_string(cfg.io_size) + ") exceeds the controller's " +
           "maximum transfer size (" + std::to_string(client->max_transfer()) + ")";
    out->error_code = "ERR_INVALID_ARGUMENT";
    client->close();
    return false;
  }
  l.range = cfg.range_bytes ? std::min(cfg.range_bytes, client->size_bytes()) : client->size_bytes();
  l.range -= l.range % cfg.io_size;
  if (l.range < cfg.io_size) {
    *err = "the namespace (or range) is smaller than one I/O";
    out->error_code = "ERR_INVALID_ARGUMENT";
    client->close();
    return false;
  }
  l.rng = cfg.seed ? cfg.seed : (mono_ns() | 1);

  const size_t nconn = client->connections();
  const size_t qd = std::min<size_t>(cfg.target.queue_depth, client->queue_depth());
  const size_t n = nconn * qd;
  std::vector<PerfIo> ios(n);
  // One buffer per I/O, page aligned, written once with a non-zero pattern
  // (so compression or zero detection anywhere on the path cannot help).
  size_t stride = (size_t(cfg.io_size) + 4095) & ~size_t(4095);
  void* mem = nullptr;
  if (posix_memalign(&mem, 4096, stride * n) != 0) {
    *err = "out of memory for I/O buffers";
    client->close();
    return false;
  }
  std::unique_ptr<void, void (*)(void*)> hold(mem, free);
  auto* base = static_cast<uint8_t*>(mem);
  for (size_t i = 0; i < stride * n; i += 8) {
    uint64_t v = l.next_rand();
    std::memcpy(base + i, &v, std::min<size_t>(8, stride * n - i));
  }
  l.retry.reserve(n);

  const uint64_t t0 = mono_ns();
  l.measure_from = t0 + uint64_t(cfg.ramp_s * 1e9);
  l.measure_to = l.measure_from + uint64_t(cfg.duration_s * 1e9);
  // The first queue depth's worth leaves as one batch per connection, as
  // fio (through our engine) sends it: both tools start from the same state.
  client->cork(true);
  for (size_t i = 0; i < n; i++) {
    ios[i].conn = uint16_t(i % nconn);
    ios[i].buf = base + i * stride;
    l.issue(&ios[i]);
  }
  client->cork(false);

  while (true) {
    uint64_t now = mono_ns();
    if (now >= l.measure_to || client->failed() || (stop && stop->load(std::memory_order_relaxed))) {
      l.submitting = false;
    }
    if (!l.submitting && l.outstanding == 0) break;
    if (!l.submitting && now > l.measure_to + 10000000000ull) {
      *err = "I/O still outstanding 10 s after the end of the run";
      break;
    }
    if (!l.retry.empty() && l.submitting) {
      std::vector<PerfIo*> again;
      again.swap(l.retry);
      for (PerfIo* io : again) l.issue(io);
    }
    if (cfg.busy_poll) {
      client->poll();
    } else {
      client->wait(10);
    }
  }
  const uint64_t t1 = std::min(mono_ns(), l.measure_to);
  if (client->failed() && err->empty()) *err = client->error();
  client->close();

  out->seconds = t1 > l.measure_from ? double(t1 - l.measure_from) / 1e9 : 0;
  if (out->seconds > 0) {
    out->iops = double(out->ios) / out->seconds;
    out->mib_s = double(out->bytes) / out->seconds / (1024.0 * 1024.0);
  }
  out->lat_avg_us = l.hist.mean() / 1000.0;
  out->lat_min_us = double(l.hist.min()) / 1000.0;
  out->lat_max_us = double(l.hist.max()) / 1000.0;
  out->lat_p50_us = double(l.hist.percentile(50)) / 1000.0;
  out->lat_p90_us = double(l.hist.percentile(90)) / 1000.0;
  out->lat_p99_us = double(l.hist.percentile(99)) / 1000.0;
  out->lat_p999_us = double(l.hist.percentile(99.9)) / 1000.0;
  out->block_size = bs;
  out->size_bytes = client->size_bytes();
  out->connections = uint16_t(nconn);
  out->queue_depth = uint16_t(qd);
  if (err->empty()) out->error_code = nullptr;
  return err->empty();
}

}  // namespace nvmf::host
