// Argument readers for the N-API edge. The TypeScript layer validates and
// names fields for users; these re-check types so a direct native call can
// never crash, and throw ERR_INVALID_ARGUMENT naming the field.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "addon/js_bridge.h"

namespace nvmf {

inline bool arg_fail(Napi::Env env, const std::string& field, const char* what) {
  make_error(env, "ERR_INVALID_ARGUMENT", field + " " + what).ThrowAsJavaScriptException();
  return false;
}

inline bool get_str(Napi::Object o, const char* key, std::string* out, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !required) return true;
  if (!v.IsString()) return arg_fail(o.Env(), key, "must be a string");
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

inline bool get_uint(Napi::Object o, const char* key, uint64_t max, uint64_t* out, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !required) return true;
  if (!v.IsNumber()) return arg_fail(o.Env(), key, "must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > double(max) || d != double(uint64_t(d))) {
    return arg_fail(o.Env(), key, ("must be an integer from 0 to " + std::to_string(max)).c_str());
  }
  *out = uint64_t(d);
  return true;
}

inline bool get_bool(Napi::Object o, const char* key, bool* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return true;
  if (!v.IsBoolean()) return arg_fail(o.Env(), key, "must be a boolean");
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

// An optional Buffer of exactly n bytes.
inline bool get_bytes(Napi::Object o, const char* key, size_t n, uint8_t* out, bool* present) {
  Napi::Value v = o.Get(key);
  *present = false;
  if (v.IsUndefined()) return true;
  if (!v.IsBuffer() || v.As<Napi::Buffer<uint8_t>>().Length() != n) {
    return arg_fail(o.Env(), key, ("must be a Buffer of " + std::to_string(n) + " bytes").c_str());
  }
  memcpy(out, v.As<Napi::Buffer<uint8_t>>().Data(), n);
  *present = true;
  return true;
}

}  // namespace nvmf
