// A reactor is one native thread running the hot poll loop of one poll group:
// messages -> fd events (sockets, eventfds, completion channels) -> pollers
// (io_uring CQ, RDMA CQ) -> timers. It never blocks except in epoll_wait, and
// only when the poll mode allows it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace nvmf {

enum class PollMode : uint8_t {
  Poll,       // busy-poll: lowest latency, one core at 100%
  Interrupt,  // always block in epoll_wait when there is no message
  Adaptive,   // busy-poll while there is work, block after a short idle spell
};

const char* poll_mode_name(PollMode m);

uint64_t now_ns();  // CLOCK_MONOTONIC

// Something with a file descriptor in the reactor's epoll set.
class FdHandler {
 public:
  virtual ~FdHandler() = default;
  virtual void on_fd_event(uint32_t epoll_events) = 0;
};

// Called every loop iteration; returns how much work it did (0 = idle).
using PollerFn = std::function<int()>;
using TimerFn = std::function<void()>;
using Message = std::function<void()>;

class Reactor {
 public:
  Reactor(int index, PollMode mode, uint64_t adaptive_idle_ns);
  ~Reactor();  // requires stop_and_join() to have been called
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Creates the epoll set and eventfd and starts the thread. Returns -errno.
  int start();
  // Posts a message from any thread. Returns false (and drops it) once the
  // reactor stopped accepting messages; callers that hand over references
  // must release them themselves in that case.
  bool post(Message m);
  // Runs `m` on the reactor and waits for it. Never call it from a reactor.
  bool call(const Message& m);
  // Stops accepting messages, runs the ones already queued, ends the thread
  // and joins it. Idempotent; never call it from this reactor.
  void stop_and_join();

  // ---- reactor thread only ----
  int add_fd(int fd, uint32_t events, FdHandler* h);
  int mod_fd(int fd, uint32_t events, FdHandler* h);
  int del_fd(int fd);
  uint64_t add_poller(PollerFn fn);
  void remove_poller(uint64_t id);
  uint64_t add_timer(uint64_t delay_ns, TimerFn fn);  // one-shot
  void cancel_timer(uint64_t id);
  // Keeps the loop spinning (no blocking) for the next iteration: used by
  // code that has work queued that no fd event will announce.
  void wake_soon() { busy_hint_ = true; }

  bool on_thread() const { return std::this_thread::get_id() == thread_id_; }
  int index() const { return index_; }
  PollMode mode() const { return mode_; }
  pid_t tid() const { return tid_.load(); }

  // Counters, read from any thread (relaxed).
  struct Counters {
    std::atomic<uint64_t> iterations{0};
    std::atomic<uint64_t> sleeps{0};
    std::atomic<uint64_t> messages{0};
  };
  const Counters& counters() const { return counters_; }

 private:
  void run();
  int run_messages();
  int run_pollers();
  int run_timers(uint64_t now);
  int wait_events(int timeout_ms);
  int next_timer_timeout_ms(uint64_t now) const;

  struct Poller {
    uint64_t id;
    PollerFn fn;
  };

  const int index_;
  const PollMode mode_;
  const uint64_t adaptive_idle_ns_;
  int epfd_ = -1;
  int evfd_ = -1;
  std::thread thread_;
  std::thread::id thread_id_;
  std::atomic<pid_t> tid_{0};

  std::mutex mq_mu_;  // guards mq_, accepting_
  std::vector<Message> mq_;
  bool accepting_ = false;
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_{false};
  bool joined_ = false;

  std::vector<Poller> pollers_;
  std::map<std::pair<uint64_t, uint64_t>, TimerFn> timers_;  // (deadline, id)
  std::unordered_map<uint64_t, uint64_t> timer_deadline_;      // id -> deadline
  uint64_t next_id_ = 1;
  bool busy_hint_ = false;
  Counters counters_;
};

}  // namespace nvmf
