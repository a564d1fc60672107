// NVMe base + NVMe over Fabrics wire format (NVMe Base 2.0, NVMe-oF 1.1).
//
// Every struct here is the exact byte image of a wire or log-page structure.
// We do not use #pragma pack: each field sits at its natural alignment, which
// the spec layouts allow everywhere except a few fields that are kept as byte
// arrays with accessors (SMART temperature, keyed SGL length/key). Sizes and
// key offsets are static_assert'ed, so a layout slip is a compile error.
//
// Integers are stored in host order and the host is asserted little-endian,
// so a struct can be memcpy'd to and from the wire as is. Structs are trivial
// aggregates: `T x{};` zero-fills, which is what reserved bytes need.
// Overlay a struct on a receive buffer only when the buffer is aligned to
// alignof(T); otherwise memcpy (or std::bit_cast) it.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "NVMe wire structs are little-endian and stored in host order");

namespace nvmf {

// ---------------------------------------------------------------------------
// Little-endian helpers on byte pointers (any alignment).

inline void put_le16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void put_le32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void put_le64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint16_t get_le16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t get_le32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline uint64_t get_le64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

// SN, MN and FR are ASCII, space padded and not NUL terminated.
inline void copy_space_padded(char* dst, size_t n, std::string_view s) {
  size_t len = s.size() < n ? s.size() : n;
  std::memcpy(dst, s.data(), len);
  std::memset(dst + len, ' ', n - len);
}

// NQNs, traddr and trsvcid are NUL padded. Leaves at least one NUL when
// s.size() < n; callers validate lengths (kNqnMaxLen) before getting here.
inline void copy_nul_padded(char* dst, size_t n, std::string_view s) {
  size_t len = s.size() < n ? s.size() : n;
  std::memcpy(dst, s.data(), len);
  std::memset(dst + len, 0, n - len);
}

// A string field read from the wire: up to the first NUL, never past n.
// The caller decides whether a missing terminator is an error.
inline std::string_view bounded_str(const char* src, size_t n) {
  const void* nul = std::memchr(src, 0, n);
  return {src, nul ? static_cast<size_t>(static_cast<const char*>(nul) - src) : n};
}

// ---------------------------------------------------------------------------
// Names and sizes.

inline constexpr std::string_view kDiscoveryNqn = "nqn.2014-08.org.nvmexpress.discovery";
inline constexpr size_t kNqnMaxLen = 223;  // characters, excluding NUL
inline constexpr size_t kNqnFieldLen = 256;  // bytes in Connect data / Identify
inline constexpr size_t kTrsvcidLen = 32;
inline constexpr size_t kTraddrLen = 256;
inline constexpr size_t kTsasLen = 256;
inline constexpr uint32_t kNsidAll = 0xffffffff;
inline constexpr uint16_t kCntlidMin = 0x0001;
inline constexpr uint16_t kCntlidMax = 0xffef;
inline constexpr uint16_t kCntlidDynamic = 0xffff;  // Connect: "any controller"
inline constexpr uint32_t kNssrReset = 0x4e564d65;  // "NVMe" written to NSSR
inline constexpr size_t kIdentifyDataLen = 4096;

constexpr uint32_t nvme_version(uint32_t mjr, uint32_t mnr, uint32_t ter) {
  return (mjr << 16) | (mnr << 8) | ter;
}

// ---------------------------------------------------------------------------
// Opcodes.

enum class AdminOpc : uint8_t {
  DeleteIoSq = 0x00,
  CreateIoSq = 0x01,
  GetLogPage = 0x02,
  DeleteIoCq = 0x04,
  CreateIoCq = 0x05,
  Identify = 0x06,
  Abort = 0x08,
  SetFeatures = 0x09,
  GetFeatures = 0x0a,
  AsyncEventRequest = 0x0c,
  KeepAlive = 0x18,
  Fabrics = 0x7f,
};

enum class IoOpc : uint8_t {
  Flush = 0x00,
  Write = 0x01,
  Read = 0x02,
  WriteUncorrectable = 0x04,
  Compare = 0x05,
  WriteZeroes = 0x08,
  DatasetManagement = 0x09,
  Fabrics = 0x7f,  // the same opcode on every queue
};

// Fabrics command type (FCTYPE), byte 4 of a command with opcode 0x7f.
// Bit 0 gives the data direction like opcodes do: 1 = host to controller.
enum class FabricsType : uint8_t {
  PropertySet = 0x00,
  Connect = 0x01,
  PropertyGet = 0x04,
  AuthSend = 0x05,
  AuthRecv = 0x06,
  Disconnect = 0x08,
};

// ---------------------------------------------------------------------------
// Status.
//
// A completion's status field is 16 bits: P(0) SC(8:1) SCT(11:9) CRD(13:12)
// M(14) DNR(15). Handlers pass a Status {sct, sc} around and the transport
// adds the phase bit where one exists (fabrics transports keep it 0).

enum class Sct : uint8_t {
  Generic = 0,
  CommandSpecific = 1,
  Media = 2,
  Path = 3,
  Vendor = 7,
};

// SCT 0.
enum class GenericSc : uint8_t {
  Success = 0x00,
  InvalidOpcode = 0x01,
  InvalidField = 0x02,
  CidConflict = 0x03,
  DataTransferError = 0x04,
  AbortedPowerLoss = 0x05,
  InternalError = 0x06,
  AbortRequested = 0x07,
  AbortedSqDeletion = 0x08,
  AbortedFailedFused = 0x09,
  AbortedMissingFused = 0x0a,
  InvalidNamespaceOrFormat = 0x0b,
  CommandSequenceError = 0x0c,
  InvalidSglSegmentDescriptor = 0x0d,
  InvalidSglDescriptorCount = 0x0e,
  DataSglLengthInvalid = 0x0f,
  MetadataSglLengthInvalid = 0x10,
  SglDescriptorTypeInvalid = 0x11,
  InvalidUseOfCmb = 0x12,
  PrpOffsetInvalid = 0x13,
  AtomicWriteUnitExceeded = 0x14,
  OperationDenied = 0x15,
  SglOffsetInvalid = 0x16,
  HostIdInconsistentFormat = 0x18,
  KeepAliveTimerExpired = 0x19,
  KeepAliveTimeoutInvalid = 0x1a,
  AbortedPreempt = 0x1b,
  SanitizeFailed = 0x1c,
  SanitizeInProgress = 0x1d,
  SglDataBlockGranularityInvalid = 0x1e,
  CommandNotSupportedForCmbQueue = 0x1f,
  NamespaceWriteProtected = 0x20,
  CommandInterrupted = 0x21,
  TransientTransportError = 0x22,
  AdminCommandMediaNotReady = 0x24,
  // NVM command set, still SCT 0.
  LbaOutOfRange = 0x80,
  CapacityExceeded = 0x81,
  NamespaceNotReady = 0x82,
  ReservationConflict = 0x83,
  FormatInProgress = 0x84,
};

// SCT 1 for admin commands.
enum class CmdSpecificSc : uint8_t {
  CompletionQueueInvalid = 0x00,
  InvalidQueueId = 0x01,
  InvalidQueueSize = 0x02,
  AbortCommandLimitExceeded = 0x03,
  AsyncEventRequestLimitExceeded = 0x05,
  InvalidFirmwareSlot = 0x06,
  InvalidFirmwareImage = 0x07,
  InvalidInterruptVector = 0x08,
  InvalidLogPage = 0x09,
  InvalidFormat = 0x0a,
  FirmwareNeedsConventionalReset = 0x0b,
  InvalidQueueDeletion = 0x0c,
  FeatureNotSaveable = 0x0d,
  FeatureNotChangeable = 0x0e,
  FeatureNotNamespaceSpecific = 0x0f,
  OverlappingRange = 0x14,
  NamespaceInsufficientCapacity = 0x15,
  NamespaceIdUnavailable = 0x16,
  NamespaceAlreadyAttached = 0x18,
  NamespaceIsPrivate = 0x19,
  NamespaceNotAttached = 0x1a,
  ControllerListInvalid = 0x1c,
  AnaGroupIdInvalid = 0x24,
};

// SCT 1 for NVM I/O commands (overlaps FabricsSc numerically; the command
// decides which table applies).
enum class NvmCmdSc : uint8_t {
  ConflictingAttributes = 0x80,
  InvalidProtectionInfo = 0x81,
  WriteToReadOnlyRange = 0x82,
};

// SCT 1 for fabrics commands. Authentication Required is command specific
// (0x191 in Linux's combined notation), returned for any command sent on a
// queue that still has to authenticate.
enum class FabricsSc : uint8_t {
  ConnectIncompatibleFormat = 0x80,
  ConnectControllerBusy = 0x81,
  ConnectInvalidParameters = 0x82,
  ConnectRestartDiscovery = 0x83,
  ConnectInvalidHost = 0x84,
  InvalidQueueType = 0x85,
  DiscoverRestart = 0x90,
  AuthRequired = 0x91,
};

// SCT 2.
enum class MediaSc : uint8_t {
  WriteFault = 0x80,
  UnrecoveredReadError = 0x81,
  GuardCheckError = 0x82,
  ApplicationTagCheckError = 0x83,
  ReferenceTagCheckError = 0x84,
  CompareFailure = 0x85,
  AccessDenied = 0x86,
  DeallocatedOrUnwrittenBlock = 0x87,
};

// SCT 3.
enum class PathSc : uint8_t {
  InternalPathError = 0x00,
  AnaPersistentLoss = 0x01,
  AnaInaccessible = 0x02,
  AnaTransition = 0x03,
  ControllerPathingError = 0x60,
  HostPathingError = 0x70,
  CommandAbortedByHost = 0x71,
};

struct Status {
  Sct sct = Sct::Generic;
  uint8_t sc = 0;

  constexpr Status() = default;
  constexpr Status(Sct t, uint8_t c) : sct(t), sc(c) {}
  // Implicit on purpose: `return GenericSc::InvalidField;` picks the SCT.
  constexpr Status(GenericSc c) : sct(Sct::Generic), sc(uint8_t(c)) {}
  constexpr Status(CmdSpecificSc c) : sct(Sct::CommandSpecific), sc(uint8_t(c)) {}
  constexpr Status(NvmCmdSc c) : sct(Sct::CommandSpecific), sc(uint8_t(c)) {}
  constexpr Status(FabricsSc c) : sct(Sct::CommandSpecific), sc(uint8_t(c)) {}
  constexpr Status(MediaSc c) : sct(Sct::Media), sc(uint8_t(c)) {}
  constexpr Status(PathSc c) : sct(Sct::Path), sc(uint8_t(c)) {}

  constexpr bool ok() const { return sct == Sct::Generic && sc == 0; }
  friend constexpr bool operator==(Status, Status) = default;
};

inline constexpr uint16_t kStatusPhase = 1u << 0;
inline constexpr uint16_t kStatusMore = 1u << 14;
inline constexpr uint16_t kStatusDnr = 1u << 15;

// The 16-bit CQE status field with the phase bit clear. `crd` selects the
// Command Retry Delay time (CRDT1..3 in Identify Controller), 0 = none.
constexpr uint16_t cqe_status(Status s, bool dnr = false, bool more = false,
                              uint8_t crd = 0) {
  return uint16_t((uint16_t(s.sc) << 1) | ((uint16_t(s.sct) & 0x7) << 9) |
                  ((uint16_t(crd) & 0x3) << 12) | (more ? kStatusMore : 0) |
                  (dnr ? kStatusDnr : 0));
}

// ---------------------------------------------------------------------------
// SGL descriptor (16 bytes). The identifier byte holds the subtype in the low
// nibble and the type in the high nibble.

enum class SglType : uint8_t {
  DataBlock = 0x0,
  BitBucket = 0x1,
  Segment = 0x2,
  LastSegment = 0x3,
  KeyedDataBlock = 0x4,
  TransportDataBlock = 0x5,
};

enum class SglSubtype : uint8_t {
  Address = 0x0,
  Offset = 0x1,             // in-capsule data: addr is an offset into the capsule
  TransportSpecific = 0xa,  // NVMe/TCP: data comes by R2T/H2C or C2H PDUs
  InvalidateKey = 0xf,      // NVMe/RDMA keyed: remote invalidate rkey
};

struct SglDescriptor {
  uint64_t addr;
  // Unkeyed: length is all 32 bits and rsvd is reserved. Keyed (RDMA): the
  // length is 24 bits (bytes 10:8) and the key is bytes 14:11, which straddle
  // `length` and `rsvd`, so use the keyed_* accessors.
  uint32_t length;
  uint8_t rsvd[3];
  uint8_t id;  // type (7:4) | subtype (3:0)

  constexpr SglType sgl_type() const { return SglType(id >> 4); }
  constexpr SglSubtype sgl_subtype() const { return SglSubtype(id & 0xf); }
  constexpr void set_id(SglType t, SglSubtype s) { id = uint8_t((uint8_t(t) << 4) | uint8_t(s)); }

  constexpr uint32_t keyed_length() const { return length & 0x00ffffff; }
  constexpr uint32_t keyed_key() const {
    return (length >> 24) | (uint32_t(rsvd[0]) << 8) | (uint32_t(rsvd[1]) << 16) |
           (uint32_t(rsvd[2]) << 24);
  }
  constexpr void set_keyed(uint32_t len24, uint32_t key) {
    length = (len24 & 0x00ffffff) | (key << 24);
    rsvd[0] = uint8_t(key >> 8);
    rsvd[1] = uint8_t(key >> 16);
    rsvd[2] = uint8_t(key >> 24);
  }
};
static_assert(sizeof(SglDescriptor) == 16);
static_assert(offsetof(SglDescriptor, length) == 8);
static_assert(offsetof(SglDescriptor, id) == 15);

// ---------------------------------------------------------------------------
// Submission queue entry (64 bytes).

inline constexpr uint8_t kFuseMask = 0x03;  // flags bits 1:0
inline constexpr uint8_t kFuseNone = 0x0;
inline constexpr uint8_t kFuseFirst = 0x1;
inline constexpr uint8_t kFuseSecond = 0x2;
inline constexpr uint8_t kPsdtShift = 6;  // flags bits 7:6
inline constexpr uint8_t kPsdtPrp = 0x0;
inline constexpr uint8_t kPsdtSglMptrContig = 0x1;  // what fabrics hosts send
inline constexpr uint8_t kPsdtSglMptrSgl = 0x2;

struct PrpPair {
  uint64_t prp1;
  uint64_t prp2;
};
static_assert(sizeof(PrpPair) == 16);

union DataPointer {
  PrpPair prp;
  SglDescriptor sgl1;
};
static_assert(sizeof(DataPointer) == 16);

struct SqEntry {
  uint8_t opc;
  uint8_t flags;  // FUSE (1:0), PSDT (7:6)
  uint16_t cid;
  uint32_t nsid;  // fabrics commands: byte 4 is FCTYPE, see fctype()
  uint32_t cdw2;
  uint32_t cdw3;
  uint64_t mptr;
  DataPointer dptr;
  uint32_t cdw10;
  uint32_t cdw11;
  uint32_t cdw12;
  uint32_t cdw13;
  uint32_t cdw14;
  uint32_t cdw15;

  constexpr uint8_t fuse() const { return flags & kFuseMask; }
  constexpr uint8_t psdt() const { return uint8_t(flags >> kPsdtShift); }
  constexpr uint8_t fctype() const { return uint8_t(nsid & 0xff); }
  constexpr SglType sgl_type() const { return dptr.sgl1.sgl_type(); }
  constexpr SglSubtype sgl_subtype() const { return dptr.sgl1.sgl_subtype(); }
};
static_assert(sizeof(SqEntry) == 64);
static_assert(offsetof(SqEntry, cid) == 2);
static_assert(offsetof(SqEntry, nsid) == 4);
static_assert(offsetof(SqEntry, mptr) == 16);
static_assert(offsetof(SqEntry, dptr) == 24);
static_assert(offsetof(SqEntry, cdw10) == 40);
static_assert(offsetof(SqEntry, cdw15) == 60);

// Reinterpret an SQE as one of the 64-byte fabrics command views below (a
// copy, so no aliasing questions; 64 bytes is cheap).
template <class T>
constexpr T sqe_as(const SqEntry& e) {
  static_assert(sizeof(T) == sizeof(SqEntry));
  return std::bit_cast<T>(e);
}

// ---------------------------------------------------------------------------
// Completion queue entry (16 bytes).

struct CqEntry {
  uint32_t dw0;  // command specific
  uint32_t dw1;  // command specific (high half of 64-bit results)
  uint16_t sqhd;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // see cqe_status()

  constexpr void set_status(Status s, bool dnr = false) { status = cqe_status(s, dnr); }
  constexpr void set_u64(uint64_t v) { dw0 = uint32_t(v); dw1 = uint32_t(v >> 32); }
  constexpr uint64_t u64() const { return uint64_t(dw0) | (uint64_t(dw1) << 32); }
  constexpr bool phase() const { return status & kStatusPhase; }
  constexpr uint8_t sc() const { return uint8_t(status >> 1); }
  constexpr Sct sct() const { return Sct((status >> 9) & 0x7); }
  constexpr Status status_code() const { return Status(sct(), sc()); }
  constexpr uint8_t crd() const { return (status >> 12) & 0x3; }
  constexpr bool more() const { return status & kStatusMore; }
  constexpr bool dnr() const { return status & kStatusDnr; }
};
static_assert(sizeof(CqEntry) == 16);
static_assert(offsetof(CqEntry, sqhd) == 8);
static_assert(offsetof(CqEntry, cid) == 12);
static_assert(offsetof(CqEntry, status) == 14);

// ---------------------------------------------------------------------------
// Fabrics commands (64-byte views of an SQE).

struct FabricsConnectCmd {
  uint8_t opc;
  uint8_t rsvd1;
  uint16_t cid;
  uint8_t fctype;
  uint8_t rsvd2[19];
  SglDescriptor sgl1;  // describes the 1024-byte FabricsConnectData
  uint16_t recfmt;     // 0 is the only format
  uint16_t qid;        // 0 = admin queue
  uint16_t sqsize;     // 0's based
  uint8_t cattr;
  uint8_t rsvd3;
  uint32_t kato;       // ms, admin queue only; 0 = keep alive disabled
  uint8_t rsvd4[12];
};
static_assert(sizeof(FabricsConnectCmd) == 64);
static_assert(offsetof(FabricsConnectCmd, fctype) == 4);
static_assert(offsetof(FabricsConnectCmd, sgl1) == 24);
static_assert(offsetof(FabricsConnectCmd, recfmt) == 40);
static_assert(offsetof(FabricsConnectCmd, qid) == 42);
static_assert(offsetof(FabricsConnectCmd, sqsize) == 44);
static_assert(offsetof(FabricsConnectCmd, cattr) == 46);
static_assert(offsetof(FabricsConnectCmd, kato) == 48);

inline constexpr uint8_t kCattrPriorityMask = 0x03;  // I/O queue priority under WRR arbitration
inline constexpr uint8_t kCattrDisableSqFlow = 1u << 2;  // host asks for SQ flow control off (SQHD unused)

struct FabricsConnectData {
  uint8_t hostid[16];
  uint16_t cntlid;  // kCntlidDynamic on the admin queue with the dynamic model
  uint8_t rsvd1[238];
  char subnqn[kNqnFieldLen];
  char hostnqn[kNqnFieldLen];
  uint8_t rsvd2[256];
};
static_assert(sizeof(FabricsConnectData) == 1024);
static_assert(offsetof(FabricsConnectData, cntlid) == 16);
static_assert(offsetof(FabricsConnectData, subnqn) == 256);
static_assert(offsetof(FabricsConnectData, hostnqn) == 512);

// Connect response dw0 on success: CNTLID (15:0), AUTHREQ (31:16).
inline constexpr uint16_t kAuthreqAtr = 1u << 1;  // authentication transaction required
inline constexpr uint16_t kAuthreqAscr = 1u << 2;  // secure channel concatenation required
constexpr uint32_t connect_rsp_success(uint16_t cntlid, uint16_t authreq = 0) {
  return uint32_t(cntlid) | (uint32_t(authreq) << 16);
}

// Connect response dw0 with ConnectInvalidParameters: IPO (15:0) is the byte
// offset of the bad field, IATTR bit 0 says where it is.
enum class ConnectParamIn : uint8_t { Command = 0, Data = 1 };
constexpr uint32_t connect_rsp_invalid_param(ConnectParamIn where, uint16_t ipo) {
  return uint32_t(ipo) | (uint32_t(uint8_t(where)) << 16);
}

struct PropertyGetCmd {
  uint8_t opc;
  uint8_t rsvd1;
  uint16_t cid;
  uint8_t fctype;
  uint8_t rsvd2[35];
  uint8_t attrib;  // bits 2:0 size, see kPropSize*
  uint8_t rsvd3[3];
  uint32_t ofst;
  uint8_t rsvd4[16];

  constexpr bool is_8_bytes() const { return (attrib & 0x7) == 1; }
};
static_assert(sizeof(PropertyGetCmd) == 64);
static_assert(offsetof(PropertyGetCmd, attrib) == 40);
static_assert(offsetof(PropertyGetCmd, ofst) == 44);

struct PropertySetCmd {
  uint8_t opc;
  uint8_t rsvd1;
  uint16_t cid;
  uint8_t fctype;
  uint8_t rsvd2[35];
  uint8_t attrib;
  uint8_t rsvd3[3];
  uint32_t ofst;
  uint64_t value;
  uint8_t rsvd4[8];

  constexpr bool is_8_bytes() const { return (attrib & 0x7) == 1; }
};
static_assert(sizeof(PropertySetCmd) == 64);
static_assert(offsetof(PropertySetCmd, attrib) == 40);
static_assert(offsetof(PropertySetCmd, ofst) == 44);
static_assert(offsetof(PropertySetCmd, value) == 48);

inline constexpr uint8_t kPropSize4 = 0;
inline constexpr uint8_t kPropSize8 = 1;
// Property Get puts the value in CQE dw0 (and dw1 for 8-byte properties).

// Authentication Send (TL = transfer length) and Receive (AL = allocation
// length) share one layout; SECP 0xe9 is DH-HMAC-CHAP.
struct AuthSendCmd {
  uint8_t opc;
  uint8_t rsvd1;
  uint16_t cid;
  uint8_t fctype;
  uint8_t rsvd2[19];
  SglDescriptor sgl1;
  uint8_t rsvd3;
  uint8_t spsp0;
  uint8_t spsp1;
  uint8_t secp;
  uint32_t tl;
  uint8_t rsvd4[16];
};
static_assert(sizeof(AuthSendCmd) == 64);
static_assert(offsetof(AuthSendCmd, spsp0) == 41);
static_assert(offsetof(AuthSendCmd, secp) == 43);
static_assert(offsetof(AuthSendCmd, tl) == 44);

struct AuthRecvCmd {
  uint8_t opc;
  uint8_t rsvd1;
  uint16_t cid;
  uint8_t fctype;
  uint8_t rsvd2[19];
  SglDescriptor sgl1;
  uint8_t rsvd3;
  uint8_t spsp0;
  uint8_t spsp1;
  uint8_t secp;
  uint32_t al;
  uint8_t rsvd4[16];
};
static_assert(sizeof(AuthRecvCmd) == 64);
static_assert(offsetof(AuthRecvCmd, secp) == 43);
static_assert(offsetof(AuthRecvCmd, al) == 44);

inline constexpr uint8_t kSecpDhchap = 0xe9;
// Disconnect (fctype 0x08) has no fields beyond the common header.

// ---------------------------------------------------------------------------
// Controller properties (the fabrics view of the PCIe registers).

enum class PropOffset : uint32_t {
  Cap = 0x00,   // 8 bytes
  Vs = 0x08,
  Cc = 0x14,
  Csts = 0x1c,
  Nssr = 0x20,
};

namespace cap {
// 64-bit CAP fields. MQES is 0's based; TO is in 500 ms units; DSTRD is 0 on
// fabrics; MPSMIN/MAX are 2^(12+n) bytes.
constexpr uint64_t make(uint16_t mqes, bool cqr, uint8_t to, uint8_t css,
                        uint8_t mpsmin, uint8_t mpsmax) {
  return uint64_t(mqes) | (uint64_t(cqr) << 16) | (uint64_t(to) << 24) |
         (uint64_t(css) << 37) | (uint64_t(mpsmin & 0xf) << 48) |
         (uint64_t(mpsmax & 0xf) << 52);
}
constexpr uint16_t mqes(uint64_t c) { return uint16_t(c); }
constexpr bool cqr(uint64_t c) { return (c >> 16) & 1; }
constexpr uint8_t to(uint64_t c) { return uint8_t(c >> 24); }
constexpr uint8_t dstrd(uint64_t c) { return (c >> 32) & 0xf; }
constexpr uint8_t css(uint64_t c) { return uint8_t(c >> 37); }
constexpr uint8_t mpsmin(uint64_t c) { return (c >> 48) & 0xf; }
constexpr uint8_t mpsmax(uint64_t c) { return (c >> 52) & 0xf; }
inline constexpr uint8_t kCssNvm = 1u << 0;
inline constexpr uint8_t kCssIoSets = 1u << 6;
inline constexpr uint8_t kCssNoIo = 1u << 7;  // admin-only controller
}  // namespace cap

namespace cc {
constexpr bool en(uint32_t v) { return v & 1; }
constexpr uint8_t css(uint32_t v) { return (v >> 4) & 0x7; }
constexpr uint8_t mps(uint32_t v) { return (v >> 7) & 0xf; }
constexpr uint8_t ams(uint32_t v) { return (v >> 11) & 0x7; }
constexpr uint8_t shn(uint32_t v) { return (v >> 14) & 0x3; }
constexpr uint8_t iosqes(uint32_t v) { return (v >> 16) & 0xf; }
constexpr uint8_t iocqes(uint32_t v) { return (v >> 20) & 0xf; }
inline constexpr uint8_t kShnNone = 0;
inline constexpr uint8_t kShnNormal = 1;
inline constexpr uint8_t kShnAbrupt = 2;
inline constexpr uint8_t kIosqes = 6;  // 64-byte SQE
inline constexpr uint8_t kIocqes = 4;  // 16-byte CQE
}  // namespace cc

namespace csts {
inline constexpr uint32_t kRdy = 1u << 0;
inline constexpr uint32_t kCfs = 1u << 1;
inline constexpr uint32_t kShstShift = 2;  // bits 3:2
inline constexpr uint32_t kShstMask = 0x3u << kShstShift;
inline constexpr uint32_t kShstNormal = 0;
inline constexpr uint32_t kShstOccurring = 1;
inline constexpr uint32_t kShstComplete = 2;
constexpr uint32_t with_shst(uint32_t v, uint32_t shst) {
  return (v & ~kShstMask) | ((shst & 0x3) << kShstShift);
}
constexpr uint32_t shst(uint32_t v) { return (v & kShstMask) >> kShstShift; }
}  // namespace csts

// ---------------------------------------------------------------------------
// Admin command arguments, decoded from CDW10..15.

struct IdentifyArgs {
  uint8_t cns;
  uint16_t cntid;
  uint16_t cnssid;
  uint8_t csi;
  static constexpr IdentifyArgs decode(const SqEntry& e) {
    return {uint8_t(e.cdw10), uint16_t(e.cdw10 >> 16), uint16_t(e.cdw11),
            uint8_t(e.cdw11 >> 24)};
  }
};

enum class Cns : uint8_t {
  Namespace = 0x00,
  Controller = 0x01,
  ActiveNsList = 0x02,
  NsIdDescList = 0x03,
  IoCmdSetNamespace = 0x05,
  IoCmdSetController = 0x06,
  IoCmdSetActiveNsList = 0x07,
  CsIndependentNamespace = 0x08,
  AllocatedNsList = 0x10,
  AllocatedNamespace = 0x11,
  NsAttachedCtrlList = 0x12,
  CtrlList = 0x13,
  CmdSetCombinations = 0x1c,
};

struct GetLogPageArgs {
  uint8_t lid;
  uint8_t lsp;    // log specific field (7 bits)
  bool rae;       // retain asynchronous event
  uint32_t numd;  // NUMDU:NUMDL, 0's based dword count
  uint16_t lsi;
  uint64_t lpo;   // byte offset, dword aligned
  uint8_t csi;
  static constexpr GetLogPageArgs decode(const SqEntry& e) {
    return {uint8_t(e.cdw10), uint8_t((e.cdw10 >> 8) & 0x7f), bool((e.cdw10 >> 15) & 1),
            (e.cdw10 >> 16) | ((e.cdw11 & 0xffff) << 16), uint16_t(e.cdw11 >> 16),
            uint64_t(e.cdw12) | (uint64_t(e.cdw13) << 32), uint8_t(e.cdw14 >> 24)};
  }
  constexpr uint64_t length_bytes() const { return (uint64_t(numd) + 1) * 4; }
};

struct FeatureArgs {
  uint8_t fid;
  uint8_t sel;  // Get Features: 0 current, 1 default, 2 saved, 3 supported caps
  bool sv;      // Set Features: save
  static constexpr FeatureArgs decode(const SqEntry& e) {
    return {uint8_t(e.cdw10), uint8_t((e.cdw10 >> 8) & 0x7), bool(e.cdw10 >> 31)};
  }
};

// Read/Write/Compare/Write Zeroes: SLBA in CDW10-11, NLB (0's based) in CDW12.
struct RwArgs {
  uint64_t slba;
  uint32_t nlb;  // 1's based block count (NLB + 1)
  bool fua;
  bool deac;     // Write Zeroes: deallocate
  static constexpr RwArgs decode(const SqEntry& e) {
    return {uint64_t(e.cdw10) | (uint64_t(e.cdw11) << 32), (e.cdw12 & 0xffff) + 1u,
            bool((e.cdw12 >> 30) & 1), bool((e.cdw12 >> 25) & 1)};
  }
};

// ---------------------------------------------------------------------------
// Identify Controller (CNS 01h), 4096 bytes.

struct PowerStateDescriptor {
  uint16_t mp;     // max power, centiwatts (or 0.0001 W with MXPS)
  uint8_t rsvd2;
  uint8_t flags;   // MXPS (0), NOPS (1)
  uint32_t enlat;  // us
  uint32_t exlat;  // us
  uint8_t rrt;
  uint8_t rrl;
  uint8_t rwt;
  uint8_t rwl;
  uint16_t idlp;
  uint8_t ips;
  uint8_t rsvd19;
  uint16_t actp;
  uint8_t apws;
  uint8_t rsvd23[9];
};
static_assert(sizeof(PowerStateDescriptor) == 32);
static_assert(offsetof(PowerStateDescriptor, enlat) == 4);
static_assert(offsetof(PowerStateDescriptor, idlp) == 16);

struct IdentifyController {
  // Controller capabilities and features.
  uint16_t vid;
  uint16_t ssvid;
  char sn[20];
  char mn[40];
  char fr[8];
  uint8_t rab;
  uint8_t ieee[3];
  uint8_t cmic;
  uint8_t mdts;  // 2^n * CAP.MPSMIN; 0 = no limit
  uint16_t cntlid;
  uint32_t ver;
  uint32_t rtd3r;
  uint32_t rtd3e;
  uint32_t oaes;
  uint32_t ctratt;
  uint16_t rrls;
  uint8_t rsvd102[9];
  uint8_t cntrltype;
  uint8_t fguid[16];
  uint16_t crdt1;
  uint16_t crdt2;
  uint16_t crdt3;
  uint8_t rsvd134[119];
  uint8_t nvmsr;
  uint8_t vwci;
  uint8_t mec;
  // Admin command set attributes.
  uint16_t oacs;
  uint8_t acl;  // 0's based
  uint8_t aerl; // 0's based
  uint8_t frmw;
  uint8_t lpa;
  uint8_t elpe; // 0's based
  uint8_t npss; // 0's based
  uint8_t avscc;
  uint8_t apsta;
  uint16_t wctemp;
  uint16_t cctemp;
  uint16_t mtfa;
  uint32_t hmpre;
  uint32_t hmmin;
  uint8_t tnvmcap[16];
  uint8_t unvmcap[16];
  uint32_t rpmbs;
  uint16_t edstt;
  uint8_t dsto;
  uint8_t fwug;
  uint16_t kas;  // keep alive granularity, 100 ms units
  uint16_t hctma;
  uint16_t mntmt;
  uint16_t mxtmt;
  uint32_t sanicap;
  uint32_t hmminds;
  uint16_t hmmaxd;
  uint16_t nsetidmax;
  uint16_t endgidmax;
  uint8_t anatt;
  uint8_t anacap;
  uint32_t anagrpmax;
  uint32_t nanagrpid;
  uint32_t pels;
  uint16_t domainid;
  uint8_t rsvd358[10];
  uint8_t megcap[16];
  uint8_t rsvd384[128];
  // NVM command set attributes.
  uint8_t sqes;  // max (7:4) | required (3:0), log2 bytes
  uint8_t cqes;
  uint16_t maxcmd;
  uint32_t nn;
  uint16_t oncs;
  uint16_t fuses;
  uint8_t fna;
  uint8_t vwc;
  uint16_t awun;
  uint16_t awupf;
  uint8_t nvscc;
  uint8_t nwpc;
  uint16_t acwu;
  uint16_t ocfs;
  uint32_t sgls;
  uint32_t mnan;
  uint8_t maxdna[16];
  uint32_t maxcna;
  uint8_t rsvd564[204];
  char subnqn[kNqnFieldLen];
  uint8_t rsvd1024[768];
  // NVMe over Fabrics attributes.
  uint32_t ioccsz;  // I/O command capsule size, 16-byte units (>= 4)
  uint32_t iorcsz;  // I/O response capsule size, 16-byte units (>= 1)
  uint16_t icdoff;  // in-capsule data offset, 16-byte units
  uint8_t fcatt;    // bit 0: 1 = static controller model
  uint8_t msdbd;    // max SGL data block descriptors per command
  uint16_t ofcs;    // bit 0: Disconnect supported
  uint8_t dctype;   // discovery controller type
  uint8_t rsvd1807[241];
  PowerStateDescriptor psd[32];
  uint8_t vs[1024];
};
static_assert(sizeof(IdentifyController) == 4096);
static_assert(offsetof(IdentifyController, sn) == 4);
static_assert(offsetof(IdentifyController, mn) == 24);
static_assert(offsetof(IdentifyController, fr) == 64);
static_assert(offsetof(IdentifyController, mdts) == 77);
static_assert(offsetof(IdentifyController, cntlid) == 78);
static_assert(offsetof(IdentifyController, ver) == 80);
static_assert(offsetof(IdentifyController, oaes) == 92);
static_assert(offsetof(IdentifyController, ctratt) == 96);
static_assert(offsetof(IdentifyController, cntrltype) == 111);
static_assert(offsetof(IdentifyController, fguid) == 112);
static_assert(offsetof(IdentifyController, crdt1) == 128);
static_assert(offsetof(IdentifyController, mec) == 255);
static_assert(offsetof(IdentifyController, oacs) == 256);
static_assert(offsetof(IdentifyController, wctemp) == 266);
static_assert(offsetof(IdentifyController, tnvmcap) == 280);
static_assert(offsetof(IdentifyController, kas) == 320);
static_assert(offsetof(IdentifyController, anagrpmax) == 344);
static_assert(offsetof(IdentifyController, pels) == 352);
static_assert(offsetof(IdentifyController, sqes) == 512);
static_assert(offsetof(IdentifyController, maxcmd) == 514);
static_assert(offsetof(IdentifyController, nn) == 516);
static_assert(offsetof(IdentifyController, oncs) == 520);
static_assert(offsetof(IdentifyController, vwc) == 525);
static_assert(offsetof(IdentifyController, acwu) == 532);
static_assert(offsetof(IdentifyController, sgls) == 536);
static_assert(offsetof(IdentifyController, mnan) == 540);
static_assert(offsetof(IdentifyController, subnqn) == 768);
static_assert(offsetof(IdentifyController, ioccsz) == 1792);
static_assert(offsetof(IdentifyController, icdoff) == 1800);
static_assert(offsetof(IdentifyController, msdbd) == 1803);
static_assert(offsetof(IdentifyController, ofcs) == 1804);
static_assert(offsetof(IdentifyController, psd) == 2048);
static_assert(offsetof(IdentifyController, vs) == 3072);

inline constexpr uint8_t kCntrltypeIo = 1;
inline constexpr uint8_t kCntrltypeDiscovery = 2;
inline constexpr uint8_t kCntrltypeAdmin = 3;

inline constexpr uint8_t kCmicMultiPort = 1u << 0;
inline constexpr uint8_t kCmicMultiCtrl = 1u << 1;
inline constexpr uint8_t kCmicAna = 1u << 3;

// OAES and the Async Event Configuration feature share these bits.
inline constexpr uint32_t kAenNsAttr = 1u << 8;
inline constexpr uint32_t kAenFwActivation = 1u << 9;
inline constexpr uint32_t kAenAnaChange = 1u << 11;
inline constexpr uint32_t kAenDiscoveryChange = 1u << 31;

inline constexpr uint32_t kCtrattHostId128 = 1u << 0;  // required for fabrics
inline constexpr uint32_t kCtrattTbkas = 1u << 6;  // traffic based keep alive

inline constexpr uint8_t kLpaSmartPerNs = 1u << 0;
inline constexpr uint8_t kLpaCmdEffects = 1u << 1;
inline constexpr uint8_t kLpaExtendedData = 1u << 2;  // NUMDU and LPO honoured

inline constexpr uint16_t kOncsCompare = 1u << 0;
inline constexpr uint16_t kOncsWriteUncorrectable = 1u << 1;
inline constexpr uint16_t kOncsDsm = 1u << 2;
inline constexpr uint16_t kOncsWriteZeroes = 1u << 3;
inline constexpr uint16_t kOncsSaveSelect = 1u << 4;
inline constexpr uint16_t kOncsReservations = 1u << 5;
inline constexpr uint16_t kOncsTimestamp = 1u << 6;
inline constexpr uint16_t kOncsVerify = 1u << 7;

inline constexpr uint8_t kVwcPresent = 1u << 0;
inline constexpr uint8_t kVwcFlushAllSupported = 0x3u << 1;  // Flush with NSID FFFFFFFFh

inline constexpr uint32_t kSglsSupported = 0x1;  // bits 1:0 = 01b: byte aligned data blocks
inline constexpr uint32_t kSglsKeyed = 1u << 2;  // keyed data block (RDMA)
inline constexpr uint32_t kSglsBitBucket = 1u << 16;
inline constexpr uint32_t kSglsOffset = 1u << 20;  // address field may be an offset (in-capsule)
inline constexpr uint32_t kSglsTransportData = 1u << 21;

inline constexpr uint16_t kOfcsDisconnect = 1u << 0;

// ---------------------------------------------------------------------------
// Identify Namespace (CNS 00h), 4096 bytes.

struct LbaFormat {
  uint16_t ms;    // metadata bytes per block
  uint8_t lbads;  // log2 of the block size
  uint8_t rp;     // relative performance (bits 1:0)
};
static_assert(sizeof(LbaFormat) == 4);

struct IdentifyNamespace {
  uint64_t nsze;
  uint64_t ncap;
  uint64_t nuse;
  uint8_t nsfeat;
  uint8_t nlbaf;  // 0's based
  uint8_t flbas;
  uint8_t mc;
  uint8_t dpc;
  uint8_t dps;
  uint8_t nmic;
  uint8_t rescap;
  uint8_t fpi;
  uint8_t dlfeat;
  uint16_t nawun;
  uint16_t nawupf;
  uint16_t nacwu;
  uint16_t nabsn;
  uint16_t nabo;
  uint16_t nabspf;
  uint16_t noiob;
  uint8_t nvmcap[16];
  uint16_t npwg;
  uint16_t npwa;
  uint16_t npdg;
  uint16_t npda;
  uint16_t nows;
  uint16_t mssrl;
  uint32_t mcl;
  uint8_t msrc;
  uint8_t rsvd81[11];
  uint32_t anagrpid;
  uint8_t rsvd96[3];
  uint8_t nsattr;
  uint16_t nvmsetid;
  uint16_t endgid;
  uint8_t nguid[16];
  uint8_t eui64[8];
  // NVMe 1.4 had 16 formats here and reserved bytes up to 383; 2.0 made all
  // 64 slots formats. Entries past nlbaf are zero either way.
  LbaFormat lbaf[64];
  uint8_t vs[3712];
};
static_assert(sizeof(IdentifyNamespace) == 4096);
static_assert(offsetof(IdentifyNamespace, nsfeat) == 24);
static_assert(offsetof(IdentifyNamespace, nlbaf) == 25);
static_assert(offsetof(IdentifyNamespace, flbas) == 26);
static_assert(offsetof(IdentifyNamespace, dlfeat) == 33);
static_assert(offsetof(IdentifyNamespace, nawun) == 34);
static_assert(offsetof(IdentifyNamespace, noiob) == 46);
static_assert(offsetof(IdentifyNamespace, nvmcap) == 48);
static_assert(offsetof(IdentifyNamespace, npwg) == 64);
static_assert(offsetof(IdentifyNamespace, anagrpid) == 92);
static_assert(offsetof(IdentifyNamespace, nsattr) == 99);
static_assert(offsetof(IdentifyNamespace, nguid) == 104);
static_assert(offsetof(IdentifyNamespace, eui64) == 120);
static_assert(offsetof(IdentifyNamespace, lbaf) == 128);
static_assert(offsetof(IdentifyNamespace, vs) == 384);

inline constexpr uint8_t kNsfeatThinProv = 1u << 0;
inline constexpr uint8_t kNsfeatNsabp = 1u << 1;  // NAWUN/NAWUPF/NACWU valid
inline constexpr uint8_t kNsfeatDae = 1u << 2;  // deallocated/unwritten error supported
inline constexpr uint8_t kNsfeatOptPerf = 1u << 4; // NPWG..NOWS valid
inline constexpr uint8_t kNmicShared = 1u << 0;
inline constexpr uint8_t kDlfeatReadZeroes = 0x1;  // bits 2:0 = 001b: deallocated blocks read as 0
inline constexpr uint8_t kDlfeatWzDeac = 1u << 3;  // Write Zeroes may deallocate
inline constexpr uint8_t kFlbasIndexMask = 0x0f;  // low 4 bits of the format index (bits 6:5 are high)

// Namespace Identification Descriptor list (CNS 03h): 4096 bytes of
// {header, nidl bytes of id} records, terminated by a zero header.
struct NsIdDescHeader {
  uint8_t nidt;
  uint8_t nidl;
  uint16_t rsvd;
};
static_assert(sizeof(NsIdDescHeader) == 4);

enum class Nidt : uint8_t {
  Eui64 = 1,  // nidl 8
  Nguid = 2,  // nidl 16
  Uuid = 3,   // nidl 16
  Csi = 4,    // nidl 1
};

inline constexpr uint8_t kCsiNvm = 0;

// ---------------------------------------------------------------------------
// Log pages.

enum class LogId : uint8_t {
  SupportedLogs = 0x00,
  Error = 0x01,
  Smart = 0x02,
  FirmwareSlot = 0x03,
  ChangedNsList = 0x04,
  CommandsSupported = 0x05,
  Ana = 0x0c,
  Discovery = 0x70,
  ReservationNotification = 0x80,
};

struct ErrorLogEntry {
  uint64_t error_count;  // 0 = entry invalid
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;       // CQE status field, phase bit included
  uint16_t pel;          // parameter error location: byte (7:0), bit (10:8)
  uint64_t lba;
  uint32_t nsid;
  uint8_t vsia;
  uint8_t trtype;
  uint8_t rsvd30[2];
  uint64_t csi;          // command specific information
  uint16_t ttsi;         // transport type specific information
  uint8_t rsvd42[22];
};
static_assert(sizeof(ErrorLogEntry) == 64);
static_assert(offsetof(ErrorLogEntry, status) == 12);
static_assert(offsetof(ErrorLogEntry, lba) == 16);
static_assert(offsetof(ErrorLogEntry, csi) == 32);

struct SmartLog {
  uint8_t critical_warning;
  uint8_t temperature[2];  // kelvin, unaligned: use get_le16/put_le16
  uint8_t avail_spare;
  uint8_t spare_thresh;
  uint8_t percent_used;
  uint8_t endu_grp_crit_warn;
  uint8_t rsvd7[25];
  // 128-bit little-endian counters.
  uint8_t data_units_read[16];  // 1000 x 512 bytes
  uint8_t data_units_written[16];
  uint8_t host_reads[16];
  uint8_t host_writes[16];
  uint8_t ctrl_busy_time[16];
  uint8_t power_cycles[16];
  uint8_t power_on_hours[16];
  uint8_t unsafe_shutdowns[16];
  uint8_t media_errors[16];
  uint8_t num_err_log_entries[16];
  uint32_t warning_temp_time;
  uint32_t critical_comp_time;
  uint16_t temp_sensor[8];
  uint32_t thm_temp1_trans_count;
  uint32_t thm_temp2_trans_count;
  uint32_t thm_temp1_total_time;
  uint32_t thm_temp2_total_time;
  uint8_t rsvd232[280];
};
static_assert(sizeof(SmartLog) == 512);
static_assert(offsetof(SmartLog, temperature) == 1);
static_assert(offsetof(SmartLog, data_units_read) == 32);
static_assert(offsetof(SmartLog, num_err_log_entries) == 176);
static_assert(offsetof(SmartLog, warning_temp_time) == 192);
static_assert(offsetof(SmartLog, temp_sensor) == 200);

struct FirmwareSlotLog {
  uint8_t afi;
  uint8_t rsvd1[7];
  char frs[7][8];
  uint8_t rsvd64[448];
};
static_assert(sizeof(FirmwareSlotLog) == 512);
static_assert(offsetof(FirmwareSlotLog, frs) == 8);

// Up to 1024 NSIDs, zero terminated; 0xffffffff in slot 0 means "more than
// 1024 changed".
struct ChangedNsList {
  uint32_t nsid[1024];
};
static_assert(sizeof(ChangedNsList) == 4096);

struct CommandsSupportedLog {
  uint32_t acs[256];   // admin command effects, by opcode
  uint32_t iocs[256];  // I/O command effects, by opcode
  uint8_t rsvd2048[2048];
};
static_assert(sizeof(CommandsSupportedLog) == 4096);
static_assert(offsetof(CommandsSupportedLog, iocs) == 1024);

inline constexpr uint32_t kEffectsCsupp = 1u << 0;  // command supported
inline constexpr uint32_t kEffectsLbcc = 1u << 1;  // logical block content change
inline constexpr uint32_t kEffectsNcc = 1u << 2;
inline constexpr uint32_t kEffectsNic = 1u << 3;
inline constexpr uint32_t kEffectsCcc = 1u << 4;

// ---------------------------------------------------------------------------
// Features.

enum class FeatureId : uint8_t {
  Arbitration = 0x01,
  PowerManagement = 0x02,
  LbaRangeType = 0x03,
  TemperatureThreshold = 0x04,
  ErrorRecovery = 0x05,
  VolatileWriteCache = 0x06,
  NumberOfQueues = 0x07,
  InterruptCoalescing = 0x08,
  InterruptVectorConfig = 0x09,
  WriteAtomicityNormal = 0x0a,
  AsyncEventConfig = 0x0b,
  AutonomousPowerStateTransition = 0x0c,
  HostMemoryBuffer = 0x0d,
  Timestamp = 0x0e,
  KeepAliveTimer = 0x0f,
  HostControlledThermalMgmt = 0x10,
  NonOperationalPowerStateConfig = 0x11,
  HostBehaviorSupport = 0x16,
  SoftwareProgressMarker = 0x80,
  HostIdentifier = 0x81,
  ReservationNotificationMask = 0x82,
  ReservationPersistence = 0x83,
  NamespaceWriteProtectionConfig = 0x84,
};

// Number of Queues: NSQR/NSQA (15:0) and NCQR/NCQA (31:16), both 0's based.
constexpr uint32_t num_queues_dw(uint16_t nsq0, uint16_t ncq0) {
  return uint32_t(nsq0) | (uint32_t(ncq0) << 16);
}

// ---------------------------------------------------------------------------
// Asynchronous events: completion dw0 = type (2:0) | info (15:8) | log page
// the host must read to re-arm the event (23:16).

enum class AenType : uint8_t {
  Error = 0,
  Smart = 1,
  Notice = 2,
  IoCmdSet = 6,
  Vendor = 7,
};

enum class AenNotice : uint8_t {
  NsAttrChanged = 0x00,
  FwActivationStarting = 0x01,
  TelemetryLogChanged = 0x02,
  AnaChange = 0x03,
  DiscoveryLogChanged = 0xf0,
};

constexpr uint32_t aen_dw0(AenType type, uint8_t info, LogId lid) {
  return uint32_t(uint8_t(type) & 0x7) | (uint32_t(info) << 8) | (uint32_t(uint8_t(lid)) << 16);
}

// ---------------------------------------------------------------------------
// Dataset Management: CDW10 NR (7:0, 0's based range count), CDW11 attributes.

struct DsmRange {
  uint32_t cattr;  // context attributes
  uint32_t nlb;    // length in logical blocks (1's based)
  uint64_t slba;
};
static_assert(sizeof(DsmRange) == 16);
static_assert(offsetof(DsmRange, slba) == 8);

inline constexpr uint32_t kDsmIdr = 1u << 0;  // integral dataset for read
inline constexpr uint32_t kDsmIdw = 1u << 1;  // integral dataset for write
inline constexpr uint32_t kDsmAd = 1u << 2;  // deallocate
inline constexpr uint32_t kDsmMaxRanges = 256;

// ---------------------------------------------------------------------------
// Discovery log page (LID 70h): a 1024-byte header, then numrec entries of
// 1024 bytes. The host re-reads until genctr is stable.

struct DiscoveryLogHeader {
  uint64_t genctr;
  uint64_t numrec;
  uint16_t recfmt;
  uint8_t rsvd18[1006];
};
static_assert(sizeof(DiscoveryLogHeader) == 1024);
static_assert(offsetof(DiscoveryLogHeader, recfmt) == 16);

struct TsasRdma {
  uint8_t qptype;
  uint8_t prtype;
  uint8_t cms;
  uint8_t rsvd3[5];
  uint16_t pkey;
  uint8_t rsvd10[246];
};
static_assert(sizeof(TsasRdma) == 256);
static_assert(offsetof(TsasRdma, pkey) == 8);

struct TsasTcp {
  uint8_t sectype;
  uint8_t rsvd1[255];
};
static_assert(sizeof(TsasTcp) == 256);

union Tsas {
  uint8_t raw[kTsasLen];
  TsasRdma rdma;
  TsasTcp tcp;
};
static_assert(sizeof(Tsas) == 256);

struct DiscoveryLogEntry {
  uint8_t trtype;
  uint8_t adrfam;
  uint8_t subtype;
  uint8_t treq;
  uint16_t portid;
  uint16_t cntlid;  // kCntlidDynamic for the dynamic model
  uint16_t asqsz;   // max admin SQ size, >= 32
  uint16_t eflags;
  uint8_t rsvd12[20];
  char trsvcid[kTrsvcidLen];
  uint8_t rsvd64[192];
  char subnqn[kNqnFieldLen];
  char traddr[kTraddrLen];
  Tsas tsas;
};
static_assert(sizeof(DiscoveryLogEntry) == 1024);
static_assert(offsetof(DiscoveryLogEntry, portid) == 4);
static_assert(offsetof(DiscoveryLogEntry, asqsz) == 8);
static_assert(offsetof(DiscoveryLogEntry, eflags) == 10);
static_assert(offsetof(DiscoveryLogEntry, trsvcid) == 32);
static_assert(offsetof(DiscoveryLogEntry, subnqn) == 256);
static_assert(offsetof(DiscoveryLogEntry, traddr) == 512);
static_assert(offsetof(DiscoveryLogEntry, tsas) == 768);

inline constexpr uint8_t kTrtypeRdma = 1;
inline constexpr uint8_t kTrtypeFc = 2;
inline constexpr uint8_t kTrtypeTcp = 3;
inline constexpr uint8_t kTrtypeLoop = 254;

inline constexpr uint8_t kAdrfamIpv4 = 1;
inline constexpr uint8_t kAdrfamIpv6 = 2;
inline constexpr uint8_t kAdrfamIb = 3;
inline constexpr uint8_t kAdrfamFc = 4;

inline constexpr uint8_t kSubtypeReferral = 1;  // another discovery subsystem
inline constexpr uint8_t kSubtypeNvme = 2;
inline constexpr uint8_t kSubtypeCurrentDiscovery = 3;  // the discovery subsystem being read

inline constexpr uint8_t kTreqSecureChannelMask = 0x3;  // 0 not specified, 1 required, 2 not required
inline constexpr uint8_t kTreqSecureChannelRequired = 0x1;
inline constexpr uint8_t kTreqSecureChannelNotRequired = 0x2;
inline constexpr uint8_t kTreqDisableSqFlow = 1u << 2;  // SQ flow control disable supported

inline constexpr uint16_t kEflagsDupRetInfo = 1u << 0;  // duplicate returned information
inline constexpr uint16_t kEflagsEpcsd = 1u << 1;  // explicit persistent connection support

inline constexpr uint8_t kRdmaQptypeConnected = 1;
inline constexpr uint8_t kRdmaQptypeDatagram = 2;
inline constexpr uint8_t kRdmaPrtypeNone = 1;
inline constexpr uint8_t kRdmaPrtypeIb = 2;
inline constexpr uint8_t kRdmaPrtypeRoce = 3;
inline constexpr uint8_t kRdmaPrtypeRoceV2 = 4;
inline constexpr uint8_t kRdmaPrtypeIwarp = 5;
inline constexpr uint8_t kRdmaCmsRdmaCm = 1;
inline constexpr uint8_t kTcpSectypeNone = 0;
inline constexpr uint8_t kTcpSectypeTls12 = 1;
inline constexpr uint8_t kTcpSectypeTls13 = 2;

// ---------------------------------------------------------------------------
// Every wire struct must be a plain byte image.

template <class T>
inline constexpr bool kIsWireStruct =
    std::is_trivially_copyable_v<T> && std::is_standard_layout_v<T>;

static_assert(kIsWireStruct<SqEntry> && kIsWireStruct<CqEntry>);
static_assert(kIsWireStruct<FabricsConnectCmd> && kIsWireStruct<FabricsConnectData>);
static_assert(kIsWireStruct<PropertyGetCmd> && kIsWireStruct<PropertySetCmd>);
static_assert(kIsWireStruct<AuthSendCmd> && kIsWireStruct<AuthRecvCmd>);
static_assert(kIsWireStruct<IdentifyController> && kIsWireStruct<IdentifyNamespace>);
static_assert(kIsWireStruct<SmartLog> && kIsWireStruct<ErrorLogEntry>);
static_assert(kIsWireStruct<DiscoveryLogHeader> && kIsWireStruct<DiscoveryLogEntry>);
static_assert(kIsWireStruct<DsmRange> && kIsWireStruct<ChangedNsList>);

}  // namespace nvmf
