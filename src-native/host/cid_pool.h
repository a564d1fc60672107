// Command identifiers for one queue. A CID is tag | (generation << tag_bits):
// the tag indexes the per-command slot, the generation changes every time
// the tag is reused, so a completion or data PDU for an earlier use of the
// same slot (a confused or hostile target) is recognised as stale instead of
// landing in the buffer of the command that now owns the slot.
#pragma once

#include <cstdint>
#include <vector>

namespace nvmf::host {

class CidPool {
 public:
  explicit CidPool(uint16_t depth) : gen_(depth, 0) {
    while ((1u << tag_bits_) < depth) tag_bits_++;
    free_.reserve(depth);
    // Hand out low tags first (pop from the back).
    for (uint32_t i = depth; i > 0; i--) free_.push_back(uint16_t(i - 1));
  }

  uint16_t depth() const { return uint16_t(gen_.size()); }
  size_t in_use() const { return gen_.size() - free_.size(); }
  bool full() const { return free_.empty(); }

  // Returns false when every tag is in use.
  bool get(uint16_t* tag, uint16_t* cid) {
    if (free_.empty()) return false;
    *tag = free_.back();
    free_.pop_back();
    gen_[*tag] = uint16_t((gen_[*tag] + 1) & gen_mask());
    *cid = make_cid(*tag);
    return true;
  }
  void put(uint16_t tag) { free_.push_back(tag); }

  // The tag a wire CID names, or -1 when it is out of range. The caller
  // still checks the slot is busy and its CID matches (generation).
  int tag_of(uint16_t cid) const {
    uint32_t tag = cid & ((1u << tag_bits_) - 1);
    return tag < gen_.size() ? int(tag) : -1;
  }

 private:
  uint16_t gen_mask() const { return uint16_t((1u << (16 - tag_bits_)) - 1); }
  uint16_t make_cid(uint16_t tag) const {
    return uint16_t(tag | (uint32_t(gen_[tag]) << tag_bits_));
  }

  unsigned tag_bits_ = 0;
  std::vector<uint16_t> gen_;
  std::vector<uint16_t> free_;
};

}  // namespace nvmf::host
