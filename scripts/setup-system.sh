#!/usr/bin/env bash
# Installs, with apt-get, the system packages that building nvmf-target from
# source and running its tests need (Debian 12 / Ubuntu). Idempotent: does
# nothing when everything is present. Run as root (or with sudo available).
#
#   scripts/setup-system.sh            # build + test packages
#   scripts/setup-system.sh --minimal  # only what building from source needs
set -euo pipefail

BUILD_PKGS=(
  build-essential   # g++/make for node-gyp and cmake-js
  cmake ninja-build # the developer build (cmake-js)
  pkg-config
  liburing-dev      # io_uring backends; linked statically into the addon
  libibverbs-dev    # NVMe/RDMA headers (libibverbs is dlopen'ed at run time)
  librdmacm-dev     # NVMe/RDMA connection manager headers (dlopen'ed too)
)
TEST_PKGS=(
  clang             # the sanitizer build (npm run test:asan), libFuzzer (npm run fuzz)
  libssl-dev        # libcrypto for the fuzz harnesses of auth/ (the addon uses Node's OpenSSL)
  nvme-cli          # the Linux kernel host, in the VM harness
  fio               # benchmarks and kernel-host verification
  qemu-system-x86   # the VM harness (../shared/vm/vm-run)
  busybox-static cpio xz-utils kmod  # vm-run's initramfs and module handling
  rdma-core ibverbs-utils rdmacm-utils  # rxe tools inside the VM
  iproute2
)
# clang's sanitizer runtime: its package name differs between releases.
CLANG_RT_CANDIDATES=(libclang-rt-14-dev libclang-rt-dev libclang-common-14-dev)

pkgs=("${BUILD_PKGS[@]}")
[[ ${1:-} == --minimal ]] || pkgs+=("${TEST_PKGS[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
need_rt=0
if [[ ${1:-} != --minimal ]]; then
  rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null || true)
  [[ -n $rt && -f $rt ]] || need_rt=1
fi

if ((${#missing[@]} == 0 && need_rt == 0)); then
  echo "setup-system: all system packages present"
  exit 0
fi

SUDO=
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || { echo "setup-system: run as root (need: ${missing[*]})" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
echo "setup-system: installing ${missing[*]}"
$SUDO apt-get update -qq
if ((${#missing[@]})); then
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ((need_rt)); then
  for c in "${CLANG_RT_CANDIDATES[@]}"; do
    if $SUDO apt-get install -y -qq --no-install-recommends "$c" 2>/dev/null; then break; fi
  done
fi
echo "setup-system: done"
