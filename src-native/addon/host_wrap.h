// N-API wrapper of the NVMe-oF host library (host/host_session.h): argument
// checks, buffer pinning and promise plumbing, nothing else.
//
// Buffers: a JS Buffer handed to read/write/compare/raw commands is pinned
// by a reference held on the main thread until its promise settles; the
// reactor only ever sees the raw data pointer, and the command is complete
// (or the session joined) before the pin is dropped.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "addon/addon_data.h"
#include "host/host_session.h"

namespace nvmf {

// Main-thread view of one host connection. Lives in AddonData::hosts until
// closed, so the environment cleanup hook can close it.
struct HostHandle {
  std::shared_ptr<host::HostSession> session;  // null until connect()
  std::shared_ptr<JsBridge> bridge;
  // Promise id -> the Buffer its command reads or writes. Main thread only.
  std::unordered_map<uint64_t, Napi::Reference<Napi::Value>> pins;
  bool connecting = false;
  bool connected = false;
  bool closing = false;
  bool closed = false;
  std::vector<uint64_t> close_waiters;
  uint16_t io_queues = 0;
  uint64_t max_transfer = 0;
};

class HostWrap : public Napi::ObjectWrap<HostWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit HostWrap(const Napi::CallbackInfo& info);
  ~HostWrap() override;

 private:
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Identify(const Napi::CallbackInfo& info);
  Napi::Value IdentifyNamespace(const Napi::CallbackInfo& info);
  Napi::Value ActiveNamespaces(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Compare(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  Napi::Value WriteZeroes(const Napi::CallbackInfo& info);
  Napi::Value Deallocate(const Napi::CallbackInfo& info);
  Napi::Value GetLogPage(const Napi::CallbackInfo& info);
  Napi::Value Discover(const Napi::CallbackInfo& info);
  Napi::Value RawAdmin(const Napi::CallbackInfo& info);
  Napi::Value RawIo(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Reauthenticate(const Napi::CallbackInfo& info);

  // The live session, or nullptr after throwing ERR_CONNECTION/ERR_DESTROYED.
  std::shared_ptr<host::HostSession> live(Napi::Env env, const char* what);
  Napi::Value rw(const Napi::CallbackInfo& info, IoOpc opc, const char* what);
  Napi::Value raw(const Napi::CallbackInfo& info, uint16_t qid, size_t first_arg);

  std::shared_ptr<HostHandle> handle_;
};

}  // namespace nvmf
