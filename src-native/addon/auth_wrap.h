// N-API edge of DH-HMAC-CHAP: the key functions exported to lib/ (generate,
// validate), argument readers for keys and the auth policy shared by the
// target and host wrappers, and test hooks exposing the crypto formulas for
// known-answer tests (test/auth-kat.test.ts).
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "auth/dhchap_key.h"
#include "auth/policy.h"

namespace nvmf {

// Adds generateDhchapKey, parseDhchapKey and authTest to the exports.
void AuthInit(Napi::Env env, Napi::Object exports);

// Reads a DHHC-1 key string. undefined/null leaves *out null. Throws
// ERR_INVALID_KEY naming `field` and what is wrong with it; the native copy
// of the text is wiped either way.
bool key_arg(Napi::Env env, Napi::Value v, const std::string& field,
             std::shared_ptr<const auth::DhchapKey>* out);

// Reads { digests?: string[], dhgroups?: string[], timeoutMs?: number } into
// *out (absent fields keep their value). Throws ERR_INVALID_ARGUMENT naming
// the field.
bool policy_arg(Napi::Env env, Napi::Value v, const std::string& field, auth::AuthPolicy* out);

}  // namespace nvmf
