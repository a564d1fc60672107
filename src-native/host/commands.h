// Builders for the submission queue entries the host sends, and names for
// commands and statuses used in error messages. Pure functions: no sockets,
// no state, so they are unit-testable and shared by every host front end.
//
// The data pointer (PSDT, SGL1) and the CID are left zero here; the queue
// fills them in when it knows how the data travels (in-capsule or R2T).
#pragma once

#include <cstdint>
#include <string>

#include "nvme/spec.h"

namespace nvmf::host {

// Which way a command's data travels.
enum class XferDir : uint8_t { None, H2C, C2H };

// The direction implied by the opcode (bits 1:0 of OPC; FCTYPE for fabrics
// commands). Bidirectional (11b) is reported as None: NVMe/TCP cannot carry
// it and the caller must reject it.
XferDir opcode_dir(const SqEntry& sqe);

// ---- fabrics ----
SqEntry make_connect(uint16_t qid, uint16_t sqsize0, uint32_t kato_ms);
FabricsConnectData make_connect_data(const uint8_t hostid[16], uint16_t cntlid,
                                     const std::string& subnqn, const std::string& hostnqn);
SqEntry make_property_get(PropOffset ofst, bool eight_bytes);
SqEntry make_property_set(PropOffset ofst, uint64_t value, bool eight_bytes);
SqEntry make_disconnect();
// DH-HMAC-CHAP (SECP E9h, SPSP 01h/01h): TL / AL bytes of message data.
SqEntry make_auth_send(uint32_t tl);
SqEntry make_auth_recv(uint32_t al);

// ---- admin ----
SqEntry make_identify(Cns cns, uint32_t nsid, uint16_t cntid = 0);
// len_bytes must be a non-zero multiple of 4; offset dword aligned.
SqEntry make_get_log_page(uint8_t lid, uint32_t len_bytes, uint64_t offset, uint32_t nsid,
                          uint8_t lsp = 0, bool rae = false);
SqEntry make_set_features(FeatureId fid, uint32_t cdw11);
SqEntry make_get_features(FeatureId fid, uint8_t sel = 0);
SqEntry make_keep_alive();

// ---- I/O (nlb is 1's based here; the 0's based encoding happens inside) ----
SqEntry make_rw(IoOpc opc, uint32_t nsid, uint64_t slba, uint32_t nlb);
SqEntry make_flush(uint32_t nsid);
SqEntry make_write_zeroes(uint32_t nsid, uint64_t slba, uint32_t nlb, bool deac = false);
// nr is the 1's based range count (1..256); the ranges travel as data.
SqEntry make_dsm_deallocate(uint32_t nsid, uint32_t nr);

// The CC value the host writes to enable a controller (EN=1, 64-byte SQEs,
// 16-byte CQEs), given what CAP allows.
uint32_t make_cc_enable(uint64_t cap_value);

// Max bytes per command from Identify MDTS and CAP.MPSMIN; 0 = no limit.
uint64_t max_transfer_bytes(uint8_t mdts, uint64_t cap_value);

// "Read", "Identify", "Fabrics Connect", "opcode 0x8f" ...
std::string command_name(bool admin, const SqEntry& sqe);
// "LBA Out of Range" ... for (SCT << 8) | SC; "status 0x1ab" when unknown.
std::string status_name(int status);
inline int status_of(const CqEntry& c) { return (int(c.sct()) << 8) | c.sc(); }
// "Read failed: NVMe status 0x0280 (LBA Out of Range)"
std::string status_message(bool admin, const SqEntry& sqe, int status);

}  // namespace nvmf::host
