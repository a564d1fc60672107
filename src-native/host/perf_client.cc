// PerfClient over NVMe/TCP or NVMe/RDMA: one HostController with
// `connections` I/O queues on a private SyncLoop. Busy polling drives the queues directly
// (HostQueue::poll(0)) and services the loop's timers (keep alive, command
// timeouts) every few dozen passes; wait() sleeps in the loop's epoll set.
#include "host/perf_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "auth/dhchap_key.h"
#include "host/controller.h"
#include "host/identify_decode.h"
#include "host/sync_loop.h"
#include "transport/rdma_verbs.h"

namespace nvmf::host {

std::unique_ptr<PerfClient> make_echo_client(const PerfTargetOptions& o, PerfDoneFn done,
                                             void* owner, std::string* err);

namespace {
constexpr const char* kErrConnection = "ERR_CONNECTION";
constexpr const char* kErrInvalid = "ERR_INVALID_ARGUMENT";
constexpr const char* kErrKey = "ERR_INVALID_KEY";
constexpr const char* kErrTransport = "ERR_TRANSPORT_UNAVAILABLE";
}  // namespace

bool resolve_address(const std::string& address, uint16_t port, void* ss, unsigned* len,
                     std::string* err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string svc = std::to_string(port);
  int rc = getaddrinfo(address.c_str(), svc.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    *err = "cannot resolve address " + address + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = unsigned(res->ai_addrlen);
  freeaddrinfo(res);
  return true;
}

namespace {

std::string endpoint(const PerfTargetOptions& o) {
  bool v6 = o.address.find(':') != std::string::npos;
  return (v6 ? "[" + o.address + "]" : o.address) + ":" + std::to_string(o.port);
}

class NvmeClient final : public PerfClient {
 public:
  NvmeClient(PerfDoneFn done, void* owner) : PerfClient(done, owner) {}
  // A still-live controller is closed abruptly: outstanding I/O completes
  // (with an error) through the callback, so the owner must still exist.
  ~NvmeClient() override { ctrl_.reset(); }

  const char* code = kErrConnection;  // what a failed start() failed with

  bool start(const PerfTargetOptions& o, std::string* err) {
    if (o.subnqn.empty()) {
      *err = "the subsystem NQN is required";
      code = kErrInvalid;
      return false;
    }
    HostControllerOptions ho;
    if (o.transport == "rdma") {
      if (o.hdgst || o.ddgst) {
        *err = std::string(o.hdgst ? "hdgst" : "ddgst") + " is NVMe/TCP only";
        code = kErrInvalid;
        return false;
      }
      // rdma-core is loaded on first use; say what is missing up front.
      std::string why;
      if (rdma::verbs_usable(nullptr, &why) < 0) {
        *err = "transport 'rdma': " + why;
        code = kErrTransport;
        return false;
      }
      ho.transport = HostTransport::Rdma;
    }
    unsigned alen = 0;
    if (!resolve_address(o.address, o.port, &ho.addr, &alen, err)) return false;
    ho.addrlen = socklen_t(alen);
    ho.target = endpoint(o);
    ho.subnqn = o.subnqn;
    std::random_device rd;
    for (int i = 0; i < 16; i += 4) {
      uint32_t v = rd();
      std::memcpy(ho.hostid + i, &v, 4);
    }
    ho.hostnqn = o.hostnqn.empty() ? "nqn.2014-08.org.nvmexpress:uuid:" + uuid(ho.hostid) : o.hostnqn;
    ho.io_queues = o.connections;
    // One CID more than the load keeps outstanding, so a full load never
    // sees -EAGAIN from the queue itself.
    ho.queue_depth = uint16_t(o.queue_depth + 1);
    ho.kato_ms = 10000;
    ho.hdgst = o.hdgst;
    ho.ddgst = o.ddgst;
    ho.max_incapsule = o.max_incapsule;
    ho.connect_timeout_ms = o.connect_timeout_ms;
    if (!parse_secret("dhchap_secret", o.dhchap_secret, &ho.dhchap_key, err) ||
        !parse_secret("dhchap_ctrl_secret", o.dhchap_ctrl_secret, &ho.dhchap_ctrl_key, err)) {
      code = kErrKey;
      return false;
    }
    if (ho.dhchap_ctrl_key && !ho.dhchap_key) {
      *err = "dhchap_ctrl_secret needs dhchap_secret too (bidirectional authentication)";
      code = kErrInvalid;
      return false;
    }
    nsid_ = o.nsid;

    int rc = loop_.init();
    if (rc < 0) {
      *err = std::string("epoll: ") + strerror(-rc);
      return false;
    }
    ctrl_ = std::make_unique<HostController>(loop_, ho);
    bool done = false;
    HostError e;
    ctrl_->connect([&](const HostError& x) {
      e = x;
      done = true;
    });
    if (!loop_.run_until([&] { return done; }, int64_t(o.connect_timeout_ms) + 2000)) {
      *err = ho.target + ": connect did not finish";
      return false;
    }
    if (!e.ok()) {
      *err = e.message;
      if (e.code) code = e.code;
      return false;
    }
    connections_ = ctrl_->io_queue_count();
    if (connections_ == 0) {
      *err = ho.target + ": the controller granted no I/O queue";
      return false;
    }
    queue_depth_ = uint16_t(ctrl_->io_queue_depth() - 1);
    max_transfer_ = uint32_t(ctrl_->max_transfer());
    for (uint16_t q = 1; q <= connections_; q++) queues_.push_back(ctrl_->queue(q));
    ctrl_->set_on_failed([this](const HostError& x) { error_ = x.message; });
    return identify(err);
  }

  int submit(PerfIo* io) override {
    if (io->conn >= connections_) return -EINVAL;
    HostCmd c;
    switch (io->op) {
      case PerfOp::Read:
      case PerfOp::Write: {
        if (io->len == 0 || io->len % block_size_ || io->offset % block_size_) return -EINVAL;
        bool rd = io->op == PerfOp::Read;
        c.sqe = make_rw(rd ? IoOpc::Read : IoOpc::Write, nsid_, io->offset / block_size_,
                        io->len / block_size_);
        c.data = io->buf;
        c.len = io->len;
        c.dir = rd ? XferDir::C2H : XferDir::H2C;
        break;
      }
      case PerfOp::Flush:
        c.sqe = make_flush(nsid_);
        break;
    }
    c.fn = &on_cmd_done;
    c.ctx = io;
    io->client = this;
    return ctrl_->submit(uint16_t(io->conn + 1), c);
  }

  int poll() override {
    int work = 0;
    for (HostQueue* q : queues_) work += q->poll(0);
    // Timers and the admin queue (keep alive) are serviced through the
    // loop; a non-blocking look every 64 passes is plenty.
    if (++passes_ >= 64) {
      passes_ = 0;
      work += loop_.run_once(0);
    }
    return work;
  }

  int wait(int timeout_ms) override { return loop_.run_once(timeout_ms); }

  void hold_sends(bool on) override {
    // (RDMA: nothing to hold, a SEND leaves when posted.)
    for (HostQueue* q : queues_) q->hold_sends(on);
  }

  void close() override {
    if (!ctrl_) return;
    bool done = false;
    ctrl_->close(true, [&] { done = true; });
    loop_.run_until([&] { return done; }, 3000);
  }

 private:
  static void on_cmd_done(void* ctx, const HostCompletion& c) {
    auto* io = static_cast<PerfIo*>(ctx);
    io->err = c.err;
    io->nvme_status = c.err ? 0 : status_of(c.cqe);
    if (c.err == 0 && io->nvme_status != 0) io->err = -EIO;
    static_cast<NvmeClient*>(io->client)->deliver(io);
  }

  // A DHHC-1 secret into a key; an empty text leaves *out empty.
  static bool parse_secret(const char* field, const std::string& text,
                           std::shared_ptr<const auth::DhchapKey>* out, std::string* err) {
    if (text.empty()) return true;
    auto k = std::make_shared<auth::DhchapKey>();
    auth::KeyError e = auth::parse_key(text, *k);
    if (e != auth::KeyError::Ok) {
      *err = std::string(field) + ": " + auth::key_error_message(e);
      return false;  // the caller reports ERR_INVALID_KEY
    }
    *out = std::move(k);
    return true;
  }

  static std::string uuid(const uint8_t b[16]) {
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 16; i++) {
      if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
      s += hex[b[i] >> 4];
      s += hex[b[i] & 15];
    }
    return s;
  }

  bool identify(std::string* err) {
    std::vector<uint8_t> buf(sizeof(IdentifyNamespace));
    HostCmd c;
    c.sqe = make_identify(Cns::Namespace, nsid_);
    c.data = buf.data();
    c.len = uint32_t(buf.size());
    c.dir = XferDir::C2H;
    bool done = false;
    HostError e;
    ctrl_->exec(0, c, [&, sqe = c.sqe](const HostCompletion& hc) {
      e = HostController::error_of(0, sqe, hc);
      done = true;
    });
    if (!loop_.run_until([&] { return done; }, 10000)) {
      *err = "Identify Namespace did not complete";
      return false;
    }
    if (!e.ok()) {
      *err = e.message;
      return false;
    }
    IdentifyNamespace ns;
    std::memcpy(&ns, buf.data(), sizeof ns);
    NamespaceInfo ni = decode_namespace(ns, nullptr, 0);
    if (ni.nsze == 0 || ni.block_size == 0) {
      *err = "namespace " + std::to_string(nsid_) + " is not active on " + ctrl_->options().subnqn;
      return false;
    }
    block_size_ = ni.block_size;
    size_bytes_ = ni.nsze * ni.block_size;
    return true;
  }

  SyncLoop loop_;
  std::unique_ptr<HostController> ctrl_;
  std::vector<HostQueue*> queues_;
  uint32_t nsid_ = 1;
  unsigned passes_ = 0;
};

}  // namespace

void PerfClient::cork(bool on) {
  if (on == corked_) return;
  corked_ = on;
  hold_sends(on);
}

std::unique_ptr<PerfClient> PerfClient::connect(const PerfTargetOptions& o, PerfDoneFn done,
                                                void* owner, std::string* err, const char** code) {
  const char* dummy = nullptr;
  if (!code) code = &dummy;
  *code = kErrInvalid;
  if (o.connections == 0 || o.queue_depth == 0) {
    *err = "connections and queue depth must be at least 1";
    return nullptr;
  }
  if (o.transport != "tcp" && o.transport != "rdma" && o.transport != "echo") {
    *err = "transport must be tcp, rdma or echo (got " + o.transport + ")";
    return nullptr;
  }
  *code = kErrConnection;
  if (o.transport == "echo") return make_echo_client(o, done, owner, err);
  auto c = std::make_unique<NvmeClient>(done, owner);
  if (!c->start(o, err)) {
    *code = c->code;
    return nullptr;
  }
  return c;
}

}  // namespace nvmf::host
