#include "addon/auth_wrap.h"

#include <cmath>
#include <vector>

#include "addon/js_bridge.h"
#include "auth/crypto.h"

namespace nvmf {

namespace {

using auth::DhchapKey;
using auth::DhGroupId;
using auth::HashId;
using auth::SecureBuffer;

bool throw_invalid(Napi::Env env, const std::string& msg) {
  make_error(env, "ERR_INVALID_ARGUMENT", msg).ThrowAsJavaScriptException();
  return false;
}

// The JS string's bytes in a buffer wiped when it goes out of scope.
struct SecretText {
  std::string s;
  ~SecretText() { auth::wipe_string(s); }
};

bool read_text(Napi::Value v, SecretText* out) {
  if (!v.IsString()) return false;
  out->s = v.As<Napi::String>().Utf8Value();
  return true;
}

// An integer Number in [lo, hi].
bool int_arg(Napi::Env env, Napi::Value v, const std::string& field, int64_t lo, int64_t hi,
             int64_t* out) {
  if (!v.IsNumber()) return throw_invalid(env, field + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(lo) && d <= double(hi)) || d != std::floor(d)) {
    return throw_invalid(env, field + " must be an integer from " + std::to_string(lo) + " to " +
                                  std::to_string(hi));
  }
  *out = int64_t(d);
  return true;
}

bool bytes_arg(Napi::Env env, Napi::Value v, const std::string& field, std::span<const uint8_t>* out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return throw_invalid(env, field + " must be a Buffer");
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  *out = {a.Data(), a.ByteLength()};
  return true;
}

bool hash_arg(Napi::Env env, Napi::Value v, const std::string& field, bool allow_none, HashId* out) {
  int64_t id;
  if (!int_arg(env, v, field, allow_none ? 0 : 1, 3, &id)) return false;
  *out = HashId(id);
  return true;
}

Napi::Buffer<uint8_t> buffer_of(Napi::Env env, std::span<const uint8_t> b) {
  return Napi::Buffer<uint8_t>::Copy(env, b.data(), b.size());
}

// generateDhchapKey(hmac 0..3, length 0|32|48|64, hostNqn?) -> "DHHC-1:..."
// Like `nvme gen-dhchap-key`: with a transform hash and an NQN the random
// secret is stored already transformed with that NQN; the result is as
// random either way.
Napi::Value GenerateKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HashId hash;
  int64_t length = 0;
  if (!hash_arg(env, info[0], "hmac", true, &hash)) return env.Undefined();
  if (!info[1].IsUndefined() && !int_arg(env, info[1], "length", 0, 64, &length)) return env.Undefined();
  if (length == 0) length = hash == HashId::None ? 32 : int64_t(auth::hash_length(hash));
  if (!auth::key_length_valid(size_t(length))) {
    throw_invalid(env, "length must be 32, 48 or 64");
    return env.Undefined();
  }
  if (hash != HashId::None && size_t(length) != auth::hash_length(hash)) {
    throw_invalid(env, std::string("length must be ") + std::to_string(auth::hash_length(hash)) +
                           " for hmac " + std::to_string(int(hash)) + " (" +
                           auth::hash_name(hash) + "), as nvme gen-dhchap-key requires");
    return env.Undefined();
  }
  std::string nqn;
  if (!info[2].IsUndefined() && !info[2].IsNull()) {
    if (!info[2].IsString()) {
      throw_invalid(env, "hostNqn must be a string");
      return env.Undefined();
    }
    nqn = info[2].As<Napi::String>().Utf8Value();
  }
  SecureBuffer secret;
  int rc = secret.allocate(size_t(length));
  if (rc == 0) rc = auth::random_bytes(secret.mutable_span());
  if (rc == 0 && hash != HashId::None && !nqn.empty()) {
    SecureBuffer t;
    rc = auth::transform_key(hash, secret.span(), nqn, t);
    if (rc == 0) secret = std::move(t);
  }
  SecretText text;
  if (rc == 0) rc = auth::format_key(hash, secret.span(), text.s);
  if (rc < 0) {
    make_error(env, "ERR_INTERNAL", "cannot generate a DH-HMAC-CHAP key", -rc).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::String::New(env, text.s);
}

// parseDhchapKey(text) -> { hmac, length }; throws ERR_INVALID_KEY.
Napi::Value ParseKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<const DhchapKey> k;
  if (info[0].IsUndefined() || info[0].IsNull()) {
    make_error(env, "ERR_INVALID_KEY", "key must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!key_arg(env, info[0], "key", &k)) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("hmac", Napi::Number::New(env, double(uint8_t(k->hash))));
  o.Set("length", Napi::Number::New(env, double(k->secret.size())));
  return o;
}

// ---- test hooks: the formulas of auth/crypto.h, for known-answer tests ----

bool response_input(Napi::Env env, Napi::Value v, auth::ResponseInput* in, std::string* host,
                    std::string* sub) {
  if (!v.IsObject()) return throw_invalid(env, "response input must be an object");
  Napi::Object o = v.As<Napi::Object>();
  int64_t n;
  if (!hash_arg(env, o.Get("hash"), "hash", false, &in->hash)) return false;
  if (!bytes_arg(env, o.Get("key"), "key", &in->key)) return false;
  if (!bytes_arg(env, o.Get("challenge"), "challenge", &in->challenge)) return false;
  if (!o.Get("sessionKey").IsUndefined() &&
      !bytes_arg(env, o.Get("sessionKey"), "sessionKey", &in->session_key)) {
    return false;
  }
  if (!int_arg(env, o.Get("seqnum"), "seqnum", 0, 0xffffffffll, &n)) return false;
  in->seqnum = uint32_t(n);
  if (!int_arg(env, o.Get("tid"), "tid", 0, 0xffff, &n)) return false;
  in->transaction_id = uint16_t(n);
  if (!o.Get("scc").IsUndefined()) {
    if (!int_arg(env, o.Get("scc"), "scc", 0, 255, &n)) return false;
    in->sc_c = uint8_t(n);
  }
  if (!o.Get("hostnqn").IsString() || !o.Get("subnqn").IsString()) {
    return throw_invalid(env, "hostnqn and subnqn must be strings");
  }
  *host = o.Get("hostnqn").As<Napi::String>().Utf8Value();
  *sub = o.Get("subnqn").As<Napi::String>().Utf8Value();
  in->host_nqn = *host;
  in->subsys_nqn = *sub;
  return true;
}

Napi::Value TestResponse(const Napi::CallbackInfo& info, bool host) {
  Napi::Env env = info.Env();
  auth::ResponseInput in;
  std::string h, s;
  if (!response_input(env, info[0], &in, &h, &s)) return env.Undefined();
  uint8_t out[auth::kMaxDigestLength];
  const size_t hl = auth::hash_length(in.hash);
  int rc = host ? auth::host_response(in, {out, hl}) : auth::controller_response(in, {out, hl});
  if (rc < 0) {
    throw_invalid(env, "response computation failed (errno " + std::to_string(-rc) + ")");
    return env.Undefined();
  }
  return buffer_of(env, {out, hl});
}

Napi::Value TestHostResponse(const Napi::CallbackInfo& info) { return TestResponse(info, true); }
Napi::Value TestControllerResponse(const Napi::CallbackInfo& info) { return TestResponse(info, false); }

// transformKey(hash 0..3, secret, nqn) -> Buffer
Napi::Value TestTransformKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HashId hash;
  std::span<const uint8_t> secret;
  if (!hash_arg(env, info[0], "hash", true, &hash) || !bytes_arg(env, info[1], "secret", &secret)) {
    return env.Undefined();
  }
  if (!info[2].IsString()) {
    throw_invalid(env, "nqn must be a string");
    return env.Undefined();
  }
  std::string nqn = info[2].As<Napi::String>().Utf8Value();
  SecureBuffer out;
  if (auth::transform_key(hash, secret, nqn, out) < 0) {
    throw_invalid(env, "transform failed");
    return env.Undefined();
  }
  return buffer_of(env, out.span());
}

// augmentChallenge(hash 1..3, sessionKey, challenge) -> Buffer
Napi::Value TestAugment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HashId hash;
  std::span<const uint8_t> sk, c;
  if (!hash_arg(env, info[0], "hash", false, &hash) || !bytes_arg(env, info[1], "sessionKey", &sk) ||
      !bytes_arg(env, info[2], "challenge", &c)) {
    return env.Undefined();
  }
  uint8_t out[auth::kMaxDigestLength];
  const size_t hl = auth::hash_length(hash);
  if (auth::augment_challenge(hash, sk, c, {out, hl}) < 0) {
    throw_invalid(env, "augmentation failed");
    return env.Undefined();
  }
  return buffer_of(env, {out, hl});
}

// dhExchange(group 1..5, peerPublic) -> { publicValue, sharedSecret }: a
// fresh key pair of ours and the secret it shares with the peer's value.
Napi::Value TestDhExchange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t g;
  std::span<const uint8_t> peer;
  if (!int_arg(env, info[0], "group", 1, 5, &g) || !bytes_arg(env, info[1], "peerPublic", &peer)) {
    return env.Undefined();
  }
  auth::DhKeyPair kp;
  uint8_t pub[auth::kMaxDhValueLength];
  int rc = kp.generate(DhGroupId(g));
  if (rc == 0) rc = kp.public_value(pub);
  if (rc < 0) {
    throw_invalid(env, "key generation failed");
    return env.Undefined();
  }
  const size_t n = size_t(rc);
  SecureBuffer secret;
  rc = kp.shared_secret(peer, secret);
  if (rc < 0) {
    make_error(env, "ERR_INVALID_ARGUMENT", "peer value rejected", -rc).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("publicValue", buffer_of(env, {pub, n}));
  o.Set("sharedSecret", buffer_of(env, secret.span()));
  return o;
}

// keySecret(text) -> { hmac, secret }: the decoded secret of a key.
Napi::Value TestKeySecret(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<const DhchapKey> k;
  if (!key_arg(env, info[0], "key", &k)) return env.Undefined();
  if (!k) {
    throw_invalid(env, "key must be a string");
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("hmac", Napi::Number::New(env, double(uint8_t(k->hash))));
  o.Set("secret", buffer_of(env, k->secret.span()));
  return o;
}

}  // namespace

bool key_arg(Napi::Env env, Napi::Value v, const std::string& field,
             std::shared_ptr<const DhchapKey>* out) {
  out->reset();
  if (v.IsUndefined() || v.IsNull()) return true;
  SecretText text;
  if (!read_text(v, &text)) {
    make_error(env, "ERR_INVALID_KEY", field + " must be a DHHC-1 key string").ThrowAsJavaScriptException();
    return false;
  }
  auto k = std::make_shared<DhchapKey>();
  auth::KeyError e = auth::parse_key(text.s, *k);
  if (e != auth::KeyError::Ok) {
    make_error(env, "ERR_INVALID_KEY", field + " is not a valid DH-HMAC-CHAP key: " +
                                           auth::key_error_message(e))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = std::move(k);
  return true;
}

bool policy_arg(Napi::Env env, Napi::Value v, const std::string& field, auth::AuthPolicy* out) {
  if (v.IsUndefined()) return true;
  if (!v.IsObject() || v.IsArray()) return throw_invalid(env, field + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  auth::AuthPolicy p = *out;
  Napi::Value d = o.Get("digests");
  if (!d.IsUndefined()) {
    if (!d.IsArray()) return throw_invalid(env, field + ".digests must be an array");
    Napi::Array a = d.As<Napi::Array>();
    if (a.Length() == 0 || a.Length() > p.digests.size()) {
      return throw_invalid(env, field + ".digests must list 1 to 3 of sha256, sha384, sha512");
    }
    p.ndigests = 0;
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value x = a.Get(i);
      HashId h;
      if (!x.IsString() || auth::hash_from_name(x.As<Napi::String>().Utf8Value(), &h) < 0) {
        return throw_invalid(env, field + ".digests[" + std::to_string(i) +
                                      "] must be 'sha256', 'sha384' or 'sha512'");
      }
      for (uint8_t j = 0; j < p.ndigests; j++) {
        if (p.digests[j] == h) return throw_invalid(env, field + ".digests lists a hash twice");
      }
      p.digests[p.ndigests++] = h;
    }
  }
  Napi::Value g = o.Get("dhgroups");
  if (!g.IsUndefined()) {
    if (!g.IsArray()) return throw_invalid(env, field + ".dhgroups must be an array");
    Napi::Array a = g.As<Napi::Array>();
    if (a.Length() == 0 || a.Length() > p.dhgroups.size()) {
      return throw_invalid(env, field + ".dhgroups must list 1 to 6 DH groups");
    }
    p.ndhgroups = 0;
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value x = a.Get(i);
      DhGroupId id;
      if (!x.IsString() || auth::dh_group_from_name(x.As<Napi::String>().Utf8Value(), &id) < 0) {
        return throw_invalid(env, field + ".dhgroups[" + std::to_string(i) +
                                      "] must be 'null' or 'ffdhe2048' ... 'ffdhe8192'");
      }
      for (uint8_t j = 0; j < p.ndhgroups; j++) {
        if (p.dhgroups[j] == id) return throw_invalid(env, field + ".dhgroups lists a group twice");
      }
      p.dhgroups[p.ndhgroups++] = id;
    }
  }
  Napi::Value t = o.Get("timeoutMs");
  if (!t.IsUndefined()) {
    int64_t ms;
    if (!int_arg(env, t, field + ".timeoutMs", 100, 3600000, &ms)) return false;
    p.timeout_ms = uint32_t(ms);
  }
  *out = p;
  return true;
}

void AuthInit(Napi::Env env, Napi::Object exports) {
  exports.Set("generateDhchapKey", Napi::Function::New<GenerateKey>(env, "generateDhchapKey"));
  exports.Set("parseDhchapKey", Napi::Function::New<ParseKey>(env, "parseDhchapKey"));
  // Test hooks (not re-exported by lib/): they expose secrets by design.
  Napi::Object t = Napi::Object::New(env);
  t.Set("transformKey", Napi::Function::New<TestTransformKey>(env, "transformKey"));
  t.Set("augmentChallenge", Napi::Function::New<TestAugment>(env, "augmentChallenge"));
  t.Set("hostResponse", Napi::Function::New<TestHostResponse>(env, "hostResponse"));
  t.Set("controllerResponse", Napi::Function::New<TestControllerResponse>(env, "controllerResponse"));
  t.Set("dhExchange", Napi::Function::New<TestDhExchange>(env, "dhExchange"));
  t.Set("keySecret", Napi::Function::New<TestKeySecret>(env, "keySecret"));
  exports.Set("authTest", t);
}

}  // namespace nvmf
