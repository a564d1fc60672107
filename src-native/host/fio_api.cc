// fio_api.h on PerfClient: a pool of PerfIo per job, a ring of finished
// ones, and the getevents()/event() pair fio expects.
#include "host/fio_api.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "host/clock.h"
#include "host/perf_client.h"

using nvmf::host::PerfClient;
using nvmf::host::PerfIo;
using nvmf::host::PerfOp;
using nvmf::host::PerfTargetOptions;

struct nvmf_fio_conn {
  std::unique_ptr<PerfClient> client;
  std::vector<PerfIo> pool;
  std::vector<PerfIo*> free_ios;
  std::vector<PerfIo*> done;  // finished, not yet taken by a reap (FIFO by index)
  size_t done_head = 0;
  std::vector<PerfIo*> events;  // taken by the last reap, handed out by nvmf_fio_event()
  unsigned next_conn = 0;
  bool busy_poll = true;
  // Queued by fio, not yet handed to the client: sent together when fio
  // waits for completions, as SPDK's initiator defers sends to its poll.
  std::vector<PerfIo*> pending;

  bool polling = false;  // inside client->poll(): submit() only queues

  static void on_done(void* owner, PerfIo* io);
};

namespace {

void set_err(char* err, size_t len, const std::string& msg) {
  if (err && len) std::snprintf(err, len, "%s", msg.c_str());
}

std::string str(const char* s) { return s ? s : ""; }

}  // namespace

extern "C" {

nvmf_fio_conn* nvmf_fio_open(const nvmf_fio_params* p, char* err, size_t errlen) {
  PerfTargetOptions o;
  o.transport = p->transport && *p->transport ? p->transport : "tcp";
  o.address = str(p->address);
  if (o.address.empty()) {
    set_err(err, errlen, "traddr (the target address) is required");
    return nullptr;
  }
  if (p->port == 0 || p->port > 65535) {
    set_err(err, errlen, "trsvcid (the port) must be from 1 to 65535");
    return nullptr;
  }
  o.port = uint16_t(p->port);
  o.subnqn = str(p->subnqn);
  o.hostnqn = str(p->hostnqn);
  o.nsid = p->nsid ? p->nsid : 1;
  o.connections = uint16_t(p->connections ? p->connections : 1);
  o.queue_depth = uint16_t(p->queue_depth ? p->queue_depth : 1);
  o.hdgst = p->hdgst != 0;
  o.ddgst = p->ddgst != 0;
  o.max_incapsule = p->max_incapsule;
  o.dhchap_secret = str(p->dhchap_secret);
  o.dhchap_ctrl_secret = str(p->dhchap_ctrl_secret);

  auto c = std::make_unique<nvmf_fio_conn>();
  c->busy_poll = p->busy_poll != 0;
  std::string why;
  c->client = PerfClient::connect(o, &nvmf_fio_conn::on_done, c.get(), &why);
  if (!c->client) {
    set_err(err, errlen, why);
    return nullptr;
  }
  size_t n = size_t(c->client->connections()) * c->client->queue_depth();
  c->pool.resize(n);
  c->free_ios.reserve(n);
  for (auto& io : c->pool) c->free_ios.push_back(&io);
  c->done.reserve(n);
  c->events.reserve(n);
  return c.release();
}

void nvmf_fio_geometry(const nvmf_fio_conn* c, uint64_t* size_bytes, uint32_t* block_size,
                       uint32_t* max_transfer) {
  if (size_bytes) *size_bytes = c->client->size_bytes();
  if (block_size) *block_size = c->client->block_size();
  if (max_transfer) *max_transfer = c->client->max_transfer();
}

int nvmf_fio_submit(nvmf_fio_conn* c, int op, uint64_t offset, uint32_t len, void* buf, void* user) {
  if (c->client->failed()) return -ENOTCONN;
  if (c->free_ios.empty()) return -EAGAIN;
  if (op != NVMF_FIO_READ && op != NVMF_FIO_WRITE && op != NVMF_FIO_FLUSH) return -EINVAL;
  PerfIo* io = c->free_ios.back();
  io->op = op == NVMF_FIO_READ ? PerfOp::Read : op == NVMF_FIO_WRITE ? PerfOp::Write : PerfOp::Flush;
  io->offset = offset;
  io->len = op == NVMF_FIO_FLUSH ? 0 : len;
  io->buf = static_cast<uint8_t*>(buf);
  io->user = user;
  c->free_ios.pop_back();
  c->pending.push_back(io);
  return 0;
}

// Hands the pending I/Os to the client. From inside a poll (a completion
// callback) they ride in the one sendmsg() that ends the poll; otherwise the
// client is corked around the submissions, so the batch still leaves with
// one sendmsg() per connection rather than one per I/O, exactly as the perf
// tool's resubmissions from completions do.
static void send_pending(nvmf_fio_conn* c) {
  if (c->pending.empty()) return;
  const bool batch = !c->polling;
  if (batch) c->client->cork(true);
  const unsigned nconn = c->client->connections();
  for (PerfIo* io : c->pending) {
    int rc = -EAGAIN;
    // Spread over the connections; a full one passes the I/O to the next.
    for (unsigned k = 0; k < nconn && rc == -EAGAIN; k++) {
      io->conn = uint16_t(c->next_conn);
      c->next_conn = (c->next_conn + 1) % nconn;
      rc = c->client->submit(io);
    }
    if (rc < 0) {
      // Cannot happen with the pool sized to the queues (one CID spare);
      // a dead connection ends up here.
      io->err = rc;
      io->nvme_status = 0;
      c->done.push_back(io);
    }
  }
  c->pending.clear();
  if (batch) c->client->cork(false);
}

void nvmf_fio_conn::on_done(void* owner, PerfIo* io) {
  auto* c = static_cast<nvmf_fio_conn*>(owner);
  c->done.push_back(io);
  // A completion arrived while fio has I/O queued: send it now, batched
  // with everything else this poll writes (as the perf tool resubmits).
  if (c->polling) send_pending(c);
}

static int poll_client(nvmf_fio_conn* c) {
  c->polling = true;
  int n = c->client->poll();
  c->polling = false;
  return n;
}

void nvmf_fio_commit(nvmf_fio_conn* c) {
  // Nothing: fio commits after every queue() by default; the batch leaves
  // when fio waits for completions (nvmf_fio_reap with min > 0).
  (void)c;
}

int nvmf_fio_reap(nvmf_fio_conn* c, unsigned min, unsigned max, int64_t timeout_ns) {
  c->events.clear();
  // fio waits: what it queued leaves now, in one batch. A min == 0 peek (fio
  // looks between submissions) leaves the batch growing.
  if (min > 0 || c->free_ios.empty()) send_pending(c);
  const uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : nvmf::host::mono_ns() + uint64_t(timeout_ns);
  auto ready = [c] { return c->done.size() - c->done_head; };
  while (ready() < min) {
    if (c->client->failed()) break;
    if (c->busy_poll) {
      poll_client(c);
    } else {
      c->client->wait(1);
    }
    if (ready() >= min) break;
    if (timeout_ns >= 0 && nvmf::host::mono_ns() >= deadline) break;
  }
  if (ready() == 0) {
    // One non-blocking look, for min == 0 callers.
    poll_client(c);
  }
  size_t take = std::min<size_t>(ready(), max);
  for (size_t i = 0; i < take; i++) c->events.push_back(c->done[c->done_head + i]);
  // Keep what fio did not take, at the front (at most the pool size).
  c->done.erase(c->done.begin(), c->done.begin() + std::ptrdiff_t(c->done_head + take));
  c->done_head = 0;
  if (take == 0 && c->client->failed()) return -ENOTCONN;
  return int(take);
}

void* nvmf_fio_event(nvmf_fio_conn* c, int i, int* err) {
  PerfIo* io = c->events[size_t(i)];
  if (err) *err = io->err < 0 ? -io->err : 0;
  // fio takes each event once: the PerfIo is free again (fio may queue the
  // next I/O before it reaps again, and must find room for it).
  c->free_ios.push_back(io);
  return io->user;
}

const char* nvmf_fio_error(const nvmf_fio_conn* c) { return c->client->error().c_str(); }

void nvmf_fio_close(nvmf_fio_conn* c) {
  if (!c) return;
  c->pending.clear();  // fio abandons them with the job
  c->client->close();
  c->client.reset();
  delete c;
}

}  // extern "C"
