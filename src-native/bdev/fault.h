// Fault-injection bdev (like SPDK's error and delay bdevs together): wraps
// another bdev by name and, as configured, fails I/O with an error, delays
// completions, or stalls I/O until the faults change. For tests of what the
// host sees when a backend misbehaves (an NVMe error status, never a hang)
// and of shutdown with backend I/O outstanding. Faults change at run time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "bdev/bdev.h"

namespace nvmf {

struct FaultConfig {
  // Which operations may fail: reads; writes; everything else (flush,
  // write zeroes, deallocate).
  bool error_read = false;
  bool error_write = false;
  bool error_other = false;
  double error_rate = 1.0;   // fraction of the selected operations that fail
  uint64_t error_count = 0;  // stop after this many injected errors; 0 = no limit
  uint32_t delay_us = 0;     // every completion arrives at least this late
  bool stall = false;        // hold new I/O (not submitted) until stall ends
};

struct FaultStats {
  uint64_t ios = 0;        // I/Os submitted to this bdev
  uint64_t errors = 0;     // errors injected (completed with -EIO)
  uint64_t delayed = 0;    // completions held back by delay_us
  uint64_t stalled = 0;    // I/Os that were held by a stall
  uint64_t held = 0;       // I/Os held right now (stalled or delayed)
  uint64_t cancelled = 0;  // held I/Os completed early by cancel_io (shutdown)
};

// `base` must outlive nothing: the fault bdev holds it (and claims it, so it
// cannot be deleted first).
int bdev_create_fault(BdevInfo info, std::shared_ptr<Bdev> base, const FaultConfig& cfg,
                      std::shared_ptr<Bdev>* out, std::string* err);
// -ENOTSUP when `b` is not a fault bdev. Any thread.
int bdev_set_faults(Bdev& b, const FaultConfig& cfg);
int bdev_fault_stats(Bdev& b, FaultStats* out);

}  // namespace nvmf
