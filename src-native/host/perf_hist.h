// A latency histogram for the perf tool and the benchmark client: log-linear
// buckets (64 per power of two, so any percentile is within ~1.6% of the
// true value), fixed size, no allocation after construction. Recording is
// an index computation and an increment: cheap enough to run per I/O.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace nvmf::host {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 6;  // 64 sub-buckets per power of two
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kMaxExp = 44;  // up to ~4.9 hours in ns; beyond clamps

  LatencyHistogram() : counts_(size_t(kMaxExp - kSubBits + 2) * kSub, 0) {}

  void record(uint64_t ns) {
    counts_[index(ns)]++;
    n_++;
    sum_ += ns;
    if (ns < min_ || n_ == 1) min_ = ns;
    if (ns > max_) max_ = ns;
  }

  void merge(const LatencyHistogram& o) {
    for (size_t i = 0; i < counts_.size(); i++) counts_[i] += o.counts_[i];
    if (o.n_ && (n_ == 0 || o.min_ < min_)) min_ = o.min_;
    max_ = std::max(max_, o.max_);
    n_ += o.n_;
    sum_ += o.sum_;
  }

  void reset() {
    std::fill(counts_.begin(), counts_.end(), 0);
    n_ = sum_ = max_ = min_ = 0;
  }

  uint64_t count() const { return n_; }
  uint64_t min() const { return min_; }
  uint64_t max() const { return max_; }
  double mean() const { return n_ ? double(sum_) / double(n_) : 0.0; }

  // The value below which `p` percent of the samples fall (bucket midpoint,
  // clamped to the observed min/max).
  uint64_t percentile(double p) const {
    if (n_ == 0) return 0;
    uint64_t want = uint64_t(double(n_) * p / 100.0 + 0.5);
    if (want < 1) want = 1;
    if (want > n_) want = n_;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); i++) {
      seen += counts_[i];
      if (seen >= want) return std::clamp(midpoint(i), min_, max_);
    }
    return max_;
  }

 private:
  static size_t index(uint64_t v) {
    if (v < uint64_t(kSub)) return size_t(v);
    int e = 63 - __builtin_clzll(v);  // >= kSubBits
    if (e > kMaxExp) return size_t(kMaxExp - kSubBits + 2) * kSub - 1;
    uint64_t sub = (v >> (e - kSubBits)) & (kSub - 1);
    return size_t(e - kSubBits + 1) * kSub + size_t(sub);
  }
  static uint64_t midpoint(size_t i) {
    if (i < size_t(kSub)) return i;
    int e = int(i / kSub) + kSubBits - 1;
    uint64_t sub = i % kSub;
    uint64_t lo = (uint64_t(kSub) + sub) << (e - kSubBits);
    uint64_t width = uint64_t(1) << (e - kSubBits);
    return lo + width / 2;
  }

  std::vector<uint64_t> counts_;
  uint64_t n_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
};

}  // namespace nvmf::host
