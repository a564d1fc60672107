/* fio external ioengine on the nvmf-target host library:
 *
 *   ioengine=external:/path/to/nvmf-fio.so   (npm run build:fio builds it)
 *   transport=tcp traddr=127.0.0.1 trsvcid=4420 subnqn=nqn... ns=1
 *   filename=nvmf     (any name: the namespace is the "file")
 *
 * Compiled against the headers (and config-host.h) of the installed fio
 * version, which fio requires of external engines; bench/native/ builds it.
 * The engine connects once per job in init() (so fork and thread modes both
 * work) and learns the namespace size with a short probe connection in
 * setup(), which fio runs before starting the job. Completions are reaped by
 * busy polling by default (busy_poll=0 sleeps in epoll instead). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fio.h"
#include "optgroup.h"

#include "host/fio_api.h"

struct nvmf_options {
  void* pad; /* fio stores the thread_data pointer here */
  char* transport;
  char* traddr;
  unsigned int trsvcid;
  char* subnqn;
  char* hostnqn;
  unsigned int ns;
  unsigned int connections;
  unsigned int hdgst;
  unsigned int ddgst;
  char* dhchap_secret;
  char* dhchap_ctrl_secret;
  unsigned int busy_poll;
  unsigned int incapsule;
};

struct nvmf_data {
  struct nvmf_fio_conn* conn;
  uint32_t block_size;
};

static struct fio_option options[] = {
    {
        .name = "transport",
        .lname = "NVMe-oF transport",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct nvmf_options, transport),
        .def = "tcp",
        .help = "tcp (NVMe/TCP), or echo (the benchmark's bare TCP echo server)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "traddr",
        .lname = "target address",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct nvmf_options, traddr),
        .def = "127.0.0.1",
        .help = "target IPv4/IPv6 address or host name",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "trsvcid",
        .lname = "target port",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct nvmf_options, trsvcid),
        .def = "4420",
        .help = "target TCP port",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "subnqn",
        .lname = "subsystem NQN",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct nvmf_options, subnqn),
        .help = "NQN of the subsystem to connect to",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "hostnqn",
        .lname = "host NQN",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct nvmf_options, hostnqn),
        .help = "host NQN (default: a random nqn.2014-08.org.nvmexpress:uuid:...)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "ns",
        .lname = "namespace ID",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct nvmf_options, ns),
        .def = "1",
        .help = "namespace ID (NSID)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "connections",
        .lname = "connections per job",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct nvmf_options, connections),
        .def = "1",
        .help = "I/O queues (TCP connections) per job; iodepth is per connection",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "hdgst",
        .lname = "header digest",
        .type = FIO_OPT_BOOL,
        .off1 = offsetof(struct nvmf_options, hdgst),
        .def = "0",
        .help = "NVMe/TCP header digests (CRC32C)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "ddgst",
        .lname = "data digest",
        .type = FIO_OPT_BOOL,
        .off1 = offsetof(struct nvmf_options, ddgst),
        .def = "0",
        .help = "NVMe/TCP data digests (CRC32C)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "dhchap_secret",
        .lname = "DH-HMAC-CHAP host secret",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct nvmf_options, dhchap_secret),
        .help = "DHHC-1:... host key for in-band authentication",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "dhchap_ctrl_secret",
        .lname = "DH-HMAC-CHAP controller secret",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct nvmf_options, dhchap_ctrl_secret),
        .help = "DHHC-1:... controller key (bidirectional authentication)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "busy_poll",
        .lname = "busy poll",
        .type = FIO_OPT_BOOL,
        .off1 = offsetof(struct nvmf_options, busy_poll),
        .def = "1",
        .help = "spin while waiting for completions (0: sleep in epoll)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "incapsule",
        .lname = "in-capsule write data",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct nvmf_options, incapsule),
        .def = "8192",
        .maxval = 131072,
        .help = "largest write sent inside the command capsule (bytes; the target's IOCCSZ bounds it too)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = NULL,
    },
};

static void fill_params(struct thread_data* td, struct nvmf_fio_params* p, unsigned depth) {
  struct nvmf_options* o = td->eo;
  memset(p, 0, sizeof *p);
  p->transport = o->transport;
  p->address = o->traddr;
  p->port = o->trsvcid;
  p->subnqn = o->subnqn;
  p->hostnqn = o->hostnqn;
  p->nsid = o->ns;
  p->connections = o->connections ? o->connections : 1;
  p->queue_depth = depth;
  p->hdgst = (int)o->hdgst;
  p->ddgst = (int)o->ddgst;
  p->dhchap_secret = o->dhchap_secret;
  p->dhchap_ctrl_secret = o->dhchap_ctrl_secret;
  p->busy_poll = (int)o->busy_poll;
  p->max_incapsule = o->incapsule;
}

/* In the main fio process, before the job starts: a short connection to
 * learn the namespace size, which fio needs to place offsets. */
static int nvmf_setup(struct thread_data* td) {
  struct nvmf_fio_params p;
  struct fio_file* f;
  char err[512];
  uint64_t size = 0;
  unsigned int i;

  fill_params(td, &p, 1);
  struct nvmf_fio_conn* c = nvmf_fio_open(&p, err, sizeof err);
  if (!c) {
    log_err("nvmf: %s\n", err);
    return 1;
  }
  nvmf_fio_geometry(c, &size, NULL, NULL);
  nvmf_fio_close(c);

  if (!td->files_index) {
    add_file(td, td->o.filename ? td->o.filename : "nvmf", 0, 0);
    if (!td->o.nr_files) td->o.nr_files = 1;
    td->o.open_files++;
  }
  for_each_file(td, f, i) {
    f->real_file_size = size;
    fio_file_set_size_known(f);
  }
  return 0;
}

static int nvmf_init(struct thread_data* td) {
  struct nvmf_fio_params p;
  struct nvmf_data* d;
  char err[512];
  unsigned int conns;

  d = calloc(1, sizeof *d);
  if (!d) return 1;
  /* iodepth is per job; spread it over the job's connections. */
  conns = ((struct nvmf_options*)td->eo)->connections;
  if (!conns) conns = 1;
  fill_params(td, &p, (td->o.iodepth + conns - 1) / conns);
  d->conn = nvmf_fio_open(&p, err, sizeof err);
  if (!d->conn) {
    log_err("nvmf: %s\n", err);
    free(d);
    return 1;
  }
  nvmf_fio_geometry(d->conn, NULL, &d->block_size, NULL);
  td->io_ops_data = d;
  return 0;
}

static void nvmf_cleanup(struct thread_data* td) {
  struct nvmf_data* d = td->io_ops_data;
  if (!d) return;
  nvmf_fio_close(d->conn);
  free(d);
  td->io_ops_data = NULL;
}

static int nvmf_open_file(struct thread_data* td, struct fio_file* f) { return 0; }
static int nvmf_close_file(struct thread_data* td, struct fio_file* f) { return 0; }

static enum fio_q_status nvmf_queue(struct thread_data* td, struct io_u* io_u) {
  struct nvmf_data* d = td->io_ops_data;
  int op, rc;

  fio_ro_check(td, io_u);
  switch (io_u->ddir) {
    case DDIR_READ:
      op = NVMF_FIO_READ;
      break;
    case DDIR_WRITE:
      op = NVMF_FIO_WRITE;
      break;
    case DDIR_SYNC:
    case DDIR_DATASYNC:
      op = NVMF_FIO_FLUSH;
      break;
    default:
      io_u->error = EINVAL; /* trim: not offered by this engine */
      return FIO_Q_COMPLETED;
  }
  if (op != NVMF_FIO_FLUSH &&
      (io_u->offset % d->block_size || io_u->xfer_buflen % d->block_size)) {
    log_err("nvmf: I/O at %llu+%llu is not aligned to the %u-byte block size\n",
            io_u->offset, io_u->xfer_buflen, d->block_size);
    io_u->error = EINVAL;
    return FIO_Q_COMPLETED;
  }
  rc = nvmf_fio_submit(d->conn, op, io_u->offset, (uint32_t)io_u->xfer_buflen, io_u->xfer_buf,
                       io_u);
  if (rc == -EAGAIN) return FIO_Q_BUSY;
  if (rc < 0) {
    io_u->error = -rc;
    return FIO_Q_COMPLETED;
  }
  return FIO_Q_QUEUED;
}

static int nvmf_commit(struct thread_data* td) {
  struct nvmf_data* d = td->io_ops_data;
  nvmf_fio_commit(d->conn);
  return 0;
}

static int nvmf_getevents(struct thread_data* td, unsigned int min, unsigned int max,
                          const struct timespec* t) {
  struct nvmf_data* d = td->io_ops_data;
  int64_t timeout = t ? (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec : -1;
  int n = nvmf_fio_reap(d->conn, min, max, timeout);
  if (n < 0) log_err("nvmf: %s\n", nvmf_fio_error(d->conn));
  return n;
}

static struct io_u* nvmf_event(struct thread_data* td, int event) {
  struct nvmf_data* d = td->io_ops_data;
  int err = 0;
  struct io_u* io_u = nvmf_fio_event(d->conn, event, &err);
  io_u->error = err;
  return io_u;
}

/* Exported by name: fio looks up the symbol "ioengine" in the library. */
struct ioengine_ops ioengine = {
    .name = "nvmf",
    .version = FIO_IOOPS_VERSION,
    .flags = FIO_DISKLESSIO | FIO_NOEXTEND | FIO_NODISKUTIL,
    .setup = nvmf_setup,
    .init = nvmf_init,
    .queue = nvmf_queue,
    .commit = nvmf_commit,
    .getevents = nvmf_getevents,
    .event = nvmf_event,
    .cleanup = nvmf_cleanup,
    .open_file = nvmf_open_file,
    .close_file = nvmf_close_file,
    .option_struct_size = sizeof(struct nvmf_options),
    .options = options,
};
