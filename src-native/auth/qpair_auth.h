// DH-HMAC-CHAP on a target queue: the glue between the protocol state
// machine (auth/session.h) and a qpair (its state, the Authentication
// Send/Receive commands, a timer, events). Everything here runs on the
// qpair's reactor.
//
// Failure delivery follows DESIGN.md lesson 1: the AUTH_Failure1 message is
// the data of the host's Auth Receive, completed through the normal
// completion path; only after that response is queued does the generic
// qpair_disconnect() start, and the transport's disconnect-after-flush
// writes it (TCP: every byte; RDMA: the send completion) before closing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "auth/session.h"

namespace nvmf {

class Qpair;
class Subsystem;
struct Request;

// Per-queue authentication state (Qpair::auth).
struct QpairAuth {
  // The transaction in progress; null between transactions.
  std::unique_ptr<auth::ControllerSession> session;
  uint64_t timer = 0;       // reactor timer: the wait for the host's next message
  uint32_t timeout_ms = 0;  // that wait, from the policy at the transaction's start
  uint64_t generation = 0;  // which transaction the timer belongs to
  bool reauth = false;      // started on an enabled queue
  uint64_t start_ns = 0;    // transaction start, for the events' "ms"
};

// Fabrics Connect: the AUTHREQ bits to return for `hostnqn` on `s`. Nonzero
// (ATR) when the host has a key; the queue then becomes Authenticating and
// a timer bounds the transaction.
uint16_t auth_connect(Qpair* q, const Subsystem& s, const std::string& hostnqn);

// Authentication Send / Receive on an Authenticating or Enabled queue whose
// SECP was checked. Always completes `req`.
void auth_exec(Request* req);

}  // namespace nvmf
