// libFuzzer harness: the controller's DH-HMAC-CHAP state machine
// (auth/session.h) driven by a hostile host. The input is a script:
//   byte 0: the policy (bit 0: allow ffdhe2048 besides the null group --
//           rare, DH key generation is slow; bit 1: the host also has a
//           controller key, so bidirectional transactions are possible)
//   then chunks [op][len lo][len hi][payload]: op even = Authentication
//   Send of the payload; op odd = Authentication Receive with AL = len.
// The session must never write past AL, never return a length it did not
// write, and once Failed or Done must stay there.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "auth/dhchap_key.h"
#include "auth/session.h"

using namespace nvmf::auth;

#define CHECK(c)                                                      \
  do {                                                                \
    if (!(c)) {                                                       \
      __builtin_printf("invariant failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                        \
    }                                                                 \
  } while (0)

namespace {

std::shared_ptr<const DhchapKey> make_key(uint8_t fill, HashId h) {
  std::vector<uint8_t> secret(32, fill);
  std::string text;
  if (format_key(h, secret, text) != 0) abort();
  auto k = std::make_shared<DhchapKey>();
  if (parse_key(text, *k) != KeyError::Ok) abort();
  return k;
}

const char* kHost = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";
const char* kSub = "nqn.2024-01.io.nvmf-target:fuzz";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto host_key = make_key(0x11, HashId::Sha256);
  static const auto ctrl_key = make_key(0x22, HashId::None);
  if (size < 1) return 0;
  AuthPolicy policy;
  policy.digests = {HashId::Sha256, HashId::Sha384, HashId::Sha512};
  policy.ndigests = 3;
  if (data[0] & 1) {
    policy.dhgroups = {DhGroupId::Ffdhe2048, DhGroupId::Null, DhGroupId::Null,
                       DhGroupId::Null, DhGroupId::Null, DhGroupId::Null};
    policy.ndhgroups = 2;
  } else {
    policy.dhgroups = {DhGroupId::Null, DhGroupId::Null, DhGroupId::Null,
                       DhGroupId::Null, DhGroupId::Null, DhGroupId::Null};
    policy.ndhgroups = 1;
  }
  HostKeys keys;
  keys.host = host_key;
  if (data[0] & 2) keys.ctrl = ctrl_key;
  ControllerSession s(policy, keys, kHost, kSub);

  static uint8_t out[8192 + 16];
  size_t i = 1;
  bool over = false;
  while (i + 3 <= size) {
    const uint8_t op = data[i];
    const size_t len = size_t(data[i + 1]) | (size_t(data[i + 2]) << 8);
    i += 3;
    if (op % 2 == 0) {
      const size_t n = len < size - i ? len : size - i;
      std::vector<uint8_t> msg(data + i, data + i + n);  // exact size: ASan sees overreads
      i += n;
      auto o = s.on_send(msg);
      if (over) CHECK(o == ControllerSession::Outcome::Failed || s.step() == ControllerSession::Step::Failed ||
                      s.step() == ControllerSession::Step::Done);
    } else {
      const size_t al = len % 8192;
      std::memset(out, 0xa5, sizeof out);
      ControllerSession::Outcome o;
      int n = s.on_recv(std::span<uint8_t>(out, al), &o);
      CHECK(n <= int(al));
      for (size_t k = al; k < sizeof out; k++) CHECK(out[k] == 0xa5);  // nothing past AL
      (void)o;
    }
    if (s.step() == ControllerSession::Step::Failed || s.step() == ControllerSession::Step::Done) over = true;
    (void)failure_reason_name(s.reason());
    (void)s.detail();
  }
  return 0;
}
