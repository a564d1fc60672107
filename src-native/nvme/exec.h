// The generic NVMe command layer: what transports call when a command is
// ready, and what command handlers call when it is done.
#pragma once

#include "core/qpair.h"
#include "core/request.h"
#include "nvme/spec.h"

namespace nvmf {

// Data direction of a command from its opcode (bits 1:0; Fabrics: fctype).
XferDir cmd_xfer_dir(const SqEntry& cmd);

// Transport -> core, on the qpair's reactor: `req` was received (cmd set,
// xfer/length set from the SGL, HostToCtrl data already in req->iov).
// Advances SQHD, checks the qpair state, dispatches to the fabrics, admin or
// I/O handler. Ends, now or later, in request_complete(req).
void request_exec(Request* req);

// Handlers -> transport: fills CQE fields (cid, sqid, sqhd), counts stats,
// and hands `req` to transport.ops->req_complete.
void request_complete(Request* req);

// Transport -> core: a command that failed before it could run (bad SGL,
// digest error). Counted and sequenced like any command, then completed
// with `s` without being executed.
void request_fail_early(Request* req, Status s, bool dnr);

// Convenience: set status and complete.
void request_complete_status(Request* req, Status s, bool dnr = true);

// Handlers (nvme/fabrics.cc, nvme/admin.cc, nvme/io.cc). Each completes req
// (now or asynchronously).
void exec_fabrics(Request* req);
void exec_admin(Request* req);
void exec_io(Request* req);

// Requests held while their subsystem is paused (see Subsystem::state).
void qpair_release_held(Qpair* q, bool abort);

}  // namespace nvmf
