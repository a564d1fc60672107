// Standalone self test for the wire structs and CRC32C. No framework. From
// the repository root:
//   g++ -std=c++20 -O2 -Wall -Wextra -Werror -Isrc-native
//       test/native/spec_selftest.cc src-native/nvme/crc32c.cc -o /tmp/spec_selftest
// Prints "N passed, N failed" and exits non-zero on any failure.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "nvme/crc32c.h"
#include "nvme/spec.h"
#include "transport/tcp_pdu.h"

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const char* what, uint64_t got = 0, uint64_t want = 0) {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  std::printf("FAIL: %s (got 0x%" PRIx64 ", want 0x%" PRIx64 ")\n", what, got, want);
}

void check_eq(uint64_t got, uint64_t want, const char* what) { check(got == want, what, got, want); }

// Run-time offset: where a member lands inside a real object, as opposed to
// the compile-time offsetof asserts in the headers.
template <class T, class M>
size_t offset_of(const T& obj, const M& member) {
  return static_cast<size_t>(reinterpret_cast<const uint8_t*>(&member) -
                             reinterpret_cast<const uint8_t*>(&obj));
}

// Bit-at-a-time reference, independent of both table and instruction paths.
uint32_t crc32c_reference(uint32_t crc, const uint8_t* p, size_t n) {
  while (n--) {
    crc ^= *p++;
    for (int i = 0; i < 8; ++i) crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
  }
  return crc;
}

void test_crc_vectors() {
  uint8_t zeros[32] = {};
  check_eq(nvmf::crc32c_digest(zeros, sizeof zeros), 0x8a9136aa, "crc32c 32 x 0x00");
  uint8_t ones[32];
  std::memset(ones, 0xff, sizeof ones);
  check_eq(nvmf::crc32c_digest(ones, sizeof ones), 0x62a8ab43, "crc32c 32 x 0xff");
  uint8_t inc[32];
  for (int i = 0; i < 32; ++i) inc[i] = uint8_t(i);
  check_eq(nvmf::crc32c_digest(inc, sizeof inc), 0x46dd794e, "crc32c 0..31");
  const char* digits = "123456789";
  check_eq(nvmf::crc32c_digest(digits, 9), 0xe3069283, "crc32c \"123456789\"");
  check_eq(nvmf::crc32c_digest(nullptr, 0), 0x00000000, "crc32c empty");

  // Both implementations must match the vectors, whichever one crc32c() picks.
  check_eq(~nvmf::crc32c_impl::software(~0u, digits, 9), 0xe3069283, "software \"123456789\"");
  if (nvmf::crc32c_impl::hardware_available())
    check_eq(~nvmf::crc32c_impl::hardware(~0u, digits, 9), 0xe3069283, "hardware \"123456789\"");
  std::printf("crc32c hardware path: %s\n",
              nvmf::crc32c_impl::hardware_available() ? "sse4.2" : "unavailable");
}

void test_crc_paths() {
  std::mt19937 rng(12345);
  std::vector<uint8_t> buf(300 + 8);
  for (auto& b : buf) b = uint8_t(rng());
  bool hw = nvmf::crc32c_impl::hardware_available();
  int mismatches = 0;
  for (size_t misalign = 0; misalign < 8; ++misalign) {
    for (size_t len = 0; len <= 300; ++len) {
      const uint8_t* p = buf.data() + misalign;
      uint32_t seed = uint32_t(rng());
      uint32_t ref = crc32c_reference(seed, p, len);
      uint32_t sw = nvmf::crc32c_impl::software(seed, p, len);
      uint32_t hwv = hw ? nvmf::crc32c_impl::hardware(seed, p, len) : ref;
      uint32_t dispatch = nvmf::crc32c(seed, p, len);
      if (sw != ref || hwv != ref || dispatch != ref) {
        if (mismatches++ < 5)
          std::printf("  len %zu misalign %zu: ref %08x sw %08x hw %08x\n", len, misalign, ref,
                      sw, hwv);
      }
    }
  }
  check(mismatches == 0, "crc32c sw == hw == reference for len 0..300, misalign 0..7",
        uint64_t(mismatches), 0);

  // Chaining and the iovec variant agree with one pass over the whole buffer.
  const uint8_t* p = buf.data();
  uint32_t whole = nvmf::crc32c_digest(p, 300);
  uint32_t r = ~0u;
  r = nvmf::crc32c(r, p, 7);
  r = nvmf::crc32c(r, p + 7, 100);
  r = nvmf::crc32c(r, p + 107, 193);
  check_eq(~r, whole, "crc32c chained == one pass");
  struct iovec iov[4] = {{const_cast<uint8_t*>(p), 1},
                         {const_cast<uint8_t*>(p + 1), 0},
                         {const_cast<uint8_t*>(p + 1), 150},
                         {const_cast<uint8_t*>(p + 151), 149}};
  check_eq(nvmf::crc32c_digest_iov(iov, 4), whole, "crc32c_digest_iov == one pass");
}

void test_offsets() {
  nvmf::IdentifyController ic{};
  check_eq(offset_of(ic, ic.sn), 4, "IdentifyController.sn");
  check_eq(offset_of(ic, ic.mdts), 77, "IdentifyController.mdts");
  check_eq(offset_of(ic, ic.cntrltype), 111, "IdentifyController.cntrltype");
  check_eq(offset_of(ic, ic.kas), 320, "IdentifyController.kas");
  check_eq(offset_of(ic, ic.sgls), 536, "IdentifyController.sgls");
  check_eq(offset_of(ic, ic.subnqn), 768, "IdentifyController.subnqn");
  check_eq(offset_of(ic, ic.ioccsz), 1792, "IdentifyController.ioccsz");
  check_eq(offset_of(ic, ic.psd[1]), 2080, "IdentifyController.psd[1]");

  nvmf::IdentifyNamespace ns{};
  check_eq(offset_of(ns, ns.nguid), 104, "IdentifyNamespace.nguid");
  check_eq(offset_of(ns, ns.lbaf[1].lbads), 134, "IdentifyNamespace.lbaf[1].lbads");

  nvmf::DiscoveryLogEntry de{};
  check_eq(offset_of(de, de.tsas.rdma.pkey), 776, "DiscoveryLogEntry.tsas.rdma.pkey");

  nvmf::tcp::TermReqHdr tr{};
  check_eq(offset_of(tr, tr.fei), 10, "TermReqHdr.fei");
  nvmf::tcp::CapsuleCmdHdr cc{};
  check_eq(offset_of(cc, cc.sqe.cdw10), 48, "CapsuleCmdHdr.sqe.cdw10");
}

void test_encodings() {
  // Linux writes statuses as (SCT << 8 | SC) without the phase bit; ours is
  // the same value shifted left by one.
  check_eq(nvmf::cqe_status(nvmf::GenericSc::InvalidField, true), 0x8004,
           "status InvalidField + DNR");
  check_eq(nvmf::cqe_status(nvmf::FabricsSc::ConnectInvalidHost), 0x184u << 1,
           "status ConnectInvalidHost");
  check_eq(nvmf::cqe_status(nvmf::FabricsSc::AuthRequired), 0x191u << 1, "status AuthRequired");
  check_eq(nvmf::cqe_status(nvmf::MediaSc::CompareFailure), 0x285u << 1, "status CompareFailure");
  check_eq(nvmf::cqe_status(nvmf::PathSc::AnaInaccessible), 0x302u << 1, "status AnaInaccessible");

  nvmf::CqEntry cqe{};
  cqe.set_status(nvmf::CmdSpecificSc::InvalidLogPage, true);
  check(cqe.status_code() == nvmf::Status(nvmf::CmdSpecificSc::InvalidLogPage) && cqe.dnr() &&
            !cqe.more() && !cqe.phase(),
        "CqEntry status round trip", cqe.status, 0);

  // Keyed SGL: 24-bit length then a 32-bit key straddling the unkeyed fields.
  uint8_t raw[16] = {1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x10, 0x00, 0xef, 0xbe, 0xad, 0xde, 0x40};
  nvmf::SglDescriptor sgl;
  std::memcpy(&sgl, raw, sizeof sgl);
  check_eq(sgl.keyed_length(), 0x1000, "keyed SGL length");
  check_eq(sgl.keyed_key(), 0xdeadbeef, "keyed SGL key");
  check(sgl.sgl_type() == nvmf::SglType::KeyedDataBlock &&
            sgl.sgl_subtype() == nvmf::SglSubtype::Address,
        "keyed SGL type/subtype", sgl.id, 0x40);
  nvmf::SglDescriptor built{};
  built.addr = 0x0807060504030201ull;
  built.set_keyed(0x1000, 0xdeadbeef);
  built.set_id(nvmf::SglType::KeyedDataBlock, nvmf::SglSubtype::Address);
  check(std::memcmp(&built, raw, 16) == 0, "keyed SGL encode");

  nvmf::SqEntry sqe{};
  sqe.cdw10 = 0x00ff8002;  // lid 2, rae, numdl 0xff
  sqe.cdw11 = 0x00000001;  // numdu 1
  sqe.cdw12 = 0x200;
  auto glp = nvmf::GetLogPageArgs::decode(sqe);
  check(glp.lid == 2 && glp.rae && glp.numd == 0x100ff && glp.lpo == 0x200, "GetLogPage decode");
  check_eq(glp.length_bytes(), (0x100ffull + 1) * 4, "GetLogPage length");

  nvmf::FabricsConnectCmd connect{};
  connect.opc = 0x7f;
  connect.fctype = uint8_t(nvmf::FabricsType::Connect);
  connect.qid = 3;
  connect.sqsize = 127;
  connect.kato = 120000;
  nvmf::SqEntry as_sqe;
  std::memcpy(&as_sqe, &connect, sizeof as_sqe);
  check_eq(as_sqe.fctype(), 0x01, "SqEntry.fctype()");
  auto back = nvmf::sqe_as<nvmf::FabricsConnectCmd>(as_sqe);
  check(back.qid == 3 && back.sqsize == 127 && back.kato == 120000, "sqe_as<FabricsConnectCmd>");

  uint64_t capv = nvmf::cap::make(127, true, 30, nvmf::cap::kCssNvm, 0, 0);
  check(nvmf::cap::mqes(capv) == 127 && nvmf::cap::cqr(capv) && nvmf::cap::to(capv) == 30 &&
            nvmf::cap::css(capv) == 1,
        "CAP encode/decode", capv, 0);

  char sn[20];
  nvmf::copy_space_padded(sn, sizeof sn, "abc");
  check(std::memcmp(sn, "abc                 ", 20) == 0, "copy_space_padded");
  char nqn[8] = {'n', 'q', 'n', 0, 'x', 'x', 'x', 'x'};
  check(nvmf::bounded_str(nqn, sizeof nqn) == "nqn", "bounded_str stops at NUL");
  char full[3] = {'a', 'b', 'c'};
  check(nvmf::bounded_str(full, sizeof full).size() == 3, "bounded_str stops at n");

  check_eq(nvmf::tcp::data_offset(72, false, 0), 72, "tcp data_offset no digest");
  check_eq(nvmf::tcp::data_offset(24, true, 7), 32, "tcp data_offset hdgst pda 7");
  check_eq(nvmf::tcp::expected_hlen(uint8_t(nvmf::tcp::PduType::R2T)), 24, "tcp hlen R2T");
  check_eq(nvmf::tcp::expected_hlen(0x08), 0, "tcp hlen unknown type");
}

}  // namespace

int main() {
  test_crc_vectors();
  test_crc_paths();
  test_offsets();
  test_encodings();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
