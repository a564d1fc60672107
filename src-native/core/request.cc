#include "core/request.h"

#include <cstdlib>
#include <cstring>

#include "core/qpair.h"
#include "core/subsystem.h"

namespace nvmf {

namespace {

constexpr size_t kBufAlign = 4096;  // O_DIRECT and RDMA registration friendly

// aligned_alloc wants a size that is a multiple of the alignment.
uint8_t* alloc_aligned(uint32_t bytes) {
  size_t n = (size_t(bytes) + kBufAlign - 1) / kBufAlign * kBufAlign;
  if (n == 0) n = kBufAlign;
  return static_cast<uint8_t*>(std::aligned_alloc(kBufAlign, n));
}

}  // namespace

Request::~Request() {
  std::free(buf);
  std::free(aux);
  if (buf_res) {
    buf_res->add(&Resources::request_buffers, -((buf ? 1 : 0) + (aux ? 1 : 0)));
    buf_res->add(&Resources::request_buffer_bytes, -(int64_t(buf ? buf_cap : 0) + (aux ? aux_cap : 0)));
  }
}

namespace {
void count_buffer(Request* r, uint32_t bytes) {
  if (!r->buf_res && r->qpair) r->buf_res = r->qpair->resources();
  if (!r->buf_res) return;
  r->buf_res->add(&Resources::request_buffers, 1);
  r->buf_res->add(&Resources::request_buffer_bytes, bytes);
}
}  // namespace

bool Request::alloc_aux(uint32_t cap) {
  if (aux) return true;
  aux = alloc_aligned(cap);
  if (!aux) return false;
  aux_cap = cap;
  count_buffer(this, aux_cap);
  return true;
}

bool Request::use_own_buffer(uint32_t len, uint32_t cap) {
  if (!buf) {
    // Allocated once, at the largest size this request will ever need, so
    // the steady state never allocates.
    if (len > cap) return false;
    buf = alloc_aligned(cap);
    if (!buf) return false;
    buf_cap = cap;
    count_buffer(this, buf_cap);
  }
  if (len > buf_cap) return false;
  iov[0].iov_base = buf;
  iov[0].iov_len = len;
  iovcnt = 1;
  return true;
}

uint32_t Request::copy_to_iov(const void* src, uint32_t len) {
  const uint8_t* p = static_cast<const uint8_t*>(src);
  uint32_t done = 0;
  for (int i = 0; i < iovcnt && done < len; i++) {
    uint32_t n = uint32_t(iov[i].iov_len < len - done ? iov[i].iov_len : len - done);
    std::memcpy(iov[i].iov_base, p + done, n);
    done += n;
  }
  return done;
}

uint32_t Request::copy_from_iov(void* dst, uint32_t len) const {
  uint8_t* p = static_cast<uint8_t*>(dst);
  uint32_t done = 0;
  for (int i = 0; i < iovcnt && done < len; i++) {
    uint32_t n = uint32_t(iov[i].iov_len < len - done ? iov[i].iov_len : len - done);
    std::memcpy(p + done, iov[i].iov_base, n);
    done += n;
  }
  return done;
}

void Request::reset() {
  cmd = SqEntry{};
  cpl = CqEntry{};
  xfer = XferDir::None;
  length = 0;
  for (auto& v : iov) v = iovec{};
  iovcnt = 0;
  // Dropping the pin here (not at completion) keeps a zero-copy read's bdev
  // memory alive until the transport has sent it.
  ns.reset();
  bio.op = BdevOp::Read;
  bio.lba = 0;
  bio.nlb = 0;
  bio.iov = nullptr;
  bio.iovcnt = 0;
  bio.ranges = nullptr;
  bio.nranges = 0;
  bio.cb = nullptr;
  bio.ctx = nullptr;
  start_ns = 0;
}

}  // namespace nvmf
