// A HostController on a dedicated Reactor thread, for callers that must not
// block (the JS binding). Calls are posted to the reactor from any thread;
// results come back through callbacks that run on the reactor thread. No
// N-API here: the binding (addon/host_wrap.cc) turns callbacks into promise
// settlements.
//
// Buffers passed to exec()/get_log_page() must stay valid until their
// callback ran; after close_and_join() returns, no buffer is touched again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/reactor.h"
#include "host/controller.h"

namespace nvmf::host {

struct ConnectInfo {
  uint16_t cntlid = 0;
  uint16_t io_queues = 0;
  uint16_t queue_depth = 0;
  uint64_t max_transfer = 0;  // 0 = no limit
  uint32_t incapsule = 0;
  bool discovery = false;
  uint32_t kato_ms = 0;
};

class HostSession {
 public:
  // name, JSON object text; called on the reactor thread.
  using EventFn = std::function<void(const char* name, std::string json)>;
  using ConnectFn = std::function<void(const HostError&, const ConnectInfo&)>;
  using ExecFn = std::function<void(const HostError&, const HostCompletion&)>;
  using DoneFn = std::function<void(const HostError&)>;
  using LogFn = std::function<void(const HostError&, std::vector<uint8_t>)>;

  // Starts the reactor thread (interrupt mode: an idle session sleeps).
  static int create(EventFn events, std::shared_ptr<HostSession>* out);
  // Closes and joins if that has not happened. Never on the reactor thread.
  ~HostSession();
  HostSession(const HostSession&) = delete;
  HostSession& operator=(const HostSession&) = delete;

  // ---- any thread; callbacks on the reactor thread, or inline on the
  // calling thread with ERR_CONNECTION when the session is already closed.
  void connect(HostControllerOptions opts, ConnectFn done);
  // qid 0 = admin. The error is ok() for a successful completion; an NVMe
  // error status arrives as ERR_NVME_STATUS together with the completion.
  void exec(uint16_t qid, const HostCmd& cmd, ExecFn done);
  void get_log_page(uint8_t lid, uint8_t lsp, uint64_t offset, uint32_t nsid, uint8_t* buf,
                    uint32_t len, DoneFn done);
  void discovery_log(LogFn done);
  // DH-HMAC-CHAP again on every queue, with new keys when `replace_keys`.
  void reauthenticate(std::shared_ptr<const auth::DhchapKey> key,
                      std::shared_ptr<const auth::DhchapKey> ctrl_key, bool replace_keys,
                      DoneFn done);

  // Blocking, idempotent, thread-safe; never on the reactor thread. Fails
  // every outstanding command (their callbacks run before it returns), then
  // stops and joins the thread. Graceful: CC.SHN first, bounded to ~2 s.
  void close_and_join(bool graceful);

  pid_t reactor_tid() const { return reactor_.tid(); }

 private:
  class ReactorLoop;
  explicit HostSession(EventFn events);
  // Runs fn on the reactor; false (fn dropped) once the session is closed.
  bool post(std::function<void()> fn) { return reactor_.post(std::move(fn)); }

  EventFn events_;
  Reactor reactor_;
  std::unique_ptr<ReactorLoop> loop_;
  std::unique_ptr<HostController> ctrl_;  // reactor thread only
  std::mutex close_mu_;
  bool closed_ = false;  // under close_mu_
};

}  // namespace nvmf::host
