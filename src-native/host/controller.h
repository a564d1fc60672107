// An NVMe-oF controller as seen from the host: the admin queue plus I/O
// queues over NVMe/TCP, the connect sequence, keep-alive, command timeouts
// and the admin helpers (Get Log Page in chunks, the discovery log).
//
// Event driven and single threaded: it runs on a HostLoop (a Reactor for the
// JS binding, a SyncLoop for synchronous tools) and reports through
// callbacks on that loop's thread. Any queue failing fails the whole
// controller (as the Linux host's error recovery does); there is no
// reconnect.
//
// Never destroy a HostController from inside one of its own callbacks: post
// the destruction to the loop instead.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "auth/dhchap_key.h"
#include "host/host_error.h"
#include "host/host_loop.h"
#include "host/tcp_queue.h"
#include "nvme/spec.h"

namespace nvmf::host {

struct HostControllerOptions {
  sockaddr_storage addr{};  // numeric IPv4/IPv6 address + port
  socklen_t addrlen = 0;
  std::string target;       // "10.0.0.1:4420", for messages
  std::string subnqn;
  std::string hostnqn;
  uint8_t hostid[16]{};
  uint16_t io_queues = 1;      // wanted; 0 = admin queue only
  uint16_t queue_depth = 128;  // I/O queue depth, clamped to CAP.MQES + 1
  uint16_t admin_depth = 32;
  uint32_t kato_ms = 0;        // keep alive timeout; 0 disables keep alive
  bool hdgst = false;
  bool ddgst = false;
  uint32_t connect_timeout_ms = 10000;
  uint32_t command_timeout_ms = 30000;  // 0 = commands never time out
  uint32_t max_incapsule = 8192;        // host cap on in-capsule write data
  HostTransport transport = HostTransport::Tcp;  // NVMe/TCP or NVMe/RDMA (host/queue.h)
  uint8_t sgl_descriptors = 1;  // RDMA: keyed SGL descriptors per transfer (HostQueueConfig)
  // DH-HMAC-CHAP (controller_auth.cc). With a key the host authenticates
  // when the controller asks (Connect AUTHREQ.ATR); with a controller key
  // too it also authenticates the controller, and insists on doing so.
  std::shared_ptr<const auth::DhchapKey> dhchap_key;
  std::shared_ptr<const auth::DhchapKey> dhchap_ctrl_key;
  // Offered in AUTH_Negotiate (the controller picks one of each).
  std::vector<uint8_t> auth_hashes{1, 2, 3};
  std::vector<uint8_t> auth_dhgroups{0, 1, 2, 3, 4, 5};
};

class HostController : private HostQueueListener {
 public:
  enum class State : uint8_t { Idle, Connecting, Live, Closing, Closed, Failed };
  using DoneFn = std::function<void(const HostError&)>;
  using CmdFn = std::function<void(const HostCompletion&)>;
  using LogFn = std::function<void(const HostError&, std::vector<uint8_t>)>;

  HostController(HostLoop& loop, HostControllerOptions opts);
  // Closes abruptly: outstanding commands complete with -ECONNABORTED.
  ~HostController() override;
  HostController(const HostController&) = delete;
  HostController& operator=(const HostController&) = delete;

  // TCP + ICReq on the admin queue, Fabrics Connect, CAP, CC.EN, CSTS.RDY,
  // Identify Controller, Number of Queues, I/O queue connects. `done` runs
  // once (possibly inline, on an immediate error).
  void connect(DoneFn done);

  // The allocation-free path: 0, -EAGAIN (queue full), -ENOTCONN (not
  // live), -EINVAL (bad qid or command). On 0, cmd.fn runs exactly once.
  int submit(uint16_t qid, const HostCmd& cmd);
  // Convenience path: waits for a free slot when the queue is full; `fn`
  // always runs exactly once (inline only for an immediate error). Checks
  // the length against MDTS unless cmd.keep_dptr (raw commands).
  void exec(uint16_t qid, const HostCmd& cmd, CmdFn fn);

  // Reads `len` bytes (multiple of 4) of a log page at `offset` into buf,
  // split into commands that respect MDTS.
  void get_log_page(uint8_t lid, uint8_t lsp, uint64_t offset, uint32_t nsid, uint8_t* buf,
                    uint32_t len, DoneFn done);
  // The whole discovery log page, re-read until its generation counter is
  // stable.
  void read_discovery_log(LogFn done);

  // Runs DH-HMAC-CHAP again on the admin queue and then on every I/O queue
  // of a live controller (host-initiated re-authentication), with new keys
  // when `replace_keys`. Commands keep flowing meanwhile. A failure fails
  // the controller (the target ends the queue after AUTH_Failure1).
  void reauthenticate(std::shared_ptr<const auth::DhchapKey> key,
                      std::shared_ptr<const auth::DhchapKey> ctrl_key, bool replace_keys,
                      DoneFn done);

  // Graceful: CC.SHN = normal shutdown (bounded wait), then close. Either
  // way every outstanding command completes with an error first.
  void close(bool graceful, std::function<void()> done);

  // Called (once) when a live controller fails: a queue error, a command
  // timeout, a failed keep alive.
  void set_on_failed(DoneFn fn) { on_failed_ = std::move(fn); }

  // A completion turned into an error (ok() for success): ERR_NVME_STATUS
  // naming the command and status, ERR_TIMEOUT, ERR_CONNECTION.
  // Static: usable from callbacks that run while the controller is being
  // destroyed.
  static HostError error_of(uint16_t qid, const SqEntry& sqe, const HostCompletion& c);

  State state() const { return state_; }
  bool live() const { return state_ == State::Live; }
  const HostError& failure() const { return failure_; }
  const HostControllerOptions& options() const { return opts_; }
  uint16_t cntlid() const { return cntlid_; }
  uint64_t cap() const { return cap_; }
  const IdentifyController& identify() const { return id_; }
  bool discovery() const { return discovery_; }
  uint64_t max_transfer() const { return max_xfer_; }  // 0 = no limit
  uint16_t io_queue_count() const { return nio_; }
  uint16_t io_queue_depth() const { return io_depth_; }
  uint32_t io_incapsule() const { return io_incapsule_; }
  // For pollers that drive queues themselves (perf tool): nullptr if none.
  HostQueue* queue(uint16_t qid);

 private:
  struct QueueCtx;
  struct Thunk;
  static void thunk_done(void* ctx, const HostCompletion& c);

  // HostQueueListener.
  void on_queue_ready(HostQueue& q) override;
  void on_queue_failed(HostQueue& q) override;
  void on_queue_interest(HostQueue& q) override;

  void on_queue_event(QueueCtx& c, uint32_t events);
  QueueCtx* add_queue(uint16_t qid, uint16_t depth, uint32_t incapsule);
  std::string queue_label(uint16_t qid) const;
  int start_queue(QueueCtx& c);
  void drain(QueueCtx& c);
  // exec() without the Live check, for the connect and close sequences.
  void exec_internal(uint16_t qid, const HostCmd& cmd, CmdFn fn);

  // Connect sequence, one step per completion.
  void send_admin_connect();
  void read_cap();
  void enable();
  void poll_ready(uint64_t deadline, uint64_t delay_ns);
  void identify_controller();
  void set_queue_count();
  void connect_io_queues();
  void send_io_connect(uint16_t qid);
  void finish_connect();
  void connect_failed(HostError e);
  // Fails a connect step: false if `c` succeeded.
  bool step_failed(uint16_t qid, const SqEntry& sqe, const HostCompletion& c);

  // DH-HMAC-CHAP, one transaction per queue (controller_auth.cc).
  struct AuthCtx;
  using AuthStep = void (HostController::*)(AuthCtx&, const HostCompletion&);
  // Authenticates queue `qid`; `done` runs once, with ERR_AUTH_FAILED (and
  // the reason) when either side rejects the other.
  void authenticate(uint16_t qid, DoneFn done);
  // After Connect: authenticate when the controller asks (or when we must
  // authenticate it), then `next`.
  void after_connect(uint16_t qid, uint16_t authreq, std::function<void()> next);
  void auth_send(AuthCtx& a, uint32_t len, AuthStep next);
  void auth_recv(AuthCtx& a, AuthStep next);
  void auth_negotiated(AuthCtx& a, const HostCompletion& hc);
  void auth_on_challenge(AuthCtx& a, const HostCompletion& hc);
  void auth_replied(AuthCtx& a, const HostCompletion& hc);
  void auth_on_success1(AuthCtx& a, const HostCompletion& hc);
  void auth_success2_sent(AuthCtx& a, const HostCompletion& hc);
  void auth_failure2_sent(AuthCtx& a, const HostCompletion& hc);
  // Rejects the controller's message: AUTH_Failure2, then fail with `why`.
  void auth_reject(AuthCtx& a, uint8_t reason, std::string why);
  // The controller answered with AUTH_Failure1: finish with its reason.
  bool auth_failure1(AuthCtx& a, size_t len);
  HostError auth_cmd_error(AuthCtx& a, bool send, const HostCompletion& hc);
  void auth_finish(AuthCtx& a, HostError e);
  void reauth_next(uint16_t qid, std::shared_ptr<DoneFn> done);

  void arm_keep_alive();
  void send_keep_alive();
  void arm_tick();
  void on_tick();
  void cancel_timers();

  void fail_controller(HostError e);
  void teardown(int err, const std::string& why);
  void finish_close();

  HostLoop& loop_;
  HostControllerOptions opts_;
  State state_ = State::Idle;
  HostError failure_;
  DoneFn connect_done_;
  DoneFn on_failed_;
  std::vector<std::function<void()>> close_waiters_;
  const char* stage_ = "idle";  // connect step, for timeout messages

  std::vector<std::unique_ptr<QueueCtx>> queues_;  // index = qid
  std::vector<std::unique_ptr<AuthCtx>> auth_;    // index = qid, made on first use
  uint16_t auth_tid_ = 0;   // next transaction id
  uint32_t auth_seq_ = 0;   // next S2

  FabricsConnectData connect_data_{};  // in-capsule data of the Connect commands
  IdentifyController id_{};
  uint16_t cntlid_ = 0;
  uint64_t cap_ = 0;
  uint32_t cc_ = 0;
  bool discovery_ = false;
  uint64_t max_xfer_ = 0;
  uint16_t nio_ = 0;
  uint16_t io_depth_ = 0;
  uint32_t io_incapsule_ = 0;
  uint16_t io_connected_ = 0;
  bool ka_outstanding_ = false;

  uint64_t connect_timer_ = 0;
  uint64_t ready_timer_ = 0;
  uint64_t ka_timer_ = 0;
  uint64_t tick_timer_ = 0;
  uint64_t close_timer_ = 0;
};

const char* controller_state_name(HostController::State s);

}  // namespace nvmf::host
