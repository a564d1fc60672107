// NVMe/RDMA target transport (NVMe over Fabrics, RDMA transport binding):
// the ops table, listeners and the acceptor on reactor 0, and the devices'
// asynchronous events. Per-group state is in rdma_group.cc, queue pairs and
// requests in rdma_qpair.cc; the shared declarations in rdma_target.h.
//
// A connection request is checked here (NVMe/RDMA private data: record
// format, queue id, queue sizes, READ credits) and rejected with the
// matching NVMe/RDMA reject status, or handed to the least loaded poll group
// holding a shared_ptr to it. That group migrates the cm_id to its own event
// channel, creates the QP on its device's CQ, preposts receives and accepts.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "transport/rdma_target.h"

namespace nvmf::rdma {

std::string errno_str(int e) { return std::system_category().message(e); }

std::string sockaddr_str(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    std::string out = "[";
    out += host;
    out += "]:";
    out += std::to_string(ntohs(a->sin6_port));
    return out;
  }
  return "?";
}

namespace {

void set_err(std::string* err, std::string msg) {
  if (err) *err = std::move(msg);
}

int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  return 0;
}

}  // namespace

// ---------------------------------------------------------------------------
// Listeners and the acceptor (reactor 0).

class RdmaListener {
 public:
  RdmaListener(std::string name, rdma_cm_id* id) : name(std::move(name)), id(id) {}
  ~RdmaListener() {
    if (id) verbs().destroy_id(id);
  }
  RdmaListener(const RdmaListener&) = delete;
  RdmaListener& operator=(const RdmaListener&) = delete;
  const std::string name;
  rdma_cm_id* id;
};

// The listeners' CM event channel: connection requests (and events of the
// listening ids themselves).
class CmChannelHandler final : public FdHandler {
 public:
  CmChannelHandler(RdmaTransport& t, Reactor& r) : t_(t), r_(r) {}
  void on_fd_event(uint32_t) override;

 private:
  void on_connect_request(rdma_cm_id* child, const rdma_conn_param& conn);
  void reject(rdma_cm_id* child, CmRejectStatus sts, const char* why);
  RdmaListener* listener_of(rdma_cm_id* id);

  RdmaTransport& t_;
  Reactor& r_;
};

// A device's asynchronous events (port down, device fatal, QP fatal).
class AsyncEventHandler final : public FdHandler {
 public:
  AsyncEventHandler(RdmaTransport& t, ibv_context* ctx) : t_(t), ctx_(ctx) {}
  void on_fd_event(uint32_t) override;
  ibv_context* ctx() const { return ctx_; }

 private:
  RdmaTransport& t_;
  ibv_context* ctx_;
};

namespace {

// Runs fn on every poll group's reactor (by message; groups that stopped
// taking messages have nothing left to tell).
template <class Fn>
void each_group_async(Target& target, Fn fn) {
  for (int i = 0; i < target.group_count(); i++) {
    std::shared_ptr<PollGroup> g = target.group(i);
    if (!g) continue;
    g->reactor().post([g, fn] {
      if (RdmaGroup* rg = find_group(*g)) fn(*rg);
    });
  }
}

void reject_and_destroy(rdma_cm_id* id, CmRejectStatus sts) {
  CmReject rej{kRecfmt10, uint16_t(sts)};
  verbs().reject(id, &rej, sizeof rej);
  verbs().destroy_id(id);
}

// On the group's reactor: the connection becomes a qpair of this group.
void adopt(RdmaTransport* t, const std::shared_ptr<PollGroup>& g, rdma_cm_id* id, ConnectParams p,
           std::string peer) {
  const Verbs& v = verbs();
  RdmaGroup* rg = find_group(*g);
  if (g->closed || g->draining() || !rg) {
    reject_and_destroy(id, CmRejectStatus::NoResources);
    return;
  }
  std::string why;
  RdmaDevice* dev = rg->device_for(id->verbs, &why);
  if (!dev) {
    fprintf(stderr, "nvmf-target: rdma %s: rejected: %s\n", peer.c_str(), why.c_str());
    reject_and_destroy(id, CmRejectStatus::NoResources);
    return;
  }
  auto q = std::make_unique<RdmaQpair>(*t, g, *rg, *dev, id, p);
  // From here on the connection's events arrive on this reactor; the
  // context finds the qpair by uid.
  id->context = reinterpret_cast<void*>(uintptr_t(q->uid()));
  // Best effort: a device without the option keeps the CM's default.
  uint8_t ack_timeout = kAckTimeout;
  v.set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &ack_timeout, sizeof ack_timeout);
  if (v.migrate_id(id, rg->cm_channel()) != 0) {
    why = "rdma_migrate_id: " + errno_str(errno);
  } else if (q->setup(&why) < 0) {
    // why is set
  } else if (int rc = q->accept(); rc < 0) {
    // The host went away meanwhile, typically. ~RdmaQpair destroys the id.
    fprintf(stderr, "nvmf-target: rdma %s: rdma_accept: %s\n", peer.c_str(), errno_str(-rc).c_str());
    return;
  } else {
    RdmaQpair* raw = q.get();
    rg->add(std::move(q));
    qpair_accepted(raw);
    return;
  }
  fprintf(stderr, "nvmf-target: rdma %s: rejected: %s\n", peer.c_str(), why.c_str());
  CmReject rej{kRecfmt10, uint16_t(CmRejectStatus::NoResources)};
  v.reject(id, &rej, sizeof rej);
  // ~RdmaQpair: QP, cm_id, buffers.
}

}  // namespace

RdmaListener* CmChannelHandler::listener_of(rdma_cm_id* id) {
  for (auto& [key, l] : t_.listeners) {
    if (l->id == id) return l.get();
  }
  return nullptr;
}

void CmChannelHandler::on_fd_event(uint32_t) {
  const Verbs& v = verbs();
  rdma_cm_event* ev = nullptr;
  while (t_.listen_channel && v.get_cm_event(t_.listen_channel, &ev) == 0) {
    const rdma_cm_event_type type = ev->event;
    rdma_cm_id* id = ev->id;
    if (type == RDMA_CM_EVENT_CONNECT_REQUEST) {
      // The private data lives in the event: copy what we need, then ack.
      rdma_conn_param conn = ev->param.conn;
      CmRequest req{};
      const bool have = conn.private_data && conn.private_data_len >= sizeof req;
      if (have) std::memcpy(&req, conn.private_data, sizeof req);
      conn.private_data = have ? &req : nullptr;
      conn.private_data_len = have ? sizeof req : 0;
      v.ack_cm_event(ev);
      on_connect_request(id, conn);
      continue;
    }
    v.ack_cm_event(ev);
    if (RdmaListener* l = listener_of(id)) {
      if (type == RDMA_CM_EVENT_DEVICE_REMOVAL) {
        fprintf(stderr, "nvmf-target: %s: RDMA device removed; the listener is closed\n", l->name.c_str());
        // Not from inside the event handling: destroyed by a message.
        std::string key;
        for (auto& [k, lp] : t_.listeners) {
          if (lp.get() == l) key = k;
        }
        RdmaTransport* t = &t_;
        r_.post([t, key] { t->listeners.erase(key); });
      }
    }
    // Anything else belongs to a connection already handed to a group
    // (before its migration): that group learns of a dead connection from
    // its QP.
  }
}

void CmChannelHandler::reject(rdma_cm_id* child, CmRejectStatus sts, const char* why) {
  const std::string peer = sockaddr_str(reinterpret_cast<sockaddr*>(&child->route.addr.dst_addr));
  fprintf(stderr, "nvmf-target: rdma %s: connection rejected: %s (%s)\n", peer.c_str(), why,
          cm_reject_name(uint16_t(sts)));
  // Destroyed from a message, never from inside the event handling.
  if (!r_.post([child, sts] { reject_and_destroy(child, sts); })) reject_and_destroy(child, sts);
}

void CmChannelHandler::on_connect_request(rdma_cm_id* child, const rdma_conn_param& conn) {
  const TransportOptions& o = t_.opts;
  if (!conn.private_data) return reject(child, CmRejectStatus::InvalidLength, "no NVMe/RDMA private data");
  CmRequest req;
  std::memcpy(&req, conn.private_data, sizeof req);
  if (req.recfmt != kRecfmt10) return reject(child, CmRejectStatus::InvalidRecfmt, "unknown record format");
  if (req.qid > o.max_io_queues) return reject(child, CmRejectStatus::InvalidQid, "queue id beyond the I/O queues offered");
  const uint32_t limit = std::min<uint32_t>(req.qid == 0 ? o.max_admin_queue_depth : o.max_queue_depth, kMaxRequests);
  // HSQSIZE is 0's based, like Connect's SQSIZE; a queue holds at least 2.
  if (req.hsqsize == 0 || uint32_t(req.hsqsize) + 1 > limit) {
    return reject(child, CmRejectStatus::InvalidHsqsize, "send queue size out of range");
  }
  // Shared receive queue: one queue alone must fit in it (the rest of the
  // rule, the sum over the group's queues, is checked when adopted).
  if (o.rdma_srq_depth && uint32_t(req.hsqsize) + 1 > o.rdma_srq_depth) {
    return reject(child, CmRejectStatus::InvalidHsqsize, "send queue larger than the shared receive queue");
  }
  // The host must be able to take a response for every command it sends.
  if (uint32_t(req.hrqsize) < uint32_t(req.hsqsize) + 1) {
    return reject(child, CmRejectStatus::InvalidHrqsize, "receive queue smaller than the send queue");
  }
  // Write data comes by RDMA READ: the host must grant at least one.
  if (conn.initiator_depth == 0) return reject(child, CmRejectStatus::InvalidIrd, "host grants no RDMA READ");
  ConnectParams p;
  p.qid = req.qid;
  p.hrqsize = req.hrqsize;
  p.hsqsize = req.hsqsize;
  p.ird = conn.initiator_depth;  // the host's responder resources, seen from our side
  child->context = nullptr;
  std::shared_ptr<PollGroup> g = t_.target.pick_group();
  RdmaTransport* t = &t_;
  std::string peer = sockaddr_str(reinterpret_cast<sockaddr*>(&child->route.addr.dst_addr));
  // The message holds the group; a refused post runs nothing, so the
  // connection is still ours to refuse.
  if (!g || !g->reactor().post([t, g, child, p, peer] { adopt(t, g, child, p, peer); })) {
    return reject(child, CmRejectStatus::NoResources, "the target is shutting down");
  }
}

void AsyncEventHandler::on_fd_event(uint32_t) {
  const Verbs& v = verbs();
  ibv_async_event ev{};
  while (v.get_async_event(ctx_, &ev) == 0) {
    const ibv_event_type type = ev.event_type;
    switch (type) {
      case IBV_EVENT_QP_FATAL:
      case IBV_EVENT_QP_REQ_ERR:
      case IBV_EVENT_QP_ACCESS_ERR:
      case IBV_EVENT_PATH_MIG_ERR: {
        // qp_context is the qpair's uid; the QP itself stays valid until
        // this event is acknowledged.
        const uint64_t uid = uint64_t(reinterpret_cast<uintptr_t>(ev.element.qp->qp_context));
        v.ack_async_event(&ev);
        const char* why = v.event_type_str(type);
        each_group_async(t_.target, [uid, why](RdmaGroup& rg) { rg.qp_event(uid, why); });
        break;
      }
      case IBV_EVENT_PORT_ERR:
      case IBV_EVENT_SRQ_ERR:  // rdma.srq: which group's is not ours to know here
      case IBV_EVENT_DEVICE_FATAL: {
        const int port = type == IBV_EVENT_PORT_ERR ? ev.element.port_num : 0;
        v.ack_async_event(&ev);
        fprintf(stderr, "nvmf-target: rdma %s: %s%s; closing its connections\n", ctx_->device->name,
                v.event_type_str(type), port ? (" on port " + std::to_string(port)).c_str() : "");
        ibv_context* ctx = ctx_;
        const char* why = type == IBV_EVENT_PORT_ERR ? "RDMA port went down"
                          : type == IBV_EVENT_SRQ_ERR ? "shared receive queue failed"
                                                      : "RDMA device failed";
        each_group_async(t_.target, [ctx, port, why](RdmaGroup& rg) { rg.device_event(ctx, port, why); });
        break;
      }
      default:
        v.ack_async_event(&ev);
        break;
    }
  }
}

// ---------------------------------------------------------------------------
// RdmaTransport.

RdmaTransport::RdmaTransport(Target& target, const TransportOptions& o)
    : Transport(&kRdmaTransportOps, target, o),
      buffer_cap((std::max<uint32_t>(o.max_data_transfer, 4096) + 4095) / 4096 * 4096) {}

RdmaTransport::~RdmaTransport() {
  listeners.clear();
  async_handlers.clear();
  listen_handler.reset();
  if (listen_channel) verbs().destroy_event_channel(listen_channel);
  if (devices) verbs().free_devices(devices);
}

namespace {

// Runs fn(reactor) on reactor 0, where listeners live; fn(nullptr) on this
// thread once reactor 0 runs no more (nothing else can touch them then).
template <class Fn>
void on_acceptor(RdmaTransport& t, Fn&& fn) {
  std::shared_ptr<PollGroup> g0 = t.target.group(0);
  if (!g0) {
    fn(static_cast<Reactor*>(nullptr));
    return;
  }
  Reactor& r = g0->reactor();
  if (r.on_thread()) {
    fn(&r);
    return;
  }
  if (!r.call([&] { fn(&r); })) fn(static_cast<Reactor*>(nullptr));
}

// The listen channel and the devices' async event fds join reactor 0's
// epoll set with the first listener.
int start_acceptor(RdmaTransport& t, Reactor& r, std::string* err) {
  if (t.acceptor_started) return 0;
  t.listen_handler = std::make_unique<CmChannelHandler>(t, r);
  int rc = set_nonblock(t.listen_channel->fd);
  if (rc == 0) rc = r.add_fd(t.listen_channel->fd, EPOLLIN, t.listen_handler.get());
  if (rc < 0) {
    set_err(err, "RDMA CM event channel: " + errno_str(-rc));
    t.listen_handler.reset();
    return rc;
  }
  for (int i = 0; t.devices && t.devices[i]; i++) {
    ibv_context* ctx = t.devices[i];
    auto h = std::make_unique<AsyncEventHandler>(t, ctx);
    // Best effort: a device whose events we cannot watch still works; its
    // failures then show up as completion errors. librdmacm shares one
    // context per device in the process, so a second target (or our host
    // library) sees the same fd: each event reaches one reader, which
    // ignores QPs it does not know.
    if (set_nonblock(ctx->async_fd) == 0 && r.add_fd(ctx->async_fd, EPOLLIN, h.get()) == 0) {
      t.async_handlers.push_back(std::move(h));
    }
  }
  t.acceptor_started = true;
  return 0;
}

void stop_acceptor(RdmaTransport& t, Reactor* r) {
  if (!t.acceptor_started) return;
  if (r) {
    for (auto& h : t.async_handlers) r->del_fd(h->ctx()->async_fd);
    if (t.listen_channel) r->del_fd(t.listen_channel->fd);
  }
  t.async_handlers.clear();
  t.listen_handler.reset();
  t.acceptor_started = false;
}

int parse_addr(const ListenAddress& a, sockaddr_storage* ss, std::string* err) {
  std::string host = a.address;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = a.ipv6 ? AF_INET6 : AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(a.port);
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    set_err(err, "listener " + a.str() + ": not a valid " + (a.ipv6 ? "IPv6" : "IPv4") + " address");
    return -EINVAL;
  }
  std::memcpy(ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

int open_listener(RdmaTransport& t, Reactor& r, const ListenAddress& a, std::string* err) {
  const Verbs& v = verbs();
  const std::string key = a.str();
  const std::string name = "listener " + key;
  if (t.listeners.count(key)) {
    set_err(err, name + ": already listening");
    return -EADDRINUSE;
  }
  sockaddr_storage ss{};
  if (int rc = parse_addr(a, &ss, err); rc < 0) return rc;
  if (int rc = start_acceptor(t, r, err); rc < 0) return rc;
  rdma_cm_id* id = nullptr;
  if (v.create_id(t.listen_channel, &id, nullptr, RDMA_PS_TCP) != 0) {
    int e = errno;
    set_err(err, name + ": rdma_create_id: " + errno_str(e));
    return -e;
  }
  auto l = std::make_unique<RdmaListener>(name, id);
  if (v.bind_addr(id, reinterpret_cast<sockaddr*>(&ss)) != 0) {
    int e = errno;
    if (e == ENODEV || e == EADDRNOTAVAIL || e == EINVAL) {
      set_err(err, name + ": no RDMA device has this address (" + errno_str(e) + ")");
      return -EADDRNOTAVAIL;
    }
    set_err(err, name + ": rdma_bind_addr: " + errno_str(e));
    return -e;
  }
  if (v.listen(id, 1024) != 0) {
    int e = errno;
    set_err(err, name + ": rdma_listen: " + errno_str(e));
    return -e;
  }
  t.listeners.emplace(key, std::move(l));
  return 0;
}

// ---------------------------------------------------------------------------
// The ops table.

int rdma_create(Target& target, const TransportOptions& opts, std::unique_ptr<Transport>* out,
                std::string* err) {
  std::string why;
  const Verbs* v = nullptr;
  if (const int rc = verbs_usable(&v, &why); rc < 0) {
    set_err(err, why);
    return rc;
  }
  if (opts.max_queue_depth < 2 || opts.max_admin_queue_depth < 2) {
    set_err(err, "rdma transport: queue depths must be at least 2");
    return -EINVAL;
  }
  if (opts.max_data_transfer == 0 || opts.max_data_transfer > (1u << 24) - 1) {
    set_err(err, "rdma transport: max_data_transfer must be between 1 and 16 MiB - 1 (keyed SGL length)");
    return -EINVAL;
  }
  auto t = std::make_unique<RdmaTransport>(target, opts);
  t->listen_channel = v->create_event_channel();
  if (!t->listen_channel) {
    int e = errno;
    set_err(err, "cannot open the RDMA connection manager (/dev/infiniband/rdma_cm): " + errno_str(e) +
                     "; is the rdma_ucm module loaded?");
    return -(e ? e : ENODEV);
  }
  int ndev = 0;
  t->devices = v->get_devices(&ndev);
  *out = std::move(t);
  return 0;
}

int rdma_listen(Transport& t, const ListenAddress& addr, std::string* err) {
  auto& rt = static_cast<RdmaTransport&>(t);
  int rc = 0;
  on_acceptor(rt, [&](Reactor* r) {
    if (!r) {
      set_err(err, "listener " + addr.str() + ": the target is shutting down");
      rc = -ESHUTDOWN;
      return;
    }
    rc = open_listener(rt, *r, addr, err);
  });
  return rc;
}

void rdma_stop_listen(Transport& t, const ListenAddress& addr) {
  auto& rt = static_cast<RdmaTransport&>(t);
  on_acceptor(rt, [&](Reactor*) { rt.listeners.erase(addr.str()); });
}

int rdma_poll_group_create(Transport& t, PollGroup& g, std::string* err) {
  if (find_group(g)) return 0;
  auto rg = std::make_unique<RdmaGroup>(static_cast<RdmaTransport&>(t), g);
  if (int rc = rg->init(err); rc < 0) return rc;
  g.tgroups[&kRdmaTransportOps] = std::move(rg);
  return 0;
}

void rdma_poll_group_disconnect_all(Transport&, PollGroup& g, void (*done)(void*), void* arg) {
  g.closed = true;  // hand-offs still in flight are rejected
  RdmaGroup* rg = find_group(g);
  if (!rg || rg->empty()) {
    done(arg);
    return;
  }
  rg->disconnect_all(done, arg);
}

void rdma_poll_group_destroy(Transport&, PollGroup& g) {
  auto it = g.tgroups.find(&kRdmaTransportOps);
  if (it == g.tgroups.end()) return;
  g.tgroups.erase(it);  // ~RdmaGroup: leftover qpairs, devices, CM channel
}

void rdma_req_complete(Request* req) {
  auto* r = static_cast<RdmaRequest*>(req);
  r->rq->complete(r);
}

void rdma_qpair_disconnect(Qpair* q, const char* reason) { static_cast<RdmaQpair*>(q)->disconnect(reason); }

void rdma_destroy(Transport& t) {
  auto& rt = static_cast<RdmaTransport&>(t);
  on_acceptor(rt, [&](Reactor* r) {
    rt.listeners.clear();
    stop_acceptor(rt, r);
  });
}

}  // namespace
}  // namespace nvmf::rdma

namespace nvmf {

const TransportOps kRdmaTransportOps = {
    .name = "rdma",
    .trtype = kTrtypeRdma,
    .sgls = kSglsKeyed,  // keyed SGL data blocks: RDMA READ/WRITE
    .msdbd = rdma::kMaxSgl,  // a Last Segment list of keyed descriptors in the capsule
    .create = rdma::rdma_create,
    .listen = rdma::rdma_listen,
    .stop_listen = rdma::rdma_stop_listen,
    .poll_group_create = rdma::rdma_poll_group_create,
    .poll_group_disconnect_all = rdma::rdma_poll_group_disconnect_all,
    .poll_group_destroy = rdma::rdma_poll_group_destroy,
    .req_complete = rdma::rdma_req_complete,
    .qpair_disconnect = rdma::rdma_qpair_disconnect,
    .destroy = rdma::rdma_destroy,
};

}  // namespace nvmf
