#include "auth/dhchap_key.h"

#include <cerrno>
#include <cstring>

namespace nvmf::auth {

namespace {

constexpr std::string_view kPrefix = "DHHC-1:";
constexpr size_t kCrcLength = 4;
constexpr size_t kMaxSecret = 64;
constexpr size_t kMaxDecoded = kMaxSecret + kCrcLength;          // 68
constexpr size_t kMaxEncoded = (kMaxDecoded + 2) / 3 * 4;         // 92
// "DHHC-1:" + "hh:" + base64 + ":"
constexpr size_t kMaxKeyString = kPrefix.size() + 3 + kMaxEncoded + 1;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool is_b64_char(char c) { return b64_value(c) >= 0 || c == '='; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict RFC 4648 base64 with padding: length a multiple of 4, '=' only as
// the last one or two characters, and unused bits of the last group zero (so
// every byte string has exactly one accepted encoding). Returns the decoded
// length, -EINVAL if `in` is not such an encoding, or -EMSGSIZE if it is but
// does not fit in `cap` bytes.
int base64_decode(std::string_view in, uint8_t* out, size_t cap) {
  if (in.empty() || in.size() % 4 != 0) return -EINVAL;
  size_t pad = 0;
  if (in[in.size() - 1] == '=') pad = (in[in.size() - 2] == '=') ? 2 : 1;
  for (size_t i = 0; i < in.size() - pad; i++)
    if (b64_value(in[i]) < 0) return -EINVAL;
  if (pad == 2 && (b64_value(in[in.size() - 3]) & 0x0f) != 0) return -EINVAL;
  if (pad == 1 && (b64_value(in[in.size() - 2]) & 0x03) != 0) return -EINVAL;
  const size_t len = in.size() / 4 * 3 - pad;
  if (len > cap) return -EMSGSIZE;

  size_t o = 0;
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t group = 0;
    for (size_t j = 0; j < 4; j++) {
      const int v = in[i + j] == '=' ? 0 : b64_value(in[i + j]);
      group = (group << 6) | static_cast<uint32_t>(v);
    }
    const uint8_t bytes[3] = {static_cast<uint8_t>(group >> 16), static_cast<uint8_t>(group >> 8),
                              static_cast<uint8_t>(group)};
    for (size_t j = 0; j < 3 && o < len; j++) out[o++] = bytes[j];
  }
  return static_cast<int>(len);
}

// Writes the padded encoding of `in` plus a NUL; returns its length.
size_t base64_encode(std::span<const uint8_t> in, char* out) {
  size_t o = 0;
  for (size_t i = 0; i < in.size(); i += 3) {
    const size_t n = in.size() - i < 3 ? in.size() - i : 3;
    uint32_t group = static_cast<uint32_t>(in[i]) << 16;
    if (n > 1) group |= static_cast<uint32_t>(in[i + 1]) << 8;
    if (n > 2) group |= in[i + 2];
    out[o++] = kAlphabet[(group >> 18) & 0x3f];
    out[o++] = kAlphabet[(group >> 12) & 0x3f];
    out[o++] = n > 1 ? kAlphabet[(group >> 6) & 0x3f] : '=';
    out[o++] = n > 2 ? kAlphabet[group & 0x3f] : '=';
  }
  out[o] = '\0';
  return o;
}

void put_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint32_t get_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

const char* key_error_message(KeyError e) {
  switch (e) {
    case KeyError::Ok: return "valid key";
    case KeyError::BadPrefix: return "key does not start with 'DHHC-1:'";
    case KeyError::BadHashId:
      return "key hash identifier must be two hex digits 00 (none), 01 (SHA-256), "
             "02 (SHA-384) or 03 (SHA-512) followed by ':'";
    case KeyError::BadBase64: return "key secret is not valid base64";
    case KeyError::BadLength:
      return "key secret must decode to 32, 48 or 64 bytes plus a 4-byte CRC";
    case KeyError::BadCrc: return "key CRC-32 does not match the secret (mistyped key?)";
    case KeyError::MissingTerminator: return "key is missing the terminating ':'";
    case KeyError::TrailingGarbage: return "unexpected characters after the key's terminating ':'";
    case KeyError::NoMemory: return "out of memory while parsing the key";
  }
  return "unknown key error";
}

bool key_length_valid(size_t len) { return len == 32 || len == 48 || len == 64; }

uint32_t key_crc32(std::span<const uint8_t> data) {
  // Reflected IEEE 802.3 polynomial, initial value and final XOR all-ones:
  // identical to zlib's crc32(0, data, len).
  uint32_t crc = 0xffffffffu;
  for (uint8_t b : data) {
    crc ^= b;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

KeyError parse_key(std::string_view text, DhchapKey& out) {
  out.secret.clear();
  out.hash = HashId::None;

  if (!text.starts_with(kPrefix)) return KeyError::BadPrefix;
  std::string_view rest = text.substr(kPrefix.size());

  if (rest.size() < 3 || rest[2] != ':') return KeyError::BadHashId;
  const int hi = hex_value(rest[0]);
  const int lo = hex_value(rest[1]);
  if (hi < 0 || lo < 0) return KeyError::BadHashId;
  const int hh = hi * 16 + lo;
  if (hh > 0x03) return KeyError::BadHashId;
  rest = rest.substr(3);

  // The key field ends at the first ':'; without one, at the first character
  // that cannot be part of base64 (so "<key>\n" reads as a missing ':').
  const size_t colon = rest.find(':');
  size_t field_len = colon;
  if (colon == std::string_view::npos) {
    field_len = 0;
    while (field_len < rest.size() && is_b64_char(rest[field_len])) field_len++;
  }
  const std::string_view field = rest.substr(0, field_len);

  uint8_t decoded[kMaxDecoded];
  const int n = base64_decode(field, decoded, sizeof(decoded));
  if (n == -EINVAL) return KeyError::BadBase64;
  if (n < static_cast<int>(kCrcLength) ||
      !key_length_valid(static_cast<size_t>(n) - kCrcLength)) {
    secure_wipe(decoded, sizeof(decoded));
    return KeyError::BadLength;
  }
  const size_t secret_len = static_cast<size_t>(n) - kCrcLength;
  const std::span<const uint8_t> secret(decoded, secret_len);
  const bool crc_ok = key_crc32(secret) == get_le32(decoded + secret_len);
  if (!crc_ok) {
    secure_wipe(decoded, sizeof(decoded));
    return KeyError::BadCrc;
  }
  if (colon == std::string_view::npos) {
    secure_wipe(decoded, sizeof(decoded));
    return KeyError::MissingTerminator;
  }
  if (colon + 1 != rest.size()) {
    secure_wipe(decoded, sizeof(decoded));
    return KeyError::TrailingGarbage;
  }

  const int rc = out.secret.assign(secret);
  secure_wipe(decoded, sizeof(decoded));
  if (rc < 0) return KeyError::NoMemory;
  out.hash = static_cast<HashId>(hh);
  return KeyError::Ok;
}

int format_key(HashId hash, std::span<const uint8_t> secret, std::string& out) {
  const auto hh = static_cast<uint8_t>(hash);
  if (hh > 0x03 || !key_length_valid(secret.size())) return -EINVAL;

  uint8_t raw[kMaxDecoded];
  std::memcpy(raw, secret.data(), secret.size());
  put_le32(raw + secret.size(), key_crc32(secret));

  char text[kMaxKeyString + 1];
  size_t len = 0;
  std::memcpy(text, kPrefix.data(), kPrefix.size());
  len += kPrefix.size();
  text[len++] = '0';
  text[len++] = static_cast<char>('0' + hh);
  text[len++] = ':';
  len += base64_encode({raw, secret.size() + kCrcLength}, text + len);
  text[len++] = ':';

  // Wipe the old contents first: assign() may reallocate and free them.
  wipe_string(out);
  out.assign(text, len);
  secure_wipe(raw, sizeof(raw));
  secure_wipe(text, sizeof(text));
  return 0;
}

int generate_key(HashId hash, size_t length, std::string& out) {
  const auto hh = static_cast<uint8_t>(hash);
  if (hh > 0x03) return -EINVAL;
  const size_t digest_len = hash_length(hash);
  if (length == 0) length = hash == HashId::None ? 32 : digest_len;
  if (!key_length_valid(length)) return -EINVAL;
  if (hash != HashId::None && length != digest_len) return -EINVAL;

  uint8_t secret[kMaxSecret];
  int rc = random_bytes({secret, length});
  if (rc == 0) rc = format_key(hash, {secret, length}, out);
  secure_wipe(secret, sizeof(secret));
  return rc;
}

int transformed_key(const DhchapKey& key, std::string_view nqn, SecureBuffer& out) {
  return transform_key(key.hash, key.secret.span(), nqn, out);
}

void wipe_string(std::string& s) {
  if (!s.empty()) secure_wipe(s.data(), s.size());
  s.clear();
}

}  // namespace nvmf::auth
