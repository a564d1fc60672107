#include "host/commands.h"

#include <cstdio>

namespace nvmf::host {

namespace {

constexpr uint8_t kFabricsOpc = 0x7f;

SqEntry fabrics(FabricsType t) {
  SqEntry e{};
  e.opc = kFabricsOpc;
  e.nsid = uint8_t(t);  // FCTYPE is byte 4, where NSID sits in other commands
  return e;
}

}  // namespace

XferDir opcode_dir(const SqEntry& sqe) {
  uint8_t bits = sqe.opc == kFabricsOpc ? uint8_t(sqe.fctype() & 0x3) : uint8_t(sqe.opc & 0x3);
  switch (bits) {
    case 1: return XferDir::H2C;
    case 2: return XferDir::C2H;
    default: return XferDir::None;
  }
}

SqEntry make_connect(uint16_t qid, uint16_t sqsize0, uint32_t kato_ms) {
  auto c = sqe_as<FabricsConnectCmd>(fabrics(FabricsType::Connect));
  c.recfmt = 0;
  c.qid = qid;
  c.sqsize = sqsize0;
  c.kato = qid == 0 ? kato_ms : 0;  // KATO is defined for the admin queue only
  return std::bit_cast<SqEntry>(c);
}

FabricsConnectData make_connect_data(const uint8_t hostid[16], uint16_t cntlid,
                                     const std::string& subnqn, const std::string& hostnqn) {
  FabricsConnectData d{};
  std::memcpy(d.hostid, hostid, 16);
  d.cntlid = cntlid;
  copy_nul_padded(d.subnqn, kNqnFieldLen, subnqn);
  copy_nul_padded(d.hostnqn, kNqnFieldLen, hostnqn);
  return d;
}

SqEntry make_auth_send(uint32_t tl) {
  auto c = sqe_as<AuthSendCmd>(fabrics(FabricsType::AuthSend));
  c.secp = kSecpDhchap;
  c.spsp0 = 0x01;
  c.spsp1 = 0x01;
  c.tl = tl;
  return std::bit_cast<SqEntry>(c);
}

SqEntry make_auth_recv(uint32_t al) {
  auto c = sqe_as<AuthRecvCmd>(fabrics(FabricsType::AuthRecv));
  c.secp = kSecpDhchap;
  c.spsp0 = 0x01;
  c.spsp1 = 0x01;
  c.al = al;
  return std::bit_cast<SqEntry>(c);
}

SqEntry make_property_get(PropOffset ofst, bool eight_bytes) {
  auto c = sqe_as<PropertyGetCmd>(fabrics(FabricsType::PropertyGet));
  c.attrib = eight_bytes ? kPropSize8 : kPropSize4;
  c.ofst = uint32_t(ofst);
  return std::bit_cast<SqEntry>(c);
}

SqEntry make_property_set(PropOffset ofst, uint64_t value, bool eight_bytes) {
  auto c = sqe_as<PropertySetCmd>(fabrics(FabricsType::PropertySet));
  c.attrib = eight_bytes ? kPropSize8 : kPropSize4;
  c.ofst = uint32_t(ofst);
  c.value = value;
  return std::bit_cast<SqEntry>(c);
}

SqEntry make_disconnect() { return fabrics(FabricsType::Disconnect); }

SqEntry make_identify(Cns cns, uint32_t nsid, uint16_t cntid) {
  SqEntry e{};
  e.opc = uint8_t(AdminOpc::Identify);
  e.nsid = nsid;
  e.cdw10 = uint32_t(uint8_t(cns)) | (uint32_t(cntid) << 16);
  return e;
}

SqEntry make_get_log_page(uint8_t lid, uint32_t len_bytes, uint64_t offset, uint32_t nsid,
                          uint8_t lsp, bool rae) {
  SqEntry e{};
  e.opc = uint8_t(AdminOpc::GetLogPage);
  e.nsid = nsid;
  uint32_t numd = len_bytes / 4 - 1;  // 0's based dword count
  e.cdw10 = uint32_t(lid) | (uint32_t(lsp & 0x7f) << 8) | (rae ? 1u << 15 : 0) |
            ((numd & 0xffff) << 16);
  e.cdw11 = numd >> 16;
  e.cdw12 = uint32_t(offset);
  e.cdw13 = uint32_t(offset >> 32);
  return e;
}

SqEntry make_set_features(FeatureId fid, uint32_t cdw11) {
  SqEntry e{};
  e.opc = uint8_t(AdminOpc::SetFeatures);
  e.cdw10 = uint8_t(fid);
  e.cdw11 = cdw11;
  return e;
}

SqEntry make_get_features(FeatureId fid, uint8_t sel) {
  SqEntry e{};
  e.opc = uint8_t(AdminOpc::GetFeatures);
  e.cdw10 = uint32_t(uint8_t(fid)) | (uint32_t(sel & 0x7) << 8);
  return e;
}

SqEntry make_keep_alive() {
  SqEntry e{};
  e.opc = uint8_t(AdminOpc::KeepAlive);
  return e;
}

SqEntry make_rw(IoOpc opc, uint32_t nsid, uint64_t slba, uint32_t nlb) {
  SqEntry e{};
  e.opc = uint8_t(opc);
  e.nsid = nsid;
  e.cdw10 = uint32_t(slba);
  e.cdw11 = uint32_t(slba >> 32);
  e.cdw12 = (nlb - 1) & 0xffff;
  return e;
}

SqEntry make_flush(uint32_t nsid) {
  SqEntry e{};
  e.opc = uint8_t(IoOpc::Flush);
  e.nsid = nsid;
  return e;
}

SqEntry make_write_zeroes(uint32_t nsid, uint64_t slba, uint32_t nlb, bool deac) {
  SqEntry e = make_rw(IoOpc::WriteZeroes, nsid, slba, nlb);
  if (deac) e.cdw12 |= 1u << 25;
  return e;
}

SqEntry make_dsm_deallocate(uint32_t nsid, uint32_t nr) {
  SqEntry e{};
  e.opc = uint8_t(IoOpc::DatasetManagement);
  e.nsid = nsid;
  e.cdw10 = (nr - 1) & 0xff;
  e.cdw11 = kDsmAd;
  return e;
}

uint32_t make_cc_enable(uint64_t capv) {
  // CSS: NVM command set unless the controller says it has no I/O command
  // set at all (discovery and admin-only controllers may), then 111b.
  uint8_t css_bits = cap::css(capv);
  uint32_t css = (!(css_bits & cap::kCssNvm) && (css_bits & cap::kCssNoIo)) ? 7u : 0u;
  // MPS: 4 KiB unless the controller's minimum is larger. The value only
  // matters for MDTS units on fabrics (no PRPs), but must be in range.
  uint32_t mps = cap::mpsmin(capv);
  return 1u | (css << 4) | (mps << 7) | (uint32_t(cc::kIosqes) << 16) |
         (uint32_t(cc::kIocqes) << 20);
}

uint64_t max_transfer_bytes(uint8_t mdts, uint64_t capv) {
  if (mdts == 0) return 0;
  unsigned shift = unsigned(mdts) + 12u + cap::mpsmin(capv);
  if (shift >= 32) return 0xffffffffull;  // an SGL length is 32 bits anyway
  return uint64_t(1) << shift;
}

std::string command_name(bool admin, const SqEntry& sqe) {
  if (sqe.opc == kFabricsOpc) {
    switch (FabricsType(sqe.fctype())) {
      case FabricsType::PropertySet: return "Fabrics Property Set";
      case FabricsType::Connect: return "Fabrics Connect";
      case FabricsType::PropertyGet: return "Fabrics Property Get";
      case FabricsType::AuthSend: return "Fabrics Authentication Send";
      case FabricsType::AuthRecv: return "Fabrics Authentication Receive";
      case FabricsType::Disconnect: return "Fabrics Disconnect";
    }
    char b[48];
    std::snprintf(b, sizeof b, "Fabrics command type 0x%02x", sqe.fctype());
    return b;
  }
  if (admin) {
    switch (AdminOpc(sqe.opc)) {
      case AdminOpc::GetLogPage: return "Get Log Page";
      case AdminOpc::Identify: return "Identify";
      case AdminOpc::Abort: return "Abort";
      case AdminOpc::SetFeatures: return "Set Features";
      case AdminOpc::GetFeatures: return "Get Features";
      case AdminOpc::AsyncEventRequest: return "Asynchronous Event Request";
      case AdminOpc::KeepAlive: return "Keep Alive";
      default: break;
    }
  } else {
    switch (IoOpc(sqe.opc)) {
      case IoOpc::Flush: return "Flush";
      case IoOpc::Write: return "Write";
      case IoOpc::Read: return "Read";
      case IoOpc::WriteUncorrectable: return "Write Uncorrectable";
      case IoOpc::Compare: return "Compare";
      case IoOpc::WriteZeroes: return "Write Zeroes";
      case IoOpc::DatasetManagement: return "Dataset Management";
      default: break;
    }
  }
  char b[48];
  std::snprintf(b, sizeof b, "%s opcode 0x%02x", admin ? "admin" : "I/O", sqe.opc);
  return b;
}

std::string status_name(int status) {
  int sct = (status >> 8) & 0x7;
  int sc = status & 0xff;
  if (sct == 0) {
    switch (GenericSc(sc)) {
      case GenericSc::Success: return "Success";
      case GenericSc::InvalidOpcode: return "Invalid Command Opcode";
      case GenericSc::InvalidField: return "Invalid Field in Command";
      case GenericSc::CidConflict: return "Command ID Conflict";
      case GenericSc::DataTransferError: return "Data Transfer Error";
      case GenericSc::InternalError: return "Internal Error";
      case GenericSc::AbortRequested: return "Command Abort Requested";
      case GenericSc::AbortedSqDeletion: return "Command Aborted due to SQ Deletion";
      case GenericSc::InvalidNamespaceOrFormat: return "Invalid Namespace or Format";
      case GenericSc::CommandSequenceError: return "Command Sequence Error";
      case GenericSc::InvalidSglSegmentDescriptor: return "Invalid SGL Segment Descriptor";
      case GenericSc::InvalidSglDescriptorCount: return "Invalid Number of SGL Descriptors";
      case GenericSc::DataSglLengthInvalid: return "Data SGL Length Invalid";
      case GenericSc::SglDescriptorTypeInvalid: return "SGL Descriptor Type Invalid";
      case GenericSc::SglOffsetInvalid: return "SGL Offset Invalid";
      case GenericSc::HostIdInconsistentFormat: return "Host Identifier Inconsistent Format";
      case GenericSc::KeepAliveTimerExpired: return "Keep Alive Timer Expired";
      case GenericSc::KeepAliveTimeoutInvalid: return "Keep Alive Timeout Invalid";
      case GenericSc::NamespaceWriteProtected: return "Namespace is Write Protected";
      case GenericSc::CommandInterrupted: return "Command Interrupted";
      case GenericSc::TransientTransportError: return "Transient Transport Error";
      case GenericSc::LbaOutOfRange: return "LBA Out of Range";
      case GenericSc::CapacityExceeded: return "Capacity Exceeded";
      case GenericSc::NamespaceNotReady: return "Namespace Not Ready";
      case GenericSc::ReservationConflict: return "Reservation Conflict";
      default: break;
    }
  } else if (sct == 1) {
    switch (sc) {
      case 0x01: return "Invalid Queue Identifier";
      case 0x02: return "Invalid Queue Size";
      case 0x09: return "Invalid Log Page";
      case 0x0d: return "Feature Identifier Not Saveable";
      case 0x0e: return "Feature Not Changeable";
      case 0x0f: return "Feature Not Namespace Specific";
      case 0x80: return "Connect Incompatible Format / Conflicting Attributes";
      case 0x81: return "Connect Controller Busy / Invalid Protection Information";
      case 0x82: return "Connect Invalid Parameters / Write to Read Only Range";
      case 0x83: return "Connect Restart Discovery";
      case 0x84: return "Connect Invalid Host";
      case 0x85: return "Invalid Queue Type";
      case 0x90: return "Discover Restart";
      case 0x91: return "Authentication Required";
      default: break;
    }
  } else if (sct == 2) {
    switch (MediaSc(sc)) {
      case MediaSc::WriteFault: return "Write Fault";
      case MediaSc::UnrecoveredReadError: return "Unrecovered Read Error";
      case MediaSc::CompareFailure: return "Compare Failure";
      case MediaSc::AccessDenied: return "Access Denied";
      case MediaSc::DeallocatedOrUnwrittenBlock: return "Deallocated or Unwritten Logical Block";
      default: break;
    }
  } else if (sct == 3) {
    switch (PathSc(sc)) {
      case PathSc::InternalPathError: return "Internal Path Error";
      case PathSc::AnaPersistentLoss: return "Asymmetric Access Persistent Loss";
      case PathSc::AnaInaccessible: return "Asymmetric Access Inaccessible";
      case PathSc::AnaTransition: return "Asymmetric Access Transition";
      case PathSc::HostPathingError: return "Host Pathing Error";
      case PathSc::CommandAbortedByHost: return "Command Aborted By Host";
      default: break;
    }
  }
  char b[32];
  std::snprintf(b, sizeof b, "status 0x%03x", status);
  return b;
}

std::string status_message(bool admin, const SqEntry& sqe, int status) {
  char b[40];
  std::snprintf(b, sizeof b, " failed: NVMe status 0x%03x (", status);
  return command_name(admin, sqe) + b + status_name(status) + ")";
}

}  // namespace nvmf::host
