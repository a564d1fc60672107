// libibverbs and librdmacm, loaded at run time.
//
// The addon never links rdma-core: machines without it (or without an RDMA
// device) load the package and serve NVMe/TCP as usual, and only an RDMA
// listen or connect fails, saying what is missing. Every exported rdma-core
// function we call goes through this table, filled once per process by
// dlopen("libibverbs.so.1") / dlopen("librdmacm.so.1"). The data-path verbs
// that verbs.h defines inline (ibv_post_send, ibv_post_recv, ibv_poll_cq,
// ibv_req_notify_cq, ibv_post_srq_recv) call through the device context's ops and need no
// symbol, so they are used directly.
//
// Several verbs.h names are macros (ibv_reg_mr, ibv_query_port,
// ibv_get_device_list) wrapping inline helpers that call exported symbols;
// calling them would make the addon reference libibverbs. Use the table's
// members instead: `verbs().reg_mr(...)`.
//
// The libraries stay loaded for the life of the process: libibverbs keeps
// global device state that must not be unmapped.
#pragma once

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include <string>

namespace nvmf::rdma {

struct Verbs {
  // libibverbs
  ibv_device** (*get_device_list)(int* num);
  void (*free_device_list)(ibv_device** list);
  const char* (*get_device_name)(ibv_device* dev);
  int (*query_device)(ibv_context* ctx, ibv_device_attr* attr);
  ibv_pd* (*alloc_pd)(ibv_context* ctx);
  int (*dealloc_pd)(ibv_pd* pd);
  ibv_mr* (*reg_mr)(ibv_pd* pd, void* addr, size_t len, int access);
  int (*dereg_mr)(ibv_mr* mr);
  ibv_comp_channel* (*create_comp_channel)(ibv_context* ctx);
  int (*destroy_comp_channel)(ibv_comp_channel* ch);
  ibv_cq* (*create_cq)(ibv_context* ctx, int cqe, void* cq_context, ibv_comp_channel* ch, int vector);
  int (*resize_cq)(ibv_cq* cq, int cqe);
  int (*destroy_cq)(ibv_cq* cq);
  ibv_srq* (*create_srq)(ibv_pd* pd, ibv_srq_init_attr* attr);
  int (*destroy_srq)(ibv_srq* srq);
  int (*get_cq_event)(ibv_comp_channel* ch, ibv_cq** cq, void** cq_context);
  void (*ack_cq_events)(ibv_cq* cq, unsigned int n);
  int (*get_async_event)(ibv_context* ctx, ibv_async_event* ev);
  void (*ack_async_event)(ibv_async_event* ev);
  const char* (*wc_status_str)(ibv_wc_status s);
  const char* (*event_type_str)(ibv_event_type t);

  // librdmacm
  rdma_event_channel* (*create_event_channel)();
  void (*destroy_event_channel)(rdma_event_channel* ch);
  int (*create_id)(rdma_event_channel* ch, rdma_cm_id** id, void* context, rdma_port_space ps);
  int (*destroy_id)(rdma_cm_id* id);
  int (*bind_addr)(rdma_cm_id* id, sockaddr* addr);
  int (*listen)(rdma_cm_id* id, int backlog);
  int (*resolve_addr)(rdma_cm_id* id, sockaddr* src, sockaddr* dst, int timeout_ms);
  int (*resolve_route)(rdma_cm_id* id, int timeout_ms);
  int (*create_qp)(rdma_cm_id* id, ibv_pd* pd, ibv_qp_init_attr* attr);
  void (*destroy_qp)(rdma_cm_id* id);
  int (*accept)(rdma_cm_id* id, rdma_conn_param* param);
  int (*reject)(rdma_cm_id* id, const void* priv, uint8_t len);
  int (*connect)(rdma_cm_id* id, rdma_conn_param* param);
  int (*disconnect)(rdma_cm_id* id);
  int (*get_cm_event)(rdma_event_channel* ch, rdma_cm_event** ev);
  int (*ack_cm_event)(rdma_cm_event* ev);
  int (*migrate_id)(rdma_cm_id* id, rdma_event_channel* ch);
  ibv_context** (*get_devices)(int* num);
  void (*free_devices)(ibv_context** list);
  const char* (*event_str)(rdma_cm_event_type e);
  int (*set_option)(rdma_cm_id* id, int level, int optname, void* optval, size_t optlen);
};

// Local ACK timeout of our QPs (4.096 us * 2^n): the CM's default for RoCE
// is about half a second, so one packet lost by a soft-RoCE device under
// load stalls its queue that long. ~134 ms still tolerates a slow peer.
inline constexpr uint8_t kAckTimeout = 15;

// The table, loading the libraries on first use (thread-safe). nullptr when
// a library or one of its symbols is missing; *why then says which (the same
// text on every call). The sonames can be overridden for tests with
// NVMF_RDMA_LIBIBVERBS / NVMF_RDMA_LIBRDMACM.
const Verbs* verbs_load(std::string* why);

// The loaded table; only after verbs_load() succeeded.
const Verbs& verbs();

// Names of the RDMA devices present (empty when none, or when the libraries
// are missing). For error messages.
std::string device_names(const Verbs& v, int* count);

// Whether RDMA can be used here: 0 and *out = the loaded table when rdma-core
// is there and lists at least one device; -ENOENT (a library or symbol is
// missing) or -ENODEV (no device), *why saying which, for
// ERR_TRANSPORT_UNAVAILABLE.
int verbs_usable(const Verbs** out, std::string* why);

}  // namespace nvmf::rdma
