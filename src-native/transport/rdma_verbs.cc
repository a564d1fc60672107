#include "transport/rdma_verbs.h"

#include <dlfcn.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>

namespace nvmf::rdma {
namespace {

Verbs g_verbs{};
std::string g_why;
bool g_ok = false;
std::once_flag g_once;

const char* soname(const char* env, const char* dflt) {
  const char* v = std::getenv(env);
  return v && *v ? v : dflt;
}

// libibverbs keeps its 1.0 ABI symbols next to the current ones; ask for the
// current version explicitly instead of relying on dlsym's default pick.
void* sym(void* lib, const char* name, const char* version, std::string* missing) {
  void* p = version ? dlvsym(lib, name, version) : nullptr;
  if (!p) p = dlsym(lib, name);
  if (!p && missing->empty()) *missing = name;
  return p;
}

template <class F>
void bind(F*& slot, void* lib, const char* name, const char* version, std::string* missing) {
  slot = reinterpret_cast<F*>(sym(lib, name, version, missing));
}

void load() {
  const char* ibv_name = soname("NVMF_RDMA_LIBIBVERBS", "libibverbs.so.1");
  const char* cm_name = soname("NVMF_RDMA_LIBRDMACM", "librdmacm.so.1");
  // RTLD_LOCAL: the symbols stay out of the global namespace, so nothing
  // else in the process (or a second copy of rdma-core) binds to them by
  // accident. Never dlclose()d: libibverbs keeps global device state.
  void* ibv = dlopen(ibv_name, RTLD_NOW | RTLD_LOCAL);
  if (!ibv) {
    const char* e = dlerror();
    g_why = std::string("cannot load ") + ibv_name + " (" + (e ? e : "?") +
            "); install rdma-core's libibverbs1 (and an RDMA provider, ibverbs-providers)";
    return;
  }
  void* cm = dlopen(cm_name, RTLD_NOW | RTLD_LOCAL);
  if (!cm) {
    const char* e = dlerror();
    g_why = std::string("cannot load ") + cm_name + " (" + (e ? e : "?") + "); install rdma-core's librdmacm1";
    return;
  }
  std::string missing;
  Verbs& v = g_verbs;
  const char* V11 = "IBVERBS_1.1";
  bind(v.get_device_list, ibv, "ibv_get_device_list", V11, &missing);
  bind(v.free_device_list, ibv, "ibv_free_device_list", V11, &missing);
  bind(v.get_device_name, ibv, "ibv_get_device_name", V11, &missing);
  bind(v.query_device, ibv, "ibv_query_device", V11, &missing);
  bind(v.alloc_pd, ibv, "ibv_alloc_pd", V11, &missing);
  bind(v.dealloc_pd, ibv, "ibv_dealloc_pd", V11, &missing);
  bind(v.reg_mr, ibv, "ibv_reg_mr", V11, &missing);
  bind(v.dereg_mr, ibv, "ibv_dereg_mr", V11, &missing);
  bind(v.create_comp_channel, ibv, "ibv_create_comp_channel", V11, &missing);
  bind(v.destroy_comp_channel, ibv, "ibv_destroy_comp_channel", V11, &missing);
  bind(v.create_cq, ibv, "ibv_create_cq", V11, &missing);
  bind(v.resize_cq, ibv, "ibv_resize_cq", V11, &missing);
  bind(v.destroy_cq, ibv, "ibv_destroy_cq", V11, &missing);
  bind(v.create_srq, ibv, "ibv_create_srq", V11, &missing);
  bind(v.destroy_srq, ibv, "ibv_destroy_srq", V11, &missing);
  bind(v.get_cq_event, ibv, "ibv_get_cq_event", V11, &missing);
  bind(v.ack_cq_events, ibv, "ibv_ack_cq_events", V11, &missing);
  bind(v.get_async_event, ibv, "ibv_get_async_event", V11, &missing);
  bind(v.ack_async_event, ibv, "ibv_ack_async_event", V11, &missing);
  bind(v.wc_status_str, ibv, "ibv_wc_status_str", nullptr, &missing);
  bind(v.event_type_str, ibv, "ibv_event_type_str", nullptr, &missing);
  if (!missing.empty()) {
    g_why = std::string(ibv_name) + " lacks " + missing + " (rdma-core too old?)";
    return;
  }
  bind(v.create_event_channel, cm, "rdma_create_event_channel", nullptr, &missing);
  bind(v.destroy_event_channel, cm, "rdma_destroy_event_channel", nullptr, &missing);
  bind(v.create_id, cm, "rdma_create_id", nullptr, &missing);
  bind(v.destroy_id, cm, "rdma_destroy_id", nullptr, &missing);
  bind(v.bind_addr, cm, "rdma_bind_addr", nullptr, &missing);
  bind(v.listen, cm, "rdma_listen", nullptr, &missing);
  bind(v.resolve_addr, cm, "rdma_resolve_addr", nullptr, &missing);
  bind(v.resolve_route, cm, "rdma_resolve_route", nullptr, &missing);
  bind(v.create_qp, cm, "rdma_create_qp", nullptr, &missing);
  bind(v.destroy_qp, cm, "rdma_destroy_qp", nullptr, &missing);
  bind(v.accept, cm, "rdma_accept", nullptr, &missing);
  bind(v.reject, cm, "rdma_reject", nullptr, &missing);
  bind(v.connect, cm, "rdma_connect", nullptr, &missing);
  bind(v.disconnect, cm, "rdma_disconnect", nullptr, &missing);
  bind(v.get_cm_event, cm, "rdma_get_cm_event", nullptr, &missing);
  bind(v.ack_cm_event, cm, "rdma_ack_cm_event", nullptr, &missing);
  bind(v.migrate_id, cm, "rdma_migrate_id", nullptr, &missing);
  bind(v.get_devices, cm, "rdma_get_devices", nullptr, &missing);
  bind(v.free_devices, cm, "rdma_free_devices", nullptr, &missing);
  bind(v.event_str, cm, "rdma_event_str", nullptr, &missing);
  bind(v.set_option, cm, "rdma_set_option", nullptr, &missing);
  if (!missing.empty()) {
    g_why = std::string(cm_name) + " lacks " + missing + " (rdma-core too old?)";
    return;
  }
  g_ok = true;
}

}  // namespace

const Verbs* verbs_load(std::string* why) {
  std::call_once(g_once, load);
  if (!g_ok) {
    if (why) *why = g_why;
    return nullptr;
  }
  return &g_verbs;
}

const Verbs& verbs() { return g_verbs; }

std::string device_names(const Verbs& v, int* count) {
  int n = 0;
  ibv_device** list = v.get_device_list(&n);
  std::string names;
  if (list) {
    for (int i = 0; i < n; i++) {
      if (!names.empty()) names += ", ";
      names += v.get_device_name(list[i]);
    }
    v.free_device_list(list);
  } else {
    n = 0;
  }
  if (count) *count = n;
  return names;
}

int verbs_usable(const Verbs** out, std::string* why) {
  const Verbs* v = verbs_load(why);
  if (!v) return -ENOENT;
  int n = 0;
  device_names(*v, &n);
  if (n == 0) {
    if (why) {
      *why = "no RDMA device found (ibv_get_device_list lists none); load a driver, e.g. soft-RoCE: "
             "`rdma link add rxe0 type rxe netdev <interface>`";
    }
    return -ENODEV;
  }
  if (out) *out = v;
  return 0;
}

}  // namespace nvmf::rdma
