// One queue's DH-HMAC-CHAP transaction on the host side (controller_auth.cc).
// Kept for the controller's lifetime and reused by re-authentications, so
// the message buffers the queue reads and writes outlive every command.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "auth/crypto.h"
#include "auth/dhchap_key.h"
#include "auth/messages.h"
#include "host/controller.h"

namespace nvmf::host {

struct HostController::AuthCtx {
  // Linux hosts ask for 4 KiB; every message of one descriptor fits.
  static constexpr uint32_t kRecvLen = 4096;

  explicit AuthCtx(uint16_t q) : qid(q) {}
  ~AuthCtx() { wipe(); }
  AuthCtx(const AuthCtx&) = delete;
  AuthCtx& operator=(const AuthCtx&) = delete;

  void wipe() {
    key.reset();
    ctrl_key.reset();
    auth::secure_wipe(r2, sizeof r2);
    auth::secure_wipe(send_buf, sizeof send_buf);
    auth::secure_wipe(recv_buf, sizeof recv_buf);
  }

  const uint16_t qid;
  bool active = false;
  uint64_t gen = 0;  // which transaction a completion belongs to
  DoneFn done;
  std::shared_ptr<const auth::DhchapKey> key;       // snapshot at the start
  std::shared_ptr<const auth::DhchapKey> ctrl_key;  // null: unidirectional
  uint16_t t_id = 0;
  auth::HashId hash = auth::HashId::None;
  bool bidirectional = false;
  uint8_t r2[auth::kMaxDigestLength]{};  // the response we expect from the controller
  uint8_t reject_reason = 0;  // AUTH_Failure2 being sent, and why
  std::string reject_why;
  uint8_t send_buf[auth::kMaxMessageLength]{};
  uint8_t recv_buf[kRecvLen]{};
};

}  // namespace nvmf::host
