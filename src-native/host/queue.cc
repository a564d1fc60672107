#include "host/queue.h"

#include "host/rdma_queue.h"
#include "host/tcp_queue.h"

namespace nvmf::host {

const char* queue_state_name(HostQueue::State s) {
  switch (s) {
    case HostQueue::State::Idle: return "idle";
    case HostQueue::State::Connecting: return "connecting";
    case HostQueue::State::IcWait: return "waiting for ICResp";
    case HostQueue::State::Ready: return "ready";
    case HostQueue::State::Failed: return "failed";
  }
  return "?";
}

std::unique_ptr<HostQueue> make_host_queue(const HostQueueConfig& cfg, HostQueueListener* listener) {
  if (cfg.transport == HostTransport::Rdma) return std::make_unique<RdmaQueue>(cfg, listener);
  return std::make_unique<TcpQueue>(cfg, listener);
}

}  // namespace nvmf::host
