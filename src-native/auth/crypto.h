// DH-HMAC-CHAP crypto primitives (NVMe Base Specification, "DH-HMAC-CHAP
// protocol"): identifiers, the secret buffer type, HMAC/digest helpers, the
// key transform, ephemeral FFDHE key agreement and the response transcripts.
//
// Self-contained: no Node/N-API dependency, no exceptions. Every fallible call
// returns 0 (or a length) on success and -errno on failure. OpenSSL is used
// through the 3.0 EVP API only, restricted to symbols Node's bundled OpenSSL
// exports, because the addon resolves them from the Node process at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

// Forward declaration matching <openssl/types.h>, so users of this header do
// not need OpenSSL's include path.
typedef struct evp_pkey_st EVP_PKEY;

namespace nvmf::auth {

// ---- identifiers ---------------------------------------------------------

// Hash function identifiers of the DH-HMAC-CHAP protocol descriptor, and the
// <hh> transform identifier of a DHHC-1 key (where 0 means "no transform").
enum class HashId : uint8_t {
  None = 0x00,
  Sha256 = 0x01,
  Sha384 = 0x02,
  Sha512 = 0x03,
};

constexpr size_t kMaxDigestLength = 64;

// True for the HMAC ids usable in the protocol (1..3); None is not.
bool hash_id_valid(uint8_t id);
// Digest length in bytes (32/48/64); 0 for None or an unknown id.
size_t hash_length(HashId id);
// "sha256", "sha384", "sha512"; "none" for None; nullptr for an unknown id.
const char* hash_name(HashId id);
// Parses "sha256"/"sha384"/"sha512" (also "hmac(sha256)" etc.). -EINVAL else.
int hash_from_name(std::string_view name, HashId* out);

// Diffie-Hellman group identifiers (RFC 7919 FFDHE groups).
enum class DhGroupId : uint8_t {
  Null = 0x00,
  Ffdhe2048 = 0x01,
  Ffdhe3072 = 0x02,
  Ffdhe4096 = 0x03,
  Ffdhe6144 = 0x04,
  Ffdhe8192 = 0x05,
};

constexpr size_t kMaxDhValueLength = 1024;  // ffdhe8192

// True for 0..5.
bool dh_group_id_valid(uint8_t id);
// "null", "ffdhe2048", ... "ffdhe8192"; nullptr for an unknown id.
const char* dh_group_name(DhGroupId id);
// Size of the modulus in bytes, which is the exact length of a public value
// and of the shared secret on the wire; 0 for Null or an unknown id.
size_t dh_group_size(DhGroupId id);
// Parses the names above. -EINVAL for anything else.
int dh_group_from_name(std::string_view name, DhGroupId* out);

// ---- secret storage ------------------------------------------------------

// Heap buffer for secret bytes. Wiped with OPENSSL_cleanse when it is
// destroyed, cleared, reallocated or overwritten by a move; a move transfers
// the allocation, so no second copy of the secret ever exists. Not copyable:
// use copy_from() so a copy is always explicit and checked.
class SecureBuffer {
 public:
  SecureBuffer() noexcept = default;
  ~SecureBuffer();
  SecureBuffer(SecureBuffer&& other) noexcept;
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;

  // Replaces the contents with `n` zero bytes. -ENOMEM on failure (the old
  // contents are wiped either way).
  int allocate(size_t n);
  // Replaces the contents with a copy of `bytes`. -ENOMEM on failure.
  int assign(std::span<const uint8_t> bytes);
  int copy_from(const SecureBuffer& other) { return assign(other.span()); }
  // Shortens the logical size to `n` (<= size()), wiping the tail.
  void truncate(size_t n);
  // Wipes and frees.
  void clear();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::span<uint8_t> mutable_span() { return {data_, size_}; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;      // logical size
  size_t capacity_ = 0;  // allocated size, wiped in full
};

// Overwrites a stack buffer holding secret bytes.
void secure_wipe(void* p, size_t n);

// ---- primitives ----------------------------------------------------------

// Fills `out` from the OpenSSL DRBG. -EIO on failure.
int random_bytes(std::span<uint8_t> out);

// out = H(data); out.size() must equal hash_length(hash).
int digest(HashId hash, std::span<const uint8_t> data, std::span<uint8_t> out);

// out = HMAC-H(key, parts[0] || parts[1] || ...); out.size() must equal
// hash_length(hash). -EINVAL for a bad id or size, -EIO on OpenSSL failure.
int hmac(HashId hash, std::span<const uint8_t> key,
         std::span<const std::span<const uint8_t>> parts, std::span<uint8_t> out);

// Constant-time equality (CRYPTO_memcmp); false when the sizes differ.
bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

// ---- DH-HMAC-CHAP computations -------------------------------------------

// The key used in the response HMAC. With key_hash == None the secret is used
// as is; otherwise it is HMAC-H(secret, NQN || "NVMe-over-Fabrics") with H the
// key's own transform hash (not the negotiated one), so the result has that
// hash's digest length. The NQN is the host NQN for the host key and the
// subsystem NQN for the controller key.
int transform_key(HashId key_hash, std::span<const uint8_t> secret, std::string_view nqn,
                  SecureBuffer& out);

// Challenge augmentation for a non-null DH group:
//   Ca = HMAC-H(H(session_key), C)
// where session_key is g^xy mod p as a big-endian string padded to the group
// size, C the hl-byte challenge, and H the negotiated hash. out.size() and
// challenge.size() must equal hash_length(hash).
int augment_challenge(HashId hash, std::span<const uint8_t> session_key,
                      std::span<const uint8_t> challenge, std::span<uint8_t> out);

// Inputs of a response computation.
struct ResponseInput {
  HashId hash = HashId::None;             // negotiated hash (HashID of the challenge)
  std::span<const uint8_t> key;           // the responder's *transformed* key
  std::span<const uint8_t> challenge;     // C1 or C2 as carried on the wire (hl bytes)
  std::span<const uint8_t> session_key;   // g^xy mod p, padded; empty for the null group
  uint32_t seqnum = 0;                    // S1 or S2
  uint16_t transaction_id = 0;            // T_ID
  uint8_t sc_c = 0;                       // SC_C of the negotiation (0: none)
  std::string_view host_nqn;              // NQNh, without terminator
  std::string_view subsys_nqn;            // NQNc, without terminator
};

// Host response (DH-HMAC-CHAP_Reply):
//   R1 = HMAC-H(Kh', Ca1 || le32(S1) || le16(T_ID) || SC_C || "HostHost"
//               || NQNh || 00h || NQNc)
// Ca1 = C1 when session_key is empty, else augment_challenge(C1).
int host_response(const ResponseInput& in, std::span<uint8_t> out);

// Controller response (DH-HMAC-CHAP_Success1):
//   R2 = HMAC-H(Kc', Ca2 || le32(S2) || le16(T_ID) || SC_C || "Controller"
//               || NQNc || 00h || NQNh)
// Note the NQNs swap places. The Linux host and target hash 00h in place of
// SC_C here; pass sc_c = 0 (the only value this target negotiates).
int controller_response(const ResponseInput& in, std::span<uint8_t> out);

// ---- ephemeral Diffie-Hellman --------------------------------------------

// One side's ephemeral FFDHE key pair.
class DhKeyPair {
 public:
  DhKeyPair() noexcept = default;
  ~DhKeyPair();
  DhKeyPair(DhKeyPair&& other) noexcept;
  DhKeyPair& operator=(DhKeyPair&& other) noexcept;
  DhKeyPair(const DhKeyPair&) = delete;
  DhKeyPair& operator=(const DhKeyPair&) = delete;

  // Generates a fresh key pair in `group` (not Null). Replaces any previous
  // pair. -EINVAL for Null/unknown groups, -EIO on OpenSSL failure.
  int generate(DhGroupId group);

  bool valid() const { return pkey_ != nullptr; }
  DhGroupId group() const { return group_; }
  // dh_group_size(group()).
  size_t value_size() const { return dh_group_size(group_); }

  // Writes g^x mod p big-endian, left-padded with zeros to value_size().
  // Returns value_size(), -ENOSPC if `out` is smaller, -EINVAL if not valid().
  int public_value(std::span<uint8_t> out) const;

  // Computes g^xy mod p from the peer's public value and stores it, padded to
  // value_size(), in `out`. The peer value must be exactly value_size() bytes
  // (-EMSGSIZE otherwise) and lie in [2, p-2] (-EKEYREJECTED otherwise): for
  // the safe-prime FFDHE groups that range check is complete, the only small
  // subgroups being {1} and {1, p-1}. -EIO on OpenSSL failure.
  int shared_secret(std::span<const uint8_t> peer_value, SecureBuffer& out) const;

 private:
  EVP_PKEY* pkey_ = nullptr;
  DhGroupId group_ = DhGroupId::Null;
};

}  // namespace nvmf::auth
