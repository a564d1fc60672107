// What the target allows in DH-HMAC-CHAP: the hash functions and DH groups
// it will select (in order of preference) and how long a transaction may
// take. One immutable snapshot per target, replaced as a whole.
#pragma once

#include <array>
#include <cstdint>

#include "auth/crypto.h"

namespace nvmf::auth {

struct AuthPolicy {
  // Preference order: the controller selects the first entry the host also
  // offers. Default: every hash and group, strongest first (as SPDK does).
  std::array<HashId, 3> digests{HashId::Sha512, HashId::Sha384, HashId::Sha256};
  uint8_t ndigests = 3;
  std::array<DhGroupId, 6> dhgroups{DhGroupId::Ffdhe8192, DhGroupId::Ffdhe6144,
                                    DhGroupId::Ffdhe4096, DhGroupId::Ffdhe3072,
                                    DhGroupId::Ffdhe2048, DhGroupId::Null};
  uint8_t ndhgroups = 6;
  // The longest wait for the host's next message of a transaction (from
  // Connect, then from each message): a silent host is dropped, a slow one
  // (a VM computing ffdhe8192) has the whole timeout for every step.
  uint32_t timeout_ms = 30000;
};

}  // namespace nvmf::auth
