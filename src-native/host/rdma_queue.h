// One NVMe queue over one NVMe/RDMA connection, host side (a HostQueue,
// host/queue.h).
//
// librdmacm connects (address, route, then the connection with the NVMe/RDMA
// private data); each queue has its own CM event channel, protection domain,
// completion queue + channel and RC QP. Commands go out as SENDs of capsules
// from a registered per-slot capsule buffer; small writes (I/O queues only,
// as Linux does) travel in the capsule, everything else through a keyed SGL
// naming the slot's registered bounce buffer, which the target reads or
// writes by RDMA. Responses arrive in preposted receive buffers. A command
// completes when both its SEND completion and its response are in: the
// capsule and bounce buffer are then no longer the device's.
//
// The owner sees one fd: a private epoll set holding the CM channel, the
// completion channel and an eventfd (to report a failure found inside
// submit() from poll(), never from submit() itself).
//
// Memory is registered once per slot (bounce buffers grow to the largest
// transfer seen), never per I/O. The caller's buffer is only ever touched by
// memcpy on this thread, so a failed queue hands it back at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "host/cid_pool.h"
#include "host/queue.h"
#include "transport/rdma_verbs.h"

namespace nvmf::host {

class RdmaQueue final : public HostQueue {
 public:
  RdmaQueue(const HostQueueConfig& cfg, HostQueueListener* listener);
  ~RdmaQueue() override;
  RdmaQueue(const RdmaQueue&) = delete;
  RdmaQueue& operator=(const RdmaQueue&) = delete;

  int connect(const sockaddr* addr, socklen_t len) override;
  int poll(uint32_t events) override;
  int submit(const HostCmd& c) override;
  void fail(int err, std::string why) override;

  State state() const override { return state_; }
  int fd() const override { return epfd_; }
  bool want_write() const override { return false; }  // posting never blocks
  uint16_t qid() const override { return cfg_.qid; }
  uint16_t depth() const override { return cids_.depth(); }
  size_t outstanding() const override { return cids_.in_use(); }
  bool full() const override { return cids_.full(); }
  int fail_errno() const override { return fail_err_; }
  const std::string& fail_reason() const override { return fail_reason_; }
  uint64_t oldest_submit_ns() const override;
  void set_max_incapsule(uint32_t n) override { max_incapsule_ = std::min(n, icd_); }

 private:
  struct Slot {
    bool busy = false;
    uint16_t cid = 0;
    HostCmd cmd;
    uint64_t submit_ns = 0;
    bool send_done = false;
    bool resp_done = false;
    bool keyed = false;  // data went by keyed SGL (bounce buffer)
    CqEntry cqe{};
    // Registered bounce buffer (grows, never shrinks).
    uint8_t* bounce = nullptr;
    uint32_t bounce_cap = 0;
    ibv_mr* bounce_mr = nullptr;
  };

  void on_cm_event(rdma_cm_event_type ev, int status, const void* priv, uint8_t priv_len);
  int setup_connection(std::string* why);
  int poll_cq();
  void on_wc(const ibv_wc& wc);
  bool post_recv(uint32_t i);
  bool ensure_bounce(Slot& s, uint32_t len);
  void complete(uint16_t tag);
  void protocol_error(const std::string& why);
  void wake();

  HostQueueConfig cfg_;
  HostQueueListener* listener_;
  State state_ = State::Idle;
  int fail_err_ = 0;
  std::string fail_reason_;
  int pending_err_ = 0;  // a failure found in submit(), reported by poll()
  std::string pending_why_;
  bool failing_ = false;  // fail() is delivering responses that arrived

  int epfd_ = -1;
  int evfd_ = -1;
  rdma_event_channel* ch_ = nullptr;
  rdma_cm_id* id_ = nullptr;
  ibv_pd* pd_ = nullptr;
  ibv_comp_channel* cc_ = nullptr;
  ibv_cq* cq_ = nullptr;
  ibv_qp* qp_ = nullptr;
  unsigned unacked_ = 0;
  bool connected_ = false;  // rdma_connect() was called

  uint32_t icd_ = 0;            // capsule data bytes a capsule buffer holds
  uint32_t max_incapsule_ = 0;  // write data up to this size in the capsule (I/O queues)
  uint32_t stride_ = 0;
  uint8_t* caps_ = nullptr;     // depth capsules, then nrecv_ response buffers
  size_t caps_bytes_ = 0;
  ibv_mr* caps_mr_ = nullptr;
  uint32_t nrecv_ = 0;

  CidPool cids_;
  std::vector<Slot> slots_;
};

}  // namespace nvmf::host
