// Admin commands: Identify, Get Log Page, Get/Set Features, Keep Alive,
// Asynchronous Event Request, Abort. All run on the controller's reactor
// (the admin queue's), so Controller fields are used directly.
#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>

#include "core/controller.h"
#include "core/target.h"
#include "nvme/exec.h"
#include "nvme/handlers.h"
#include "transport/transport.h"

namespace nvmf {

namespace {

// Identify Controller FR: the package version (keep in step with package.json).
constexpr std::string_view kFirmwareRevision = "0.1.0";
constexpr uint8_t kRab = 6;        // recommended arbitration burst: 2^6
constexpr uint16_t kKas = 1;       // keep alive granularity: 100 ms
constexpr uint16_t kWctemp = 343;  // kelvin: warning composite temperature
constexpr uint16_t kCctemp = 373;  // kelvin: critical composite temperature
constexpr uint16_t kSmartTemp = 303;  // kelvin: what SMART reports (30 C)
constexpr uint8_t kSmartAvailSpare = 100;
constexpr uint8_t kSmartSpareThresh = 10;
constexpr uint32_t kFeatChangeable = 1u << 2;  // Get Features SEL=3 capability bit
constexpr uint32_t kAecSmartMask = 0xff;  // AEC bits 7:0: SMART critical warnings
constexpr size_t kNsListEntries = kIdentifyDataLen / sizeof(uint32_t);
constexpr uint32_t kMaxActiveListStart = 0xfffffffd;  // 0xfffffffe/f are not valid starts

bool is_discovery(Controller& c) { return c.subsystem().type() == SubsystemType::Discovery; }

// ---------------------------------------------------------------------------
// Identify.

// A stable serial number for a subsystem that was configured without one.
std::string serial_for(const Subsystem& s) {
  if (!s.config().serial.empty()) return s.config().serial;
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the NQN
  for (char ch : s.nqn()) h = (h ^ uint8_t(ch)) * 1099511628211ull;
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

// MDTS is a power of two in units of the minimum page size (4 KiB); 0 would
// mean "no limit", so anything under 8 KiB is reported as 8 KiB.
uint8_t mdts_for(uint32_t bytes) {
  uint32_t pages = bytes / 4096;
  if (pages < 2) return 1;
  return uint8_t(std::bit_width(pages) - 1);
}

uint32_t reported_nn(Controller& c) {
  if (is_discovery(c)) return 0;
  return std::max(c.subsystem().config().max_namespaces, c.subsystem().ns_table()->max_nsid());
}

uint32_t sgl_support(Qpair& q, const TransportOptions& opts) {
  uint32_t sgls = kSglsSupported;
  if (opts.in_capsule_data) sgls |= kSglsOffset;
  // RDMA moves data with keyed SGLs; NVMe/TCP uses transport data blocks.
  return sgls | q.transport().ops->sgls;
}

void fill_identify_ctrl(Controller& c, Qpair& q, IdentifyController* id) {
  const Subsystem& s = c.subsystem();
  const TransportOptions& opts = q.transport().opts;
  bool disc = s.type() == SubsystemType::Discovery;
  copy_space_padded(id->sn, sizeof id->sn, serial_for(s));
  copy_space_padded(id->mn, sizeof id->mn, s.config().model);
  copy_space_padded(id->fr, sizeof id->fr, kFirmwareRevision);
  id->rab = kRab;
  // Dynamic controller model: several controllers may share the subsystem.
  id->cmic = disc ? 0 : kCmicMultiCtrl;
  id->mdts = mdts_for(q.max_data_transfer);
  id->cntlid = c.cntlid;
  id->ver = c.vs;
  id->oaes = disc ? 0 : kAenNsAttr;
  id->ctratt = kCtrattHostId128;
  id->cntrltype = disc ? kCntrltypeDiscovery : kCntrltypeIo;
  id->acl = 3;   // 0's based: 4 concurrent Aborts
  id->aerl = uint8_t(Controller::kMaxAers - 1);
  id->frmw = (1u << 1) | 1u;  // one slot, read only
  id->lpa = kLpaExtendedData;
  id->elpe = 0;  // one error log entry (always empty)
  id->npss = 0;
  id->wctemp = kWctemp;
  id->cctemp = kCctemp;
  id->kas = kKas;
  id->sqes = (cc::kIosqes << 4) | cc::kIosqes;
  id->cqes = (cc::kIocqes << 4) | cc::kIocqes;
  id->maxcmd = uint16_t(std::min<uint32_t>(opts.max_queue_depth, 0xffff));
  id->nn = reported_nn(c);
  if (!disc) {
    id->oncs = kOncsCompare | kOncsDsm | kOncsWriteZeroes;
    // Reported for every NVM subsystem, not only when a current namespace
    // has a volatile cache: hosts read this once per connection, and a
    // namespace with a cache added later must still get its Flushes and
    // FUA writes. Flush on a cache-less bdev completes at once.
    id->vwc = kVwcPresent | kVwcFlushAllSupported;
  }
  id->sgls = sgl_support(q, opts);
  copy_nul_padded(id->subnqn, sizeof id->subnqn, s.nqn());
  id->ioccsz = (sizeof(SqEntry) + opts.in_capsule_data) / 16;
  id->iorcsz = sizeof(CqEntry) / 16;
  id->icdoff = 0;
  id->fcatt = 0;  // dynamic controller model
  id->msdbd = q.transport().ops->msdbd;
  id->ofcs = kOfcsDisconnect;
  id->psd[0].mp = 2500;  // centiwatts; nothing depends on it
  id->psd[0].enlat = 16;
  id->psd[0].exlat = 4;
}

bool has_unique_id(const Namespace& ns) { return ns.has_uuid || ns.has_nguid || ns.has_eui64; }

void fill_identify_ns(const Namespace& ns, IdentifyNamespace* id) {
  const BdevInfo& b = ns.bdev->info();
  id->nsze = id->ncap = id->nuse = b.num_blocks;
  id->nlbaf = 0;  // one LBA format: the bdev's block size
  id->flbas = 0;
  id->lbaf[0].lbads = uint8_t(std::countr_zero(b.block_size));
  // Shared across controllers -- but only claimed with a unique identifier,
  // since hosts doing multipath refuse shared namespaces without one.
  id->nmic = has_unique_id(ns) ? kNmicShared : 0;
  if (ns.has_nguid) std::memcpy(id->nguid, ns.nguid, sizeof id->nguid);
  if (ns.has_eui64) std::memcpy(id->eui64, ns.eui64, sizeof id->eui64);
}

void identify_ns(Request* req, Controller& c) {
  uint32_t nsid = req->cmd.nsid;
  if (nsid == 0 || nsid > reported_nn(c)) {
    request_complete_status(req, GenericSc::InvalidNamespaceOrFormat);
    return;
  }
  // An inactive but valid NSID reads as all zeroes.
  IdentifyNamespace id{};
  std::shared_ptr<Namespace> ns = c.subsystem().ns_table()->get(nsid);
  if (ns && ns->bdev) fill_identify_ns(*ns, &id);
  complete_with_data(req, &id, sizeof id);
}

void identify_active_list(Request* req, Controller& c) {
  uint32_t after = req->cmd.nsid;
  if (after > kMaxActiveListStart) {
    request_complete_status(req, GenericSc::InvalidNamespaceOrFormat);
    return;
  }
  uint32_t list[kNsListEntries] = {};
  size_t n = 0;
  std::shared_ptr<const NsTable> t = c.subsystem().ns_table();
  for (uint32_t nsid = after + 1; nsid <= t->max_nsid() && n < kNsListEntries; nsid++) {
    if (t->get(nsid)) list[n++] = nsid;
  }
  complete_with_data(req, list, sizeof list);
}

// Appends one Namespace Identification Descriptor.
size_t put_ns_desc(uint8_t* out, size_t off, Nidt type, const void* id, uint8_t len) {
  NsIdDescHeader h{uint8_t(type), len, 0};
  std::memcpy(out + off, &h, sizeof h);
  std::memcpy(out + off + sizeof h, id, len);
  return off + sizeof h + len;
}

void identify_ns_descs(Request* req, Controller& c) {
  std::shared_ptr<Namespace> ns = c.subsystem().ns_table()->get(req->cmd.nsid);
  if (!ns) {
    request_complete_status(req, GenericSc::InvalidNamespaceOrFormat);
    return;
  }
  uint8_t out[kIdentifyDataLen] = {};
  size_t off = 0;
  if (ns->has_eui64) off = put_ns_desc(out, off, Nidt::Eui64, ns->eui64, 8);
  if (ns->has_nguid) off = put_ns_desc(out, off, Nidt::Nguid, ns->nguid, 16);
  if (ns->has_uuid) off = put_ns_desc(out, off, Nidt::Uuid, ns->uuid, 16);
  uint8_t csi = kCsiNvm;
  put_ns_desc(out, off, Nidt::Csi, &csi, 1);
  complete_with_data(req, out, sizeof out);
}

void exec_identify(Request* req, Controller& c) {
  auto a = IdentifyArgs::decode(req->cmd);
  Qpair* q = req->qpair;
  if (Cns(a.cns) == Cns::Controller) {
    IdentifyController id{};
    fill_identify_ctrl(c, *q, &id);
    complete_with_data(req, &id, sizeof id);
    return;
  }
  if (is_discovery(c)) {  // a discovery controller identifies itself only
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  switch (Cns(a.cns)) {
    case Cns::Namespace: identify_ns(req, c); return;
    case Cns::ActiveNsList: identify_active_list(req, c); return;
    case Cns::NsIdDescList: identify_ns_descs(req, c); return;
    case Cns::IoCmdSetController:
      // NVM command set specific controller data: all limits "none".
      if (a.csi == kCsiNvm) {
        complete_with_data(req, nullptr, 0);
        return;
      }
      break;
    default: break;
  }
  request_complete_status(req, GenericSc::InvalidField);
}

// ---------------------------------------------------------------------------
// Log pages.

void put_le128(uint8_t (&dst)[16], uint64_t v) {
  std::memset(dst, 0, sizeof dst);
  put_le64(dst, v);
}

void log_smart(Request* req, const GetLogPageArgs& a) {
  SmartLog log{};
  put_le16(log.temperature, kSmartTemp);
  log.avail_spare = kSmartAvailSpare;
  log.spare_thresh = kSmartSpareThresh;
  put_le128(log.power_cycles, 1);
  complete_with_log(req, reinterpret_cast<const uint8_t*>(&log), sizeof log, a.lpo,
                    a.length_bytes());
}

void log_firmware_slot(Request* req, const GetLogPageArgs& a) {
  FirmwareSlotLog log{};
  log.afi = 1;  // slot 1 active
  copy_space_padded(log.frs[0], sizeof log.frs[0], kFirmwareRevision);
  complete_with_log(req, reinterpret_cast<const uint8_t*>(&log), sizeof log, a.lpo,
                    a.length_bytes());
}

void log_changed_ns(Request* req, Controller& c, const GetLogPageArgs& a) {
  ChangedNsList log{};
  if (c.changed_ns_overflow) {
    log.nsid[0] = kNsidAll;
  } else {
    std::copy_n(c.changed_ns.begin(), std::min<size_t>(c.changed_ns.size(), 1024), log.nsid);
  }
  // Reading the log clears it; the event is re-armed unless the host asked
  // to retain it (RAE).
  c.changed_ns.clear();
  c.changed_ns_overflow = false;
  if (!a.rae) c.ns_event_masked = false;
  complete_with_log(req, reinterpret_cast<const uint8_t*>(&log), sizeof log, a.lpo,
                    a.length_bytes());
}

void log_discovery(Request* req, Controller& c, const GetLogPageArgs& a) {
  Qpair* q = req->qpair;
  std::vector<uint8_t> log = build_discovery_log(q->transport().target, c.hostnqn, q->local);
  // A host reads the header, then the entries, then the header again; a
  // window past the end (the log shrank meanwhile) reads as zeroes.
  complete_with_log(req, log.data(), log.size(), a.lpo, a.length_bytes());
}

void exec_get_log_page(Request* req, Controller& c) {
  auto a = GetLogPageArgs::decode(req->cmd);
  if (a.lpo & 3) {  // the offset must be dword aligned
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  LogId lid = LogId(a.lid);
  if (is_discovery(c) != (lid == LogId::Discovery)) {
    request_complete_status(req, CmdSpecificSc::InvalidLogPage);
    return;
  }
  switch (lid) {
    case LogId::Error: {
      static const ErrorLogEntry empty{};  // no errors are recorded
      complete_with_log(req, reinterpret_cast<const uint8_t*>(&empty), sizeof empty, a.lpo,
                        a.length_bytes());
      return;
    }
    case LogId::Smart: log_smart(req, a); return;
    case LogId::FirmwareSlot: log_firmware_slot(req, a); return;
    case LogId::ChangedNsList: log_changed_ns(req, c, a); return;
    case LogId::Discovery: log_discovery(req, c, a); return;
    default: break;
  }
  request_complete_status(req, CmdSpecificSc::InvalidLogPage);
}

// ---------------------------------------------------------------------------
// Features.

uint16_t io_queue_limit(Qpair& q) { return uint16_t(std::clamp<uint32_t>(q.transport().opts.max_io_queues, 1, 0xfffe)); }

Status set_num_queues(Request* req, Controller& c) {
  uint32_t dw11 = req->cmd.cdw11;
  uint16_t nsqr = uint16_t(dw11), ncqr = uint16_t(dw11 >> 16);
  if (nsqr == 0xffff || ncqr == 0xffff) return GenericSc::InvalidField;
  // Granted once per controller: later requests report the same grant, as
  // I/O queues may already be connected against it.
  if (!c.io_queues_granted) {
    uint32_t want = uint32_t(std::min(nsqr, ncqr)) + 1;
    c.io_queues_granted = uint16_t(std::min<uint32_t>(want, io_queue_limit(*req->qpair)));
  }
  uint16_t n0 = uint16_t(c.io_queues_granted - 1);
  req->cpl.dw0 = num_queues_dw(n0, n0);
  return GenericSc::Success;
}

uint32_t aen_supported(Controller& c) { return kAecSmartMask | (is_discovery(c) ? 0 : kAenNsAttr); }

Status set_temp_threshold(Controller& c, uint32_t dw11) {
  uint8_t tmpsel = (dw11 >> 16) & 0xf, thsel = (dw11 >> 20) & 0x3;
  // Only the composite temperature's over-temperature threshold exists.
  if ((tmpsel != 0 && tmpsel != 0xf) || thsel != 0) return GenericSc::InvalidField;
  c.temp_threshold = dw11 & 0xffff;
  return GenericSc::Success;
}

Status set_feature(Request* req, Controller& c, uint8_t fid) {
  uint32_t v = req->cmd.cdw11;
  switch (FeatureId(fid)) {
    case FeatureId::Arbitration: c.arbitration = v; return GenericSc::Success;
    case FeatureId::PowerManagement:
      if (v & 0x1f) return GenericSc::InvalidField;  // power state 0 is the only one
      c.power_mgmt = v;
      return GenericSc::Success;
    case FeatureId::TemperatureThreshold: return set_temp_threshold(c, v);
    case FeatureId::ErrorRecovery:
      if (v & (1u << 16)) return GenericSc::InvalidField;  // DULBE: no deallocated-block errors
      c.err_recovery = v;
      return GenericSc::Success;
    case FeatureId::VolatileWriteCache: c.volatile_wc = v & 1; return GenericSc::Success;
    case FeatureId::NumberOfQueues: return set_num_queues(req, c);
    case FeatureId::InterruptCoalescing: c.irq_coalescing = v & 0xffff; return GenericSc::Success;
    case FeatureId::WriteAtomicityNormal: c.write_atomicity = v & 1; return GenericSc::Success;
    case FeatureId::HostIdentifier: return GenericSc::CommandSequenceError;  // fixed by Connect
    default: return GenericSc::InvalidField;
  }
}

// The features a discovery controller has.
bool discovery_feature(uint8_t fid) {
  return FeatureId(fid) == FeatureId::KeepAliveTimer || FeatureId(fid) == FeatureId::AsyncEventConfig;
}

void exec_set_features(Request* req, Controller& c) {
  auto a = FeatureArgs::decode(req->cmd);
  if (is_discovery(c) && !discovery_feature(a.fid)) {
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  if (a.sv) {  // nothing is saved across power cycles here
    request_complete_status(req, CmdSpecificSc::FeatureNotSaveable);
    return;
  }
  uint32_t v = req->cmd.cdw11;
  Status s = GenericSc::Success;
  switch (FeatureId(a.fid)) {
    case FeatureId::AsyncEventConfig:
      if (v & ~aen_supported(c)) {
        s = GenericSc::InvalidField;
      } else {
        c.aen_config = v;
      }
      break;
    case FeatureId::KeepAliveTimer:
      c.kato_ms = v;
      c.keep_alive();  // restarts the timer with the new timeout
      break;
    default: s = set_feature(req, c, a.fid); break;
  }
  request_complete_status(req, s);
}

// Current value of a feature with no data buffer. False if unsupported.
bool feature_value(Request* req, Controller& c, uint8_t fid, uint32_t* out) {
  switch (FeatureId(fid)) {
    case FeatureId::Arbitration: *out = c.arbitration; return true;
    case FeatureId::PowerManagement: *out = c.power_mgmt; return true;
    case FeatureId::TemperatureThreshold: {
      uint32_t dw11 = req->cmd.cdw11;
      uint8_t tmpsel = (dw11 >> 16) & 0xf, thsel = (dw11 >> 20) & 0x3;
      if ((tmpsel != 0 && tmpsel != 0xf) || thsel != 0) return false;
      *out = c.temp_threshold;
      return true;
    }
    case FeatureId::ErrorRecovery: *out = c.err_recovery; return true;
    case FeatureId::VolatileWriteCache: *out = c.volatile_wc; return true;
    case FeatureId::NumberOfQueues: {
      uint16_t n = c.io_queues_granted ? c.io_queues_granted : io_queue_limit(*req->qpair);
      *out = num_queues_dw(uint16_t(n - 1), uint16_t(n - 1));
      return true;
    }
    case FeatureId::InterruptCoalescing: *out = c.irq_coalescing; return true;
    case FeatureId::WriteAtomicityNormal: *out = c.write_atomicity; return true;
    case FeatureId::AsyncEventConfig: *out = c.aen_config; return true;
    case FeatureId::KeepAliveTimer: *out = c.kato_ms; return true;
    default: return false;
  }
}

void get_host_identifier(Request* req, Controller& c) {
  // Fabrics uses the 128-bit host identifier only (EXHID must be set).
  if (!(req->cmd.cdw11 & 1)) {
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  complete_with_data(req, c.hostid, sizeof c.hostid);
}

void exec_get_features(Request* req, Controller& c) {
  auto a = FeatureArgs::decode(req->cmd);
  if (is_discovery(c) && !discovery_feature(a.fid)) {
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  if (FeatureId(a.fid) == FeatureId::HostIdentifier) {
    if (a.sel == 3) {  // supported capabilities: not saveable, not changeable
      request_complete_status(req, GenericSc::Success);
      return;
    }
    get_host_identifier(req, c);
    return;
  }
  uint32_t v = 0;
  if (!feature_value(req, c, a.fid, &v)) {
    request_complete_status(req, GenericSc::InvalidField);
    return;
  }
  // SEL 3 asks for capabilities; nothing is saveable, so "saved" (2) and
  // "default" (1) report the current value as well.
  req->cpl.dw0 = a.sel == 3 ? kFeatChangeable : v;
  request_complete_status(req, GenericSc::Success);
}

// ---------------------------------------------------------------------------
// Keep Alive, AER, Abort.

void exec_async_event_request(Request* req, Controller& c) {
  if (!c.pending_events.empty()) {  // an event was waiting for an AER
    req->cpl.dw0 = c.pending_events.front();
    c.pending_events.pop_front();
    request_complete_status(req, GenericSc::Success);
    return;
  }
  if (c.aers.size() >= size_t(Controller::kMaxAers)) {
    request_complete_status(req, CmdSpecificSc::AsyncEventRequestLimitExceeded);
    return;
  }
  c.aers.push_back(req);  // completed by Controller::raise_event
}

}  // namespace

// ---------------------------------------------------------------------------
// Shared helpers (handlers.h).

uint32_t request_buffer_cap(const Qpair& q) {
  return std::max<uint32_t>(q.max_data_transfer, kIdentifyDataLen);
}

void complete_with_data(Request* req, const void* src, size_t n) {
  uint32_t len = req->length;
  if (len == 0 || req->xfer != XferDir::CtrlToHost) {
    request_complete_status(req, GenericSc::Success);
    return;
  }
  uint32_t cap = request_buffer_cap(*req->qpair);
  if (len > std::max(cap, req->buf_cap)) {
    request_complete_status(req, GenericSc::DataSglLengthInvalid);
    return;
  }
  if (!req->use_own_buffer(len, cap)) {
    request_complete_status(req, GenericSc::InternalError, false);
    return;
  }
  size_t k = std::min<size_t>(n, len);
  if (k) std::memcpy(req->buf, src, k);
  std::memset(req->buf + k, 0, len - k);
  request_complete_status(req, GenericSc::Success);
}

void complete_with_log(Request* req, const uint8_t* page, size_t page_size, uint64_t offset,
                       uint64_t len) {
  if (offset >= page_size) {
    complete_with_data(req, nullptr, 0);
    return;
  }
  size_t avail = std::min<uint64_t>(page_size - offset, len);
  complete_with_data(req, page + offset, avail);
}

void exec_admin(Request* req) {
  Controller& c = *req->qpair->ctrlr;
  // Like a PCIe controller, we accept admin commands only once the host has
  // enabled us (CC.EN = 1, CSTS.RDY = 1).
  if (!(c.csts & csts::kRdy)) {
    request_complete_status(req, GenericSc::CommandSequenceError);
    return;
  }
  switch (AdminOpc(req->cmd.opc)) {
    case AdminOpc::Identify: exec_identify(req, c); return;
    case AdminOpc::GetLogPage: exec_get_log_page(req, c); return;
    case AdminOpc::SetFeatures: exec_set_features(req, c); return;
    case AdminOpc::GetFeatures: exec_get_features(req, c); return;
    case AdminOpc::KeepAlive:
      c.keep_alive();
      request_complete_status(req, GenericSc::Success);
      return;
    case AdminOpc::AsyncEventRequest: exec_async_event_request(req, c); return;
    case AdminOpc::Abort:
      if (is_discovery(c)) break;
      // We never abort: dw0 bit 0 set means "command not aborted".
      req->cpl.dw0 = 1;
      request_complete_status(req, GenericSc::Success);
      return;
    default: break;
  }
  request_complete_status(req, GenericSc::InvalidOpcode);
}

}  // namespace nvmf
