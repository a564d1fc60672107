// What the host controller needs from the thread that runs it: an epoll-like
// fd watch and one-shot timers. The JS binding implements it on a Reactor
// (host_session.cc); SyncLoop (sync_loop.h) implements it on a private epoll
// set for synchronous users (perf tool, fio engine, native tests).
// Every method is called on the loop's own thread.
#pragma once

#include <cstdint>
#include <functional>

#include "core/reactor.h"  // FdHandler
#include "host/clock.h"

namespace nvmf::host {

class HostLoop {
 public:
  virtual ~HostLoop() = default;
  virtual int watch(int fd, uint32_t events, FdHandler* h) = 0;    // -errno
  virtual int rewatch(int fd, uint32_t events, FdHandler* h) = 0;  // -errno
  virtual void unwatch(int fd) = 0;
  virtual uint64_t add_timer(uint64_t delay_ns, std::function<void()> fn) = 0;
  virtual void cancel_timer(uint64_t id) = 0;
};

}  // namespace nvmf::host
