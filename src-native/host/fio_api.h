/* The C interface between fio's external ioengine (fio_engine.c, compiled
 * against fio's own headers) and the host library (C++). fio's headers are
 * C, so the engine glue is C and everything else stays behind this API.
 * One nvmf_fio_conn per fio job (thread or process); every call comes from
 * that job's thread. */
#ifndef NVMF_HOST_FIO_API_H
#define NVMF_HOST_FIO_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct nvmf_fio_params {
  const char* transport; /* "tcp" or "echo" (loopback ceiling) */
  const char* address;
  unsigned port;
  const char* subnqn;
  const char* hostnqn; /* NULL/empty: a random uuid NQN */
  unsigned nsid;
  unsigned connections; /* NVMe I/O queues (TCP connections) for this job */
  unsigned queue_depth; /* per connection */
  int hdgst;
  int ddgst;
  const char* dhchap_secret;      /* DHHC-1:..., may be NULL */
  const char* dhchap_ctrl_secret; /* bidirectional authentication, may be NULL */
  int busy_poll;                  /* 1: spin while waiting for completions */
  unsigned max_incapsule;         /* largest write sent in the capsule (bounded by the target's IOCCSZ) */
};

enum nvmf_fio_op { NVMF_FIO_READ = 0, NVMF_FIO_WRITE = 1, NVMF_FIO_FLUSH = 2 };

struct nvmf_fio_conn;

/* NULL on failure, with a message in err. */
struct nvmf_fio_conn* nvmf_fio_open(const struct nvmf_fio_params* p, char* err, size_t errlen);
void nvmf_fio_geometry(const struct nvmf_fio_conn* c, uint64_t* size_bytes, uint32_t* block_size,
                       uint32_t* max_transfer);
/* 0 (queued), -EAGAIN (no room: reap first), -errno. `user` comes back from
 * nvmf_fio_event(). The I/O is sent by the next reap that waits. */
int nvmf_fio_submit(struct nvmf_fio_conn* c, int op, uint64_t offset, uint32_t len, void* buf,
                    void* user);
/* fio's commit: a no-op. Submitted I/O is held until fio waits for
 * completions (nvmf_fio_reap with min > 0) and then sent together. */
void nvmf_fio_commit(struct nvmf_fio_conn* c);
/* Waits until at least `min` completions are ready or timeout_ns passed
 * (< 0: no limit), and takes up to `max` of them for nvmf_fio_event().
 * Returns how many it took, or -errno when the connection failed. */
int nvmf_fio_reap(struct nvmf_fio_conn* c, unsigned min, unsigned max, int64_t timeout_ns);
/* The i-th completion taken by the last reap; *err = 0 or a positive errno. */
void* nvmf_fio_event(struct nvmf_fio_conn* c, int i, int* err);
const char* nvmf_fio_error(const struct nvmf_fio_conn* c);
/* Disconnects (outstanding I/O is abandoned) and frees. */
void nvmf_fio_close(struct nvmf_fio_conn* c);

#ifdef __cplusplus
}
#endif

#endif
