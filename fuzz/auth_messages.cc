// libFuzzer harness: every DH-HMAC-CHAP message decoder (auth/messages.h),
// in both decode modes. A message that decodes is encoded again and the
// encoding must decode to the same fields (decoders and encoders agree on
// the layout); failures must map to a reason code explanation.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "auth/messages.h"

using namespace nvmf::auth;

#define CHECK(c)                                                      \
  do {                                                                \
    if (!(c)) {                                                       \
      __builtin_printf("invariant failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                        \
    }                                                                 \
  } while (0)

namespace {

uint8_t out[kMaxMessageLength + 1024];

bool same(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

void on_error(DecodeError e) {
  CHECK(decode_error_message(e) != nullptr);
  if (e != DecodeError::Ok) CHECK(failure_reason_for(e) != FailureReason::None);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MessageHeader mh;
  on_error(decode_header(data, size, &mh));
  for (DecodeMode mode : {DecodeMode::Exact, DecodeMode::AllowTrailing}) {
    Negotiate n;
    DecodeError e = decode_negotiate(data, size, &n, mode);
    on_error(e);
    if (e == DecodeError::Ok) {
      CHECK(n.hash_count <= kMaxIdList && n.dh_group_count <= kMaxIdList);
      int len = encode_negotiate(n, out, sizeof out);
      if (len > 0) {
        Negotiate n2;
        CHECK(decode_negotiate(out, size_t(len), &n2) == DecodeError::Ok);
        CHECK(n2.t_id == n.t_id && n2.sc_c == n.sc_c && same(n2.hashes(), n.hashes()) && same(n2.dh_groups(), n.dh_groups()));
      }
    }
    Challenge c;
    e = decode_challenge(data, size, &c, mode);
    on_error(e);
    if (e == DecodeError::Ok) {
      CHECK(c.challenge.data() >= data && c.challenge.data() + c.challenge.size() <= data + size);
      CHECK(c.dh_value.empty() || (c.dh_value.data() >= data && c.dh_value.data() + c.dh_value.size() <= data + size));
      int len = encode_challenge(c, out, sizeof out);
      if (len > 0) {
        Challenge c2;
        CHECK(decode_challenge(out, size_t(len), &c2) == DecodeError::Ok);
        CHECK(c2.t_id == c.t_id && c2.hash == c.hash && c2.dh_group == c.dh_group && c2.seqnum == c.seqnum);
        CHECK(same(c2.challenge, c.challenge) && same(c2.dh_value, c.dh_value));
      }
    }
    Reply r;
    e = decode_reply(data, size, &r, mode);
    on_error(e);
    if (e == DecodeError::Ok) {
      CHECK(r.response.size() == r.hl);
      int len = encode_reply(r, out, sizeof out);
      if (len > 0) {
        Reply r2;
        CHECK(decode_reply(out, size_t(len), &r2) == DecodeError::Ok);
        CHECK(r2.t_id == r.t_id && r2.hl == r.hl && r2.cvalid == r.cvalid && r2.seqnum == r.seqnum);
        CHECK(same(r2.response, r.response) && same(r2.dh_value, r.dh_value));
      }
    }
    Success1 s1;
    e = decode_success1(data, size, &s1, mode);
    on_error(e);
    if (e == DecodeError::Ok) {
      CHECK(s1.rvalid ? s1.response.size() == s1.hl : s1.response.empty());
      int len = encode_success1(s1, out, sizeof out);
      if (len > 0) {
        Success1 s2;
        CHECK(decode_success1(out, size_t(len), &s2) == DecodeError::Ok);
        CHECK(s2.t_id == s1.t_id && s2.rvalid == s1.rvalid && same(s2.response, s1.response));
      }
    }
    Success2 s2;
    e = decode_success2(data, size, &s2, mode);
    on_error(e);
    if (e == DecodeError::Ok) {
      int len = encode_success2(s2, out, sizeof out);
      CHECK(len > 0);
      Success2 s3;
      CHECK(decode_success2(out, size_t(len), &s3) == DecodeError::Ok && s3.t_id == s2.t_id);
    }
    Failure f;
    e = decode_failure(data, size, &f, mode);
    on_error(e);
    if (e == DecodeError::Ok) {
      CHECK(f.id == MessageId::Failure1 || f.id == MessageId::Failure2);
      CHECK(failure_reason_message(f.explanation) != nullptr);
      int len = encode_failure(f, out, sizeof out);
      if (len > 0) {
        Failure f2;
        CHECK(decode_failure(out, size_t(len), &f2) == DecodeError::Ok);
        CHECK(f2.id == f.id && f2.t_id == f.t_id && f2.reason_code == f.reason_code && f2.explanation == f.explanation);
      }
    }
  }
  return 0;
}
