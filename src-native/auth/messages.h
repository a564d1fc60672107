// DH-HMAC-CHAP messages carried by Authentication Send / Receive (NVMe Base
// Specification, "Authentication" and "DH-HMAC-CHAP protocol"):
//
//   host -> ctrl   AUTH_Negotiate      common  00h   Auth Send
//   ctrl -> host   DH-HMAC-CHAP_Challenge  01h  01h  Auth Receive
//   host -> ctrl   DH-HMAC-CHAP_Reply      01h  02h  Auth Send
//   ctrl -> host   DH-HMAC-CHAP_Success1   01h  03h  Auth Receive
//   host -> ctrl   DH-HMAC-CHAP_Success2   01h  04h  Auth Send (bidirectional only)
//   host -> ctrl   AUTH_Failure2       common  F0h   Auth Send
//   ctrl -> host   AUTH_Failure1       common  F1h   Auth Receive
//
// Decoders never read past `len`; they treat every byte as hostile (they are
// fuzzed) and report a DecodeError that maps to the AUTH_Failure reason code
// explanation the target sends back. Decoded variable-length fields are spans
// into the caller's buffer. Encoders write into a caller buffer and return
// the message length, -ENOSPC when it does not fit, -EINVAL for inconsistent
// input. Multi-byte fields are little-endian and (de)serialised byte by byte.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "auth/crypto.h"

namespace nvmf::auth {

// ---- command-level constants (Authentication Send/Receive SQE) ----

constexpr uint8_t kSecurityProtocol = 0xe9;  // SECP: NVMe in-band authentication
constexpr uint8_t kSpsp0 = 0x01;
constexpr uint8_t kSpsp1 = 0x01;

// ---- message identification ----

enum class AuthType : uint8_t {
  Common = 0x00,  // AUTH_Negotiate, AUTH_Failure1/2
  Dhchap = 0x01,  // DH-HMAC-CHAP_* messages
};

enum class MessageId : uint8_t {
  Negotiate = 0x00,
  Challenge = 0x01,
  Reply = 0x02,
  Success1 = 0x03,
  Success2 = 0x04,
  Failure2 = 0xf0,
  Failure1 = 0xf1,
};

const char* message_name(MessageId id);

// AUTHID of the DH-HMAC-CHAP authentication protocol descriptor.
constexpr uint8_t kAuthIdDhchap = 0x01;
// Per-list capacity of the descriptor's ID list (hash IDs at 0..29, DH group
// IDs at 30..59).
constexpr size_t kMaxIdList = 30;

// SC_C: secure channel concatenation requested by the host.
enum class ScC : uint8_t {
  None = 0x00,
  SecureChannel = 0x01,
  NewTlsPsk = 0x02,
  ReplaceTlsPsk = 0x03,
};

// AUTH_Failure reason code (only one is defined).
constexpr uint8_t kReasonCodeFailed = 0x01;

// AUTH_Failure reason code explanation. None (0) is not a wire value: it
// means "no failure" wherever a FailureReason is returned.
enum class FailureReason : uint8_t {
  None = 0x00,
  Failed = 0x01,             // authentication failed
  ProtocolUnusable = 0x02,   // authentication protocol not usable
  ConcatMismatch = 0x03,     // secure channel concatenation mismatch
  HashUnusable = 0x04,       // hash function not usable
  DhGroupUnusable = 0x05,    // DH group not usable
  IncorrectPayload = 0x06,   // incorrect payload
  IncorrectMessage = 0x07,   // incorrect protocol message
};

const char* failure_reason_message(FailureReason r);

// ---- wire layouts (documentation + offsets; never memcpy'd as a whole) ----

namespace wire {

struct NegotiateHeader {
  uint8_t auth_type;  // 00h
  uint8_t auth_id;    // 00h
  uint8_t rsvd[2];
  uint8_t t_id[2];    // le16
  uint8_t sc_c;
  uint8_t napd;       // number of protocol descriptors that follow
};
static_assert(sizeof(NegotiateHeader) == 8);

struct ProtocolDescriptor {
  uint8_t authid;  // 01h: DH-HMAC-CHAP
  uint8_t rsvd;
  uint8_t halen;   // hash IDs at idlist[0 .. halen)
  uint8_t dhlen;   // DH group IDs at idlist[30 .. 30 + dhlen)
  uint8_t idlist[60];
};
static_assert(sizeof(ProtocolDescriptor) == 64);

struct ChallengeHeader {
  uint8_t auth_type;  // 01h
  uint8_t auth_id;    // 01h
  uint8_t rsvd1[2];
  uint8_t t_id[2];    // le16
  uint8_t hl;         // hash length
  uint8_t rsvd2;
  uint8_t hashid;
  uint8_t dhgid;
  uint8_t dhvlen[2];  // le16
  uint8_t seqnum[4];  // le32
  // hl bytes challenge C1, then dhvlen bytes DH value g^x mod p
};
static_assert(sizeof(ChallengeHeader) == 16);

struct ReplyHeader {
  uint8_t auth_type;  // 01h
  uint8_t auth_id;    // 02h
  uint8_t rsvd1[2];
  uint8_t t_id[2];    // le16
  uint8_t hl;
  uint8_t rsvd2;
  uint8_t cvalid;     // 1: C2 is valid, the host wants the controller authenticated
  uint8_t rsvd3;
  uint8_t dhvlen[2];  // le16
  uint8_t seqnum[4];  // le32 S2
  // hl bytes response R1, hl bytes challenge C2, dhvlen bytes DH value g^y mod p
};
static_assert(sizeof(ReplyHeader) == 16);

struct Success1Header {
  uint8_t auth_type;  // 01h
  uint8_t auth_id;    // 03h
  uint8_t rsvd1[2];
  uint8_t t_id[2];    // le16
  uint8_t hl;
  uint8_t rsvd2;
  uint8_t rvalid;     // 1: response R2 follows
  uint8_t rsvd3[7];
  // hl bytes response R2 when rvalid
};
static_assert(sizeof(Success1Header) == 16);

struct Success2Message {
  uint8_t auth_type;  // 01h
  uint8_t auth_id;    // 04h
  uint8_t rsvd1[2];
  uint8_t t_id[2];    // le16
  uint8_t rsvd2[10];
};
static_assert(sizeof(Success2Message) == 16);

struct FailureMessage {
  uint8_t auth_type;    // 00h
  uint8_t auth_id;      // F0h / F1h
  uint8_t rsvd1[2];
  uint8_t t_id[2];      // le16
  uint8_t rescode;      // 01h
  uint8_t rescode_exp;  // FailureReason
};
static_assert(sizeof(FailureMessage) == 8);

}  // namespace wire

// Largest message this layer produces or accepts with one DH-HMAC-CHAP
// descriptor: a Reply with SHA-512 and an ffdhe8192 value.
constexpr size_t kMaxMessageLength =
    sizeof(wire::ReplyHeader) + 2 * kMaxDigestLength + kMaxDhValueLength;

// ---- decoded / to-be-encoded messages ----

struct MessageHeader {
  uint8_t auth_type = 0;
  uint8_t auth_id = 0;
  uint16_t t_id = 0;
};

struct Negotiate {
  uint16_t t_id = 0;
  uint8_t sc_c = 0;
  uint8_t napd = 1;  // decode: as received; encode: always one descriptor
  // From the (first) DH-HMAC-CHAP descriptor.
  uint8_t hash_count = 0;
  std::array<uint8_t, kMaxIdList> hash_ids{};
  uint8_t dh_group_count = 0;
  std::array<uint8_t, kMaxIdList> dh_group_ids{};

  std::span<const uint8_t> hashes() const { return {hash_ids.data(), hash_count}; }
  std::span<const uint8_t> dh_groups() const { return {dh_group_ids.data(), dh_group_count}; }
};

struct Challenge {
  uint16_t t_id = 0;
  HashId hash = HashId::None;
  DhGroupId dh_group = DhGroupId::Null;
  uint32_t seqnum = 0;                  // S1
  std::span<const uint8_t> challenge;   // C1, hash_length(hash) bytes
  std::span<const uint8_t> dh_value;    // g^x mod p; empty for the null group
};

struct Reply {
  uint16_t t_id = 0;
  uint8_t hl = 0;
  bool cvalid = false;
  uint32_t seqnum = 0;                  // S2 (0 when not bidirectional)
  std::span<const uint8_t> response;    // R1, hl bytes
  std::span<const uint8_t> challenge2;  // C2, hl bytes (encode: may be empty -> zeros)
  std::span<const uint8_t> dh_value;    // g^y mod p; empty for the null group
};

struct Success1 {
  uint16_t t_id = 0;
  uint8_t hl = 0;
  bool rvalid = false;
  std::span<const uint8_t> response;    // R2, hl bytes when rvalid, else empty
};

struct Success2 {
  uint16_t t_id = 0;
};

struct Failure {
  MessageId id = MessageId::Failure1;   // Failure1 or Failure2
  uint16_t t_id = 0;
  uint8_t reason_code = kReasonCodeFailed;
  FailureReason explanation = FailureReason::Failed;
};

// ---- decoding ----

enum class DecodeError : uint8_t {
  Ok = 0,
  Truncated,           // shorter than the message's fixed part
  WrongAuthType,       // AUTH-Type does not match the message
  WrongMessageId,      // AUTH-Id is not the expected/known message
  LengthMismatch,      // declared variable-length fields exceed the buffer
  TrailingBytes,       // (Exact mode) bytes after the end of the message
  NoDescriptors,       // Negotiate with NAPD = 0
  NoDhchapDescriptor,  // no descriptor with AUTHID = DH-HMAC-CHAP
  IdListTooLong,       // HALEN or DHLEN above 30
  UnknownHashId,       // Challenge HASHID not SHA-256/384/512
  HashLengthMismatch,  // Challenge HL differs from the digest length of HASHID
  BadHashLength,       // Reply/Success1 HL not 32, 48 or 64
  UnknownDhGroup,      // Challenge DHGID not 0..5
  MissingDhValue,      // non-null DH group without a DH value
  UnexpectedDhValue,   // null DH group with a DH value
  BadDhValueLength,    // DH value length differs from the group size
  BadFlag,             // CVALID/RVALID other than 0 or 1
  ZeroSeqnum,          // Reply with CVALID = 1 but SEQNUM = 0
};

const char* decode_error_message(DecodeError e);
// The reason code explanation to report for a decode error (None for Ok).
FailureReason failure_reason_for(DecodeError e);

// Exact: the buffer must hold exactly one message (Authentication Send, whose
// transfer length is the message length). AllowTrailing: the buffer may be
// longer (a host's Authentication Receive buffer of AL bytes).
enum class DecodeMode : uint8_t { Exact, AllowTrailing };

// Reads AUTH-Type, AUTH-Id and T_ID, and checks that the pair names a known
// message (Common: Negotiate, Failure1, Failure2; DH-HMAC-CHAP: Challenge,
// Reply, Success1, Success2).
DecodeError decode_header(const uint8_t* buf, size_t len, MessageHeader* out);

DecodeError decode_negotiate(const uint8_t* buf, size_t len, Negotiate* out,
                             DecodeMode mode = DecodeMode::Exact);
DecodeError decode_challenge(const uint8_t* buf, size_t len, Challenge* out,
                             DecodeMode mode = DecodeMode::AllowTrailing);
DecodeError decode_reply(const uint8_t* buf, size_t len, Reply* out,
                         DecodeMode mode = DecodeMode::Exact);
DecodeError decode_success1(const uint8_t* buf, size_t len, Success1* out,
                            DecodeMode mode = DecodeMode::AllowTrailing);
DecodeError decode_success2(const uint8_t* buf, size_t len, Success2* out,
                            DecodeMode mode = DecodeMode::Exact);
// Accepts AUTH_Failure1 and AUTH_Failure2; `out->id` says which. The default
// mode suits the target receiving Failure2; a host reading Failure1 from its
// receive buffer passes AllowTrailing.
DecodeError decode_failure(const uint8_t* buf, size_t len, Failure* out,
                           DecodeMode mode = DecodeMode::Exact);

// ---- encoding ----

// One DH-HMAC-CHAP descriptor; counts above 30 are -EINVAL.
int encode_negotiate(const Negotiate& m, uint8_t* buf, size_t cap);
// HL = hash_length(m.hash); m.challenge must have that size and m.dh_value
// exactly dh_group_size(m.dh_group) bytes (none for the null group).
int encode_challenge(const Challenge& m, uint8_t* buf, size_t cap);
// HL = m.hl, which must be 32/48/64 and match m.response (and m.challenge2
// unless that is empty, in which case zeros are sent).
int encode_reply(const Reply& m, uint8_t* buf, size_t cap);
// HL = m.hl; with rvalid, m.response must be hl bytes and follows the header.
int encode_success1(const Success1& m, uint8_t* buf, size_t cap);
int encode_success2(const Success2& m, uint8_t* buf, size_t cap);
// m.id must be Failure1 or Failure2.
int encode_failure(const Failure& m, uint8_t* buf, size_t cap);

}  // namespace nvmf::auth
