#include "auth/messages.h"

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace nvmf::auth {

namespace {

uint16_t get_le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (static_cast<uint16_t>(p[1]) << 8));
}

uint32_t get_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

void put_le16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

void put_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

bool valid_hl(size_t hl) { return hl == 32 || hl == 48 || hl == 64; }

constexpr uint8_t kCommon = static_cast<uint8_t>(AuthType::Common);
constexpr uint8_t kDhchap = static_cast<uint8_t>(AuthType::Dhchap);

// Checks AUTH-Type / AUTH-Id of a message whose fixed part is `fixed` bytes.
DecodeError check_start(const uint8_t* buf, size_t len, size_t fixed, AuthType type,
                        MessageId id) {
  if (buf == nullptr || len < fixed) return DecodeError::Truncated;
  if (buf[0] != static_cast<uint8_t>(type)) return DecodeError::WrongAuthType;
  if (buf[1] != static_cast<uint8_t>(id)) return DecodeError::WrongMessageId;
  return DecodeError::Ok;
}

// `need` is the full message length the header declares.
DecodeError check_length(size_t len, size_t need, DecodeMode mode) {
  if (len < need) return DecodeError::LengthMismatch;
  if (mode == DecodeMode::Exact && len > need) return DecodeError::TrailingBytes;
  return DecodeError::Ok;
}

// Starts a message of `total` bytes: checks room and zeroes it, so every
// reserved byte is sent as zero.
bool begin(uint8_t* buf, size_t cap, size_t total) {
  if (buf == nullptr || cap < total) return false;
  std::memset(buf, 0, total);
  return true;
}

// Every message starts with AUTH-Type, AUTH-Id, 2 reserved bytes and T_ID.
constexpr size_t kTidOffset = 4;
static_assert(offsetof(wire::NegotiateHeader, t_id) == kTidOffset);
static_assert(offsetof(wire::ChallengeHeader, t_id) == kTidOffset);
static_assert(offsetof(wire::ReplyHeader, t_id) == kTidOffset);
static_assert(offsetof(wire::Success1Header, t_id) == kTidOffset);
static_assert(offsetof(wire::Success2Message, t_id) == kTidOffset);
static_assert(offsetof(wire::FailureMessage, t_id) == kTidOffset);

void put_header(uint8_t* buf, AuthType type, MessageId id, uint16_t t_id) {
  buf[0] = static_cast<uint8_t>(type);
  buf[1] = static_cast<uint8_t>(id);
  put_le16(buf + kTidOffset, t_id);
}

}  // namespace

const char* message_name(MessageId id) {
  switch (id) {
    case MessageId::Negotiate: return "AUTH_Negotiate";
    case MessageId::Challenge: return "DH-HMAC-CHAP_Challenge";
    case MessageId::Reply: return "DH-HMAC-CHAP_Reply";
    case MessageId::Success1: return "DH-HMAC-CHAP_Success1";
    case MessageId::Success2: return "DH-HMAC-CHAP_Success2";
    case MessageId::Failure2: return "AUTH_Failure2";
    case MessageId::Failure1: return "AUTH_Failure1";
  }
  return "unknown message";
}

const char* failure_reason_message(FailureReason r) {
  switch (r) {
    case FailureReason::None: return "no failure";
    case FailureReason::Failed: return "authentication failed";
    case FailureReason::ProtocolUnusable: return "authentication protocol not usable";
    case FailureReason::ConcatMismatch: return "secure channel concatenation mismatch";
    case FailureReason::HashUnusable: return "hash function not usable";
    case FailureReason::DhGroupUnusable: return "DH group not usable";
    case FailureReason::IncorrectPayload: return "incorrect payload";
    case FailureReason::IncorrectMessage: return "incorrect protocol message";
  }
  return "unknown reason";
}

const char* decode_error_message(DecodeError e) {
  switch (e) {
    case DecodeError::Ok: return "ok";
    case DecodeError::Truncated: return "message shorter than its fixed header";
    case DecodeError::WrongAuthType: return "unexpected AUTH-Type";
    case DecodeError::WrongMessageId: return "unexpected AUTH-Id";
    case DecodeError::LengthMismatch: return "declared field lengths exceed the message";
    case DecodeError::TrailingBytes: return "bytes after the end of the message";
    case DecodeError::NoDescriptors: return "no authentication protocol descriptor (NAPD = 0)";
    case DecodeError::NoDhchapDescriptor: return "no DH-HMAC-CHAP protocol descriptor";
    case DecodeError::IdListTooLong: return "HALEN or DHLEN exceeds 30";
    case DecodeError::UnknownHashId: return "unknown hash function identifier";
    case DecodeError::HashLengthMismatch: return "HL does not match the hash function";
    case DecodeError::BadHashLength: return "HL is not 32, 48 or 64";
    case DecodeError::UnknownDhGroup: return "unknown DH group identifier";
    case DecodeError::MissingDhValue: return "DH group selected but no DH value";
    case DecodeError::UnexpectedDhValue: return "DH value present with the null DH group";
    case DecodeError::BadDhValueLength: return "DH value length does not match the DH group";
    case DecodeError::BadFlag: return "CVALID/RVALID is neither 0 nor 1";
    case DecodeError::ZeroSeqnum: return "CVALID set with sequence number 0";
  }
  return "unknown decode error";
}

FailureReason failure_reason_for(DecodeError e) {
  switch (e) {
    case DecodeError::Ok: return FailureReason::None;
    case DecodeError::WrongAuthType:
    case DecodeError::WrongMessageId: return FailureReason::IncorrectMessage;
    case DecodeError::NoDescriptors:
    case DecodeError::NoDhchapDescriptor: return FailureReason::ProtocolUnusable;
    case DecodeError::UnknownHashId:
    case DecodeError::HashLengthMismatch: return FailureReason::HashUnusable;
    case DecodeError::UnknownDhGroup:
    case DecodeError::MissingDhValue: return FailureReason::DhGroupUnusable;
    case DecodeError::Truncated:
    case DecodeError::LengthMismatch:
    case DecodeError::TrailingBytes:
    case DecodeError::IdListTooLong:
    case DecodeError::BadHashLength:
    case DecodeError::UnexpectedDhValue:
    case DecodeError::BadDhValueLength:
    case DecodeError::BadFlag:
    case DecodeError::ZeroSeqnum: return FailureReason::IncorrectPayload;
  }
  return FailureReason::IncorrectPayload;
}

// ---- decoding ----

DecodeError decode_header(const uint8_t* buf, size_t len, MessageHeader* out) {
  constexpr size_t kCommonPart = kTidOffset + 2;
  if (buf == nullptr || len < kCommonPart) return DecodeError::Truncated;
  const uint8_t type = buf[0];
  const uint8_t id = buf[1];
  if (type == kCommon) {
    if (id != static_cast<uint8_t>(MessageId::Negotiate) &&
        id != static_cast<uint8_t>(MessageId::Failure1) &&
        id != static_cast<uint8_t>(MessageId::Failure2))
      return DecodeError::WrongMessageId;
  } else if (type == kDhchap) {
    if (id < static_cast<uint8_t>(MessageId::Challenge) ||
        id > static_cast<uint8_t>(MessageId::Success2))
      return DecodeError::WrongMessageId;
  } else {
    return DecodeError::WrongAuthType;
  }
  out->auth_type = type;
  out->auth_id = id;
  out->t_id = get_le16(buf + kTidOffset);
  return DecodeError::Ok;
}

DecodeError decode_negotiate(const uint8_t* buf, size_t len, Negotiate* out, DecodeMode mode) {
  using H = wire::NegotiateHeader;
  using D = wire::ProtocolDescriptor;
  DecodeError e = check_start(buf, len, sizeof(H), AuthType::Common, MessageId::Negotiate);
  if (e != DecodeError::Ok) return e;
  const uint8_t napd = buf[offsetof(H, napd)];
  if (napd == 0) return DecodeError::NoDescriptors;
  e = check_length(len, sizeof(H) + size_t{napd} * sizeof(D), mode);
  if (e != DecodeError::Ok) return e;

  const uint8_t* desc = nullptr;
  for (size_t i = 0; i < napd; i++) {
    const uint8_t* d = buf + sizeof(H) + i * sizeof(D);
    if (d[offsetof(D, authid)] == kAuthIdDhchap) {
      desc = d;
      break;
    }
  }
  if (desc == nullptr) return DecodeError::NoDhchapDescriptor;
  const uint8_t halen = desc[offsetof(D, halen)];
  const uint8_t dhlen = desc[offsetof(D, dhlen)];
  if (halen > kMaxIdList || dhlen > kMaxIdList) return DecodeError::IdListTooLong;

  Negotiate m;
  m.t_id = get_le16(buf + offsetof(H, t_id));
  m.sc_c = buf[offsetof(H, sc_c)];
  m.napd = napd;
  m.hash_count = halen;
  m.dh_group_count = dhlen;
  const uint8_t* ids = desc + offsetof(D, idlist);
  std::memcpy(m.hash_ids.data(), ids, halen);
  std::memcpy(m.dh_group_ids.data(), ids + kMaxIdList, dhlen);
  *out = m;
  return DecodeError::Ok;
}

DecodeError decode_challenge(const uint8_t* buf, size_t len, Challenge* out, DecodeMode mode) {
  using H = wire::ChallengeHeader;
  DecodeError e = check_start(buf, len, sizeof(H), AuthType::Dhchap, MessageId::Challenge);
  if (e != DecodeError::Ok) return e;
  const uint8_t hl = buf[offsetof(H, hl)];
  const uint8_t hashid = buf[offsetof(H, hashid)];
  const uint8_t dhgid = buf[offsetof(H, dhgid)];
  const uint16_t dhvlen = get_le16(buf + offsetof(H, dhvlen));
  if (!hash_id_valid(hashid)) return DecodeError::UnknownHashId;
  if (hl != hash_length(static_cast<HashId>(hashid))) return DecodeError::HashLengthMismatch;
  if (!dh_group_id_valid(dhgid)) return DecodeError::UnknownDhGroup;
  e = check_length(len, sizeof(H) + hl + dhvlen, mode);
  if (e != DecodeError::Ok) return e;
  const auto group = static_cast<DhGroupId>(dhgid);
  if (group == DhGroupId::Null) {
    if (dhvlen != 0) return DecodeError::UnexpectedDhValue;
  } else {
    if (dhvlen == 0) return DecodeError::MissingDhValue;
    if (dhvlen != dh_group_size(group)) return DecodeError::BadDhValueLength;
  }

  Challenge m;
  m.t_id = get_le16(buf + offsetof(H, t_id));
  m.hash = static_cast<HashId>(hashid);
  m.dh_group = group;
  m.seqnum = get_le32(buf + offsetof(H, seqnum));
  m.challenge = {buf + sizeof(H), hl};
  m.dh_value = {buf + sizeof(H) + hl, dhvlen};
  *out = m;
  return DecodeError::Ok;
}

DecodeError decode_reply(const uint8_t* buf, size_t len, Reply* out, DecodeMode mode) {
  using H = wire::ReplyHeader;
  DecodeError e = check_start(buf, len, sizeof(H), AuthType::Dhchap, MessageId::Reply);
  if (e != DecodeError::Ok) return e;
  const uint8_t hl = buf[offsetof(H, hl)];
  const uint8_t cvalid = buf[offsetof(H, cvalid)];
  const uint16_t dhvlen = get_le16(buf + offsetof(H, dhvlen));
  const uint32_t seqnum = get_le32(buf + offsetof(H, seqnum));
  if (!valid_hl(hl)) return DecodeError::BadHashLength;
  if (cvalid > 1) return DecodeError::BadFlag;
  e = check_length(len, sizeof(H) + 2 * size_t{hl} + dhvlen, mode);
  if (e != DecodeError::Ok) return e;
  if (cvalid == 1 && seqnum == 0) return DecodeError::ZeroSeqnum;

  Reply m;
  m.t_id = get_le16(buf + offsetof(H, t_id));
  m.hl = hl;
  m.cvalid = cvalid == 1;
  m.seqnum = seqnum;
  m.response = {buf + sizeof(H), hl};
  m.challenge2 = {buf + sizeof(H) + hl, hl};
  m.dh_value = {buf + sizeof(H) + 2 * size_t{hl}, dhvlen};
  *out = m;
  return DecodeError::Ok;
}

DecodeError decode_success1(const uint8_t* buf, size_t len, Success1* out, DecodeMode mode) {
  using H = wire::Success1Header;
  DecodeError e = check_start(buf, len, sizeof(H), AuthType::Dhchap, MessageId::Success1);
  if (e != DecodeError::Ok) return e;
  const uint8_t hl = buf[offsetof(H, hl)];
  const uint8_t rvalid = buf[offsetof(H, rvalid)];
  if (!valid_hl(hl)) return DecodeError::BadHashLength;
  if (rvalid > 1) return DecodeError::BadFlag;
  const size_t rlen = rvalid ? hl : 0;
  e = check_length(len, sizeof(H) + rlen, mode);
  if (e != DecodeError::Ok) return e;

  Success1 m;
  m.t_id = get_le16(buf + offsetof(H, t_id));
  m.hl = hl;
  m.rvalid = rvalid == 1;
  m.response = {buf + sizeof(H), rlen};
  *out = m;
  return DecodeError::Ok;
}

DecodeError decode_success2(const uint8_t* buf, size_t len, Success2* out, DecodeMode mode) {
  using M = wire::Success2Message;
  DecodeError e = check_start(buf, len, sizeof(M), AuthType::Dhchap, MessageId::Success2);
  if (e != DecodeError::Ok) return e;
  e = check_length(len, sizeof(M), mode);
  if (e != DecodeError::Ok) return e;
  out->t_id = get_le16(buf + offsetof(M, t_id));
  return DecodeError::Ok;
}

DecodeError decode_failure(const uint8_t* buf, size_t len, Failure* out, DecodeMode mode) {
  using M = wire::FailureMessage;
  if (buf == nullptr || len < sizeof(M)) return DecodeError::Truncated;
  if (buf[0] != kCommon) return DecodeError::WrongAuthType;
  const uint8_t id = buf[1];
  if (id != static_cast<uint8_t>(MessageId::Failure1) &&
      id != static_cast<uint8_t>(MessageId::Failure2))
    return DecodeError::WrongMessageId;
  const DecodeError e = check_length(len, sizeof(M), mode);
  if (e != DecodeError::Ok) return e;
  out->id = static_cast<MessageId>(id);
  out->t_id = get_le16(buf + offsetof(M, t_id));
  out->reason_code = buf[offsetof(M, rescode)];
  out->explanation = static_cast<FailureReason>(buf[offsetof(M, rescode_exp)]);
  return DecodeError::Ok;
}

// ---- encoding ----

int encode_negotiate(const Negotiate& m, uint8_t* buf, size_t cap) {
  using H = wire::NegotiateHeader;
  using D = wire::ProtocolDescriptor;
  if (m.hash_count > kMaxIdList || m.dh_group_count > kMaxIdList) return -EINVAL;
  constexpr size_t total = sizeof(H) + sizeof(D);
  if (!begin(buf, cap, total)) return -ENOSPC;
  buf[offsetof(H, auth_type)] = kCommon;
  buf[offsetof(H, auth_id)] = static_cast<uint8_t>(MessageId::Negotiate);
  put_le16(buf + offsetof(H, t_id), m.t_id);
  buf[offsetof(H, sc_c)] = m.sc_c;
  buf[offsetof(H, napd)] = 1;
  uint8_t* d = buf + sizeof(H);
  d[offsetof(D, authid)] = kAuthIdDhchap;
  d[offsetof(D, halen)] = m.hash_count;
  d[offsetof(D, dhlen)] = m.dh_group_count;
  std::memcpy(d + offsetof(D, idlist), m.hash_ids.data(), m.hash_count);
  std::memcpy(d + offsetof(D, idlist) + kMaxIdList, m.dh_group_ids.data(), m.dh_group_count);
  return static_cast<int>(total);
}

int encode_challenge(const Challenge& m, uint8_t* buf, size_t cap) {
  using H = wire::ChallengeHeader;
  const size_t hl = hash_length(m.hash);
  if (hl == 0 || m.challenge.size() != hl) return -EINVAL;
  if (m.dh_value.size() != dh_group_size(m.dh_group)) return -EINVAL;
  if (!dh_group_id_valid(static_cast<uint8_t>(m.dh_group))) return -EINVAL;
  const size_t total = sizeof(H) + hl + m.dh_value.size();
  if (!begin(buf, cap, total)) return -ENOSPC;
  put_header(buf, AuthType::Dhchap, MessageId::Challenge, m.t_id);
  buf[offsetof(H, hl)] = static_cast<uint8_t>(hl);
  buf[offsetof(H, hashid)] = static_cast<uint8_t>(m.hash);
  buf[offsetof(H, dhgid)] = static_cast<uint8_t>(m.dh_group);
  put_le16(buf + offsetof(H, dhvlen), static_cast<uint16_t>(m.dh_value.size()));
  put_le32(buf + offsetof(H, seqnum), m.seqnum);
  std::memcpy(buf + sizeof(H), m.challenge.data(), hl);
  if (!m.dh_value.empty()) std::memcpy(buf + sizeof(H) + hl, m.dh_value.data(), m.dh_value.size());
  return static_cast<int>(total);
}

int encode_reply(const Reply& m, uint8_t* buf, size_t cap) {
  using H = wire::ReplyHeader;
  const size_t hl = m.hl;
  if (!valid_hl(hl) || m.response.size() != hl) return -EINVAL;
  if (!m.challenge2.empty() && m.challenge2.size() != hl) return -EINVAL;
  if (m.cvalid && (m.challenge2.empty() || m.seqnum == 0)) return -EINVAL;
  if (m.dh_value.size() > UINT16_MAX) return -EINVAL;
  const size_t total = sizeof(H) + 2 * hl + m.dh_value.size();
  if (!begin(buf, cap, total)) return -ENOSPC;
  put_header(buf, AuthType::Dhchap, MessageId::Reply, m.t_id);
  buf[offsetof(H, hl)] = static_cast<uint8_t>(hl);
  buf[offsetof(H, cvalid)] = m.cvalid ? 1 : 0;
  put_le16(buf + offsetof(H, dhvlen), static_cast<uint16_t>(m.dh_value.size()));
  put_le32(buf + offsetof(H, seqnum), m.seqnum);
  std::memcpy(buf + sizeof(H), m.response.data(), hl);
  if (!m.challenge2.empty()) std::memcpy(buf + sizeof(H) + hl, m.challenge2.data(), hl);
  if (!m.dh_value.empty())
    std::memcpy(buf + sizeof(H) + 2 * hl, m.dh_value.data(), m.dh_value.size());
  return static_cast<int>(total);
}

int encode_success1(const Success1& m, uint8_t* buf, size_t cap) {
  using H = wire::Success1Header;
  const size_t hl = m.hl;
  if (!valid_hl(hl)) return -EINVAL;
  if (m.rvalid ? m.response.size() != hl : !m.response.empty()) return -EINVAL;
  const size_t total = sizeof(H) + (m.rvalid ? hl : 0);
  if (!begin(buf, cap, total)) return -ENOSPC;
  put_header(buf, AuthType::Dhchap, MessageId::Success1, m.t_id);
  // HL is sent even without a response: the Linux host checks it regardless.
  buf[offsetof(H, hl)] = static_cast<uint8_t>(hl);
  buf[offsetof(H, rvalid)] = m.rvalid ? 1 : 0;
  if (m.rvalid) std::memcpy(buf + sizeof(H), m.response.data(), hl);
  return static_cast<int>(total);
}

int encode_success2(const Success2& m, uint8_t* buf, size_t cap) {
  constexpr size_t total = sizeof(wire::Success2Message);
  if (!begin(buf, cap, total)) return -ENOSPC;
  put_header(buf, AuthType::Dhchap, MessageId::Success2, m.t_id);
  return static_cast<int>(total);
}

int encode_failure(const Failure& m, uint8_t* buf, size_t cap) {
  using M = wire::FailureMessage;
  if (m.id != MessageId::Failure1 && m.id != MessageId::Failure2) return -EINVAL;
  if (m.explanation == FailureReason::None) return -EINVAL;
  constexpr size_t total = sizeof(M);
  if (!begin(buf, cap, total)) return -ENOSPC;
  put_header(buf, AuthType::Common, m.id, m.t_id);
  buf[offsetof(M, rescode)] = m.reason_code;
  buf[offsetof(M, rescode_exp)] = static_cast<uint8_t>(m.explanation);
  return static_cast<int>(total);
}

}  // namespace nvmf::auth
