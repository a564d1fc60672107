// The DH-HMAC-CHAP keys of one host entry. Keys are immutable and shared:
// rotating a host's keys swaps these pointers, and a transaction already in
// progress keeps the keys it started with until it ends.
#pragma once

#include <memory>

#include "auth/dhchap_key.h"

namespace nvmf::auth {

struct HostKeys {
  std::shared_ptr<const DhchapKey> host;  // Kh: the host proves it knows it
  std::shared_ptr<const DhchapKey> ctrl;  // Kc: bidirectional only, the controller proves it
};

}  // namespace nvmf::auth
