// One NVMe queue over one NVMe/TCP connection, host side (a HostQueue,
// host/queue.h).
//
// The queue owns a non-blocking socket and speaks the PDU protocol: ICReq /
// ICResp, command capsules (with in-capsule data for small writes), R2T ->
// H2CData, C2HData into the caller's buffer, CapsuleResp, C2HTermReq. It
// knows nothing about controllers, event loops or threads: the owner calls
// poll() when the fd is ready (or in a busy loop) and learns about state
// changes through HostQueueListener. Single-threaded: every method runs on
// the owner's thread.
//
// Everything the target sends is validated before use (lengths, offsets,
// CIDs, digests, flags): the peer may be hostile, and feed() is the entry
// point a fuzzer drives without a socket.
//
// Buffer contract: a command's data buffer is used until its completion
// callback runs (or the queue fails); not one byte is touched afterwards,
// even if the target later sends data or responses naming that command.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/cid_pool.h"
#include "host/commands.h"
#include "host/queue.h"
#include "nvme/spec.h"
#include "transport/tcp_pdu.h"

namespace nvmf::host {

class TcpQueue final : public HostQueue {
 public:
  TcpQueue(const HostQueueConfig& cfg, HostQueueListener* listener);
  // Closes the socket. Never runs callbacks: call fail() first so that
  // outstanding commands complete.
  ~TcpQueue() override;
  TcpQueue(const TcpQueue&) = delete;
  TcpQueue& operator=(const TcpQueue&) = delete;

  // Starts a non-blocking TCP connect. -errno on immediate failure (the
  // queue stays Idle, no callbacks).
  int connect(const sockaddr* addr, socklen_t len) override;
  // Takes ownership of an already connected stream socket (tests, fuzzing
  // over a socketpair) and sends ICReq.
  int adopt(int fd);

  // Makes progress: completes the TCP connect, reads and dispatches PDUs,
  // writes queued PDUs. `events` are epoll bits (0 = try everything, for
  // busy polling). Returns an amount of work done (0 = idle).
  int poll(uint32_t events) override;

  // Queues a command. 0, or -EAGAIN (no free CID), -ENOTCONN (not Ready),
  // -EINVAL (bad length/direction). On 0 the callback runs exactly once,
  // never from inside submit() itself.
  int submit(const HostCmd& c) override;
  void hold_sends(bool on) override;

  // Fails the queue: closes the socket and completes every outstanding
  // command with -err. Idempotent.
  void fail(int err, std::string why) override;

  // Parses bytes as if read from the socket (the receive path's only entry).
  // Returns -errno once the queue failed, else 0.
  int feed(const uint8_t* p, size_t n);

  State state() const override { return state_; }
  int fd() const override { return fd_; }
  bool want_write() const override { return want_write_; }
  uint16_t qid() const override { return cfg_.qid; }
  uint16_t depth() const override { return cids_.depth(); }
  size_t outstanding() const override { return cids_.in_use(); }
  bool full() const override { return cids_.full(); }
  int fail_errno() const override { return fail_err_; }
  const std::string& fail_reason() const override { return fail_reason_; }
  // Negotiated at ICResp.
  bool hdgst() const { return hdgst_; }
  bool ddgst() const { return ddgst_; }
  uint32_t maxh2cdata() const { return maxh2cdata_; }
  uint8_t cpda() const { return cpda_; }
  // Submit time (CLOCK_MONOTONIC ns) of the oldest outstanding command,
  // 0 when none: the owner enforces command timeouts with it.
  uint64_t oldest_submit_ns() const override;
  // Changes the in-capsule limit (after Identify told the owner IOCCSZ).
  void set_max_incapsule(uint32_t n) override { cfg_.max_incapsule = n; }

 private:
  // Per-command state, indexed by CID tag.
  struct Slot {
    bool busy = false;
    uint16_t cid = 0;
    HostCmd cmd;
    uint64_t submit_ns = 0;
    bool incapsule = false;
    bool capsule_queued = false;  // in the TX ring, not yet staged
    uint16_t staged = 0;          // staged PDUs not fully written yet
    // R2T: the range still to be staged as H2CData PDUs.
    bool r2t_active = false;
    uint16_t ttag = 0;
    uint32_t r2t_next = 0;
    uint32_t r2t_end = 0;
    uint32_t h2c_bytes = 0;   // data bytes sent so far (in-capsule or H2C)
    uint32_t c2h_next = 0;    // next expected C2H data offset
    bool data_error = false;  // a C2H data digest mismatched
    bool cqe_held = false;    // completion waits for staged PDUs to drain
    CqEntry held{};
  };

  // Work waiting to be turned into PDUs, in order.
  struct TxItem {
    uint16_t tag;
    uint16_t cid;  // detects items whose command completed meanwhile
    bool h2c;      // false: the command capsule
  };

  // One PDU materialised for sendmsg(): header (+digest +padding), data
  // from the caller's buffer, data digest.
  static constexpr size_t kMaxHdr = 256;
  static constexpr int kNoTag = -1;
  struct Staged {
    uint8_t hdr[kMaxHdr];
    uint32_t hdr_len = 0;
    const uint8_t* data = nullptr;
    uint32_t data_len = 0;
    uint8_t ddgst[4];
    bool has_ddgst = false;
    int tag = kNoTag;
    uint32_t total() const { return hdr_len + data_len + (has_ddgst ? 4u : 0u); }
  };
  static constexpr int kMaxStaged = 16;

  enum class Rx : uint8_t { Header, Data, Ddgst };
  static constexpr size_t kRxBufLen = 64 * 1024;

  // ---- TX ----
  void start_ic();
  // Writes staged PDUs until done or EAGAIN. `may_fail` is false when
  // called from submit(): a send error is then only recorded (tx_error_)
  // and reported by the next poll(), so no callback runs inside submit().
  int flush(bool may_fail);
  void fill_staging();
  bool stage_capsule(Slot& s, uint16_t tag, Staged& out);
  void stage_h2c(Slot& s, uint16_t tag, Staged& out);
  void retire(size_t n);
  void run_deferred();
  void set_want_write(bool on);
  void finish_connect(uint32_t events);

  // ---- RX ----
  int read_socket();
  bool on_common_header();
  void on_header();
  void on_icresp();
  void on_capsule_resp();
  void on_r2t();
  void on_c2h_header();
  void on_c2h_done();
  void on_term_req();
  void rx_reset() { rx_ = Rx::Header; hdr_have_ = 0; hdr_need_ = sizeof(tcp::CommonHeader); ch_ok_ = false; }

  // ---- completion ----
  Slot* lookup(uint16_t cid, const char* what);
  void on_cqe(Slot& s, const CqEntry& cqe);
  void complete(uint16_t tag, CqEntry cqe);
  uint16_t tag_of(const Slot& s) const { return uint16_t(&s - slots_.data()); }
  void protocol_error(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  HostQueueConfig cfg_;
  HostQueueListener* listener_;
  State state_ = State::Idle;
  int fd_ = -1;
  int fail_err_ = 0;
  std::string fail_reason_;
  bool want_write_ = false;
  int guard_ = 0;  // >0 while inside poll() or hold_sends(): submit() only queues
  int tx_error_ = 0;  // a send error seen by a submit()-time flush

  // Negotiated.
  bool hdgst_ = false;
  bool ddgst_ = false;
  uint8_t cpda_ = 0;
  uint32_t maxh2cdata_ = tcp::kMinMaxH2cData;

  CidPool cids_;
  std::vector<Slot> slots_;

  // TX ring: at most one capsule and one H2C item per command.
  std::vector<TxItem> ring_;
  size_t ring_head_ = 0;
  size_t ring_count_ = 0;
  std::unique_ptr<Staged[]> staged_;
  int nstaged_ = 0;
  uint32_t first_sent_ = 0;  // bytes of staged_[0] already written
  // Commands whose completion waited for their PDUs to leave; completed
  // by poll(), never from inside submit().
  std::vector<uint16_t> deferred_;

  // RX.
  Rx rx_ = Rx::Header;
  uint8_t hdr_[kMaxHdr];
  uint32_t hdr_have_ = 0;
  uint32_t hdr_need_ = sizeof(tcp::CommonHeader);
  bool ch_ok_ = false;
  uint16_t rx_tag_ = 0;        // C2H: the command receiving data
  uint8_t* rx_dst_ = nullptr;
  uint32_t rx_left_ = 0;
  uint32_t rx_datal_ = 0;
  uint8_t rx_flags_ = 0;
  uint32_t rx_crc_ = 0;
  uint8_t rx_ddgst_[4];
  uint32_t rx_ddgst_have_ = 0;
  std::unique_ptr<uint8_t[]> rx_buf_;
};

}  // namespace nvmf::host
