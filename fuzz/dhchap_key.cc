// libFuzzer harness: DHHC-1 key parsing (auth/dhchap_key.h). The input is
// the key text. A key that parses must format back to exactly the same
// text (the parser accepts only the canonical form), have a valid length,
// and transform under an NQN; one that does not must say why.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/dhchap_key.h"

using namespace nvmf::auth;

#define CHECK(c)                                                      \
  do {                                                                \
    if (!(c)) {                                                       \
      __builtin_printf("invariant failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                        \
    }                                                                 \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  DhchapKey key;
  KeyError e = parse_key(text, key);
  CHECK(key_error_message(e) != nullptr);
  if (e != KeyError::Ok) {
    CHECK(key.secret.empty());
    return 0;
  }
  CHECK(key_length_valid(key.secret.size()));
  std::string again;
  CHECK(format_key(key.hash, key.secret.span(), again) == 0);
  CHECK(again == text);
  SecureBuffer t;
  CHECK(transformed_key(key, "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555", t) == 0);
  CHECK(!t.empty());
  wipe_string(again);
  return 0;
}
