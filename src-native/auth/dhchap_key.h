// DH-HMAC-CHAP secrets in their textual representation, as printed by
// `nvme gen-dhchap-key` and accepted by the Linux host and target:
//
//   DHHC-1:<hh>:<base64(secret || crc32(secret))>:
//
// <hh> is two hex digits naming the transform hash (00 none, 01 SHA-256,
// 02 SHA-384, 03 SHA-512); the secret is 32, 48 or 64 bytes; the CRC is the
// zlib/IEEE CRC-32 of the secret, appended little-endian; base64 is the
// standard alphabet with padding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "auth/crypto.h"

namespace nvmf::auth {

// One value per way a key string can be wrong, so the user is told which
// field to fix.
enum class KeyError : uint8_t {
  Ok = 0,
  BadPrefix,         // does not start with "DHHC-1:"
  BadHashId,         // <hh> is not exactly two hex digits 00..03 followed by ':'
  BadBase64,         // the key field is not canonical padded base64
  BadLength,         // decodes to something other than 32/48/64 + 4 bytes
  BadCrc,            // the CRC-32 does not match the secret
  MissingTerminator, // the key field is not closed by ':'
  TrailingGarbage,   // characters after the closing ':'
  NoMemory,
};

// Human-readable description of each KeyError (never nullptr).
const char* key_error_message(KeyError e);

// A parsed key: the raw secret and its transform hash.
struct DhchapKey {
  HashId hash = HashId::None;
  SecureBuffer secret;  // 32, 48 or 64 bytes
};

// Parses and validates `text` field by field. On success fills `out`;
// otherwise `out` is left empty. Scratch copies of the secret are wiped.
KeyError parse_key(std::string_view text, DhchapKey& out);

// True when `len` is an allowed secret length (32, 48, 64).
bool key_length_valid(size_t len);

// Formats `secret` with transform hash `hash` as a DHHC-1 string into `out`
// (previous contents wiped first). -EINVAL for an invalid hash id or secret
// length, -ENOMEM on allocation failure.
int format_key(HashId hash, std::span<const uint8_t> secret, std::string& out);

// Generates a new random secret and formats it, like `nvme gen-dhchap-key`.
// `length` 0 picks the default: the digest length of `hash`, or 32 for None.
// As in nvme-cli, a transform hash requires its own digest length (01 -> 32,
// 02 -> 48, 03 -> 64); None accepts 32, 48 or 64. -EINVAL otherwise, -EIO if
// the DRBG fails.
int generate_key(HashId hash, size_t length, std::string& out);

// The transformed key of `key` for `nqn` (see transform_key in crypto.h).
int transformed_key(const DhchapKey& key, std::string_view nqn, SecureBuffer& out);

// Zeroes a string that held a key and empties it.
void wipe_string(std::string& s);

// CRC-32 as used by the DHHC-1 format (zlib crc32(0, data, len)).
uint32_t key_crc32(std::span<const uint8_t> data);

}  // namespace nvmf::auth
