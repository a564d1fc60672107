#!/usr/bin/env bash
# vm-args: --nvme 256
# An emulated NVMe drive exported through the 'nvme' bdev (io_uring NVMe
# passthrough on /dev/ng0n1) to the Linux kernel host over NVMe/TCP, inside
# the VM harness (the line above makes scripts/test-vm.sh attach the drive):
#   bash scripts/test-vm.sh test/vm/nvme-passthrough.sh
#   ../shared/vm/vm-run --nvme 256 -- bash test/vm/nvme-passthrough.sh
# Checks: the tap test on the device; identify data the host sees against
# the device's; fio verify (randwrite 4k-128k QD32) with the device's limits
# and again with commands split small; data written through the target read
# directly on the device with nvme-cli and the other way round; error
# statuses (LBA out of range, a status only the device makes up); hot
# removal of the PCI device with I/O running: AEN, namespace gone on the
# host, I/O failed, never hung. Last, because the drive is gone afterwards.
# Env: NVMF_TARGET_NATIVE (addon), NVME_ASAN=<asan addon .node> runs the
# fixture and the tap test on the sanitizer build; NVME_TAP=0 leaves the
# tap test out; FIO_SIZE (per job).
# Prints "N passed, N failed"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [[ ${VM_RUN:-} != 1 ]]; then echo "run me inside ../shared/vm/vm-run --nvme 256" >&2; exit 2; fi

NG=/dev/ng0n1 DEV=/dev/nvme0n1 CTRL=/dev/nvme0
if [[ ! -c $NG ]] || ! grep -q QEMU /sys/class/nvme/nvme0/model 2>/dev/null; then
  echo "nvme-passthrough: SKIP: no emulated NVMe drive at $NG (start the VM with --nvme 256)"
  exit 0
fi
ADDR=${VM_TCP_ADDR:-10.99.0.1}
NQN=nqn.2024-01.io.nvmf-target:vm-nvme
FIO_SIZE=${FIO_SIZE:-24M}
source test/vm/lib.sh

# ---- sanitizer build (optional)
ASAN_LOGS=/tmp/nvme-asan
FIX_ENV=()
if [[ -n ${NVME_ASAN:-} ]]; then
  rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
  mkdir -p "$ASAN_LOGS"
  # Leaks are judged at the end (ours or Node's), not by the exit code.
  FIX_ENV=(LD_PRELOAD="$rt" NVMF_TARGET_NATIVE="$NVME_ASAN" NVMF_ASAN=1
    ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=0:allocator_may_return_null=1:log_path=$ASAN_LOGS/asan"
    LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0:exitcode=0"
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$ASAN_LOGS/ubsan")
  echo "# fixture runs on the sanitizer build $NVME_ASAN"
fi

# ---- device facts
dev_bs=$(cat /sys/block/nvme0n1/queue/logical_block_size)
dev_bytes=$(( $(cat /sys/block/nvme0n1/size) * 512 ))
idns() { nvme id-ns "$1" 2>/dev/null; }
nsze_of() { idns "$1" | awk '$1 == "nsze" {print $3}'; }
lbaf_of() { idns "$1" | grep "in use" | sed -E 's/^lbaf +[0-9]+ *: *//; s/ *\(in use\)//'; }
dev_nsze=$(nsze_of $DEV)
dev_lbaf=$(lbaf_of $DEV)
echo "# device: $DEV $dev_bytes bytes, block $dev_bs, nsze $dev_nsze, format '$dev_lbaf'"

# ---- the tap test, on the bare device (before fio fills it)
if [[ ${NVME_TAP:-1} == 0 ]]; then
  echo "skip - tap test (NVME_TAP=0)"
elif [[ -n ${NVME_ASAN:-} ]]; then
  sed -e "s#path.join(root, 'build-asan', 'Release', 'nvmf_target.node')#process.env.NVME_ASAN#" \
    -e "s#path.resolve(__dirname, '..')#process.cwd()#" scripts/run-asan.js >/tmp/run-asan-nvme.js
  check "tap test/nvme-bdev.test.ts (sanitizer build)" node /tmp/run-asan-nvme.js test/nvme-bdev.test.ts
else
  check "tap test/nvme-bdev.test.ts" npx tap test/nvme-bdev.test.ts
fi

# ---- fixture plumbing
CTL=/tmp/nvme-ctl OUT=/tmp/nvme-fixture.out ERR=/tmp/nvme-fixture.err
FIX=
start_fixture() {  # extra env for the fixture
  rm -f "$CTL"; mkfifo "$CTL"; : >"$OUT"
  env "${FIX_ENV[@]}" "$@" node test/vm/nvme-fixture.js "$CTL" "$ADDR" "$NG" >"$OUT" 2>>"$ERR" &
  FIX=$!
  exec 9>"$CTL"   # keep the FIFO open for writing
  for _ in $(seq 1 300); do grep -qE '^(READY|FAILED)' "$OUT" && break; sleep 0.2; done
  grep -q '^READY' "$OUT"
}
stop_fixture() {
  local r; r=$(ctl destroy)
  check "target destroy: $r" grep -q '^OK' <<<"$r"
  wait "$FIX"; check "fixture exits 0" [ $? = 0 ]
  exec 9>&-
}
connect_host() {
  nvme connect -t tcp -a "$ADDR" -s 4420 -n "$NQN" --ctrl-loss-tmo=2 --reconnect-delay=1 >/dev/null || return 1
  C=$(dev_of "$NQN") && N1=$(ns_dev "$C" 1)
}
# $1 bytes at byte offset $2: through the target (/dev/$N1), read back on the device.
target_to_device() {
  local n=$1 off=$2 bs=$dev_bs
  head -c "$n" /dev/urandom >/tmp/pat.bin
  dd if=/tmp/pat.bin of="/dev/$N1" bs="$n" seek="$off" oflag=direct,seek_bytes status=none || return 1
  nvme read $DEV -s $((off / bs)) -c $((n / bs - 1)) -z "$n" -d /tmp/back.bin >/tmp/nvme-read.out 2>&1 ||
    { sed 's/^/     /' /tmp/nvme-read.out; return 1; }
  cmp -s /tmp/pat.bin /tmp/back.bin
}
# The other way round: written on the device with nvme-cli, read through the target.
device_to_target() {
  local n=$1 off=$2 bs=$dev_bs
  head -c "$n" /dev/urandom >/tmp/pat2.bin
  # --force: nvme-cli opens for writing O_EXCL, and the exported namespace's
  # block device is held O_EXCL by the target.
  nvme write $DEV --force -s $((off / bs)) -c $((n / bs - 1)) -z "$n" -d /tmp/pat2.bin >/tmp/nvme-write.out 2>&1 ||
    { sed 's/^/     /' /tmp/nvme-write.out; return 1; }
  dd if="/dev/$N1" of=/tmp/back2.bin bs="$n" skip="$off" count=1 iflag=direct,skip_bytes status=none || return 1
  cmp -s /tmp/pat2.bin /tmp/back2.bin
}

# ---- 1. the device's own limits
check "fixture is ready" start_fixture
read -r _ fix_bs fix_blocks <<<"$(grep "^READY" "$OUT")"
check "bdev block size $fix_bs = device's $dev_bs" [ "${fix_bs:-0}" = "$dev_bs" ]
check "bdev size = device's $dev_bytes" [ "$(( ${fix_blocks:-0} * ${fix_bs:-0} ))" = "$dev_bytes" ]
if connect_host; then
  ok "nvme connect: $C, namespace 1 is /dev/$N1"
  check "host: size of /dev/$N1 = device's" [ "$(blockdev --getsize64 "/dev/$N1")" = "$dev_bytes" ]
  check "host: logical block size = device's" [ "$(blockdev --getss "/dev/$N1")" = "$dev_bs" ]
  check "host: id-ns nsze $(nsze_of "/dev/$N1") = device's $dev_nsze" [ "$(nsze_of "/dev/$N1")" = "$dev_nsze" ]
  check "host: LBA format in use '$(lbaf_of "/dev/$N1")' = device's" [ "$(lbaf_of "/dev/$N1")" = "$dev_lbaf" ]
  check "fio randwrite 4k-128k qd32 x2 verify=crc32c" run_fio "$N1" limits "$FIO_SIZE"
  check "256 KiB written through the target, nvme read on $DEV matches" target_to_device $((256 << 10)) $((64 << 20))
  check "256 KiB nvme write on $DEV, read through the target matches" device_to_target $((256 << 10)) $((65 << 20))
  out=$(nvme read "/dev/$N1" -s "$fix_blocks" -c 0 -z "$dev_bs" -d /dev/null 2>&1)
  check "host: read past the end fails with LBA Out of Range ($(tail -1 <<<"$out"))" grep -qiE 'LBA_RANGE|out of range|0x4080' <<<"$out"
  # A status only the device makes up: Deallocated or Unwritten Logical
  # Block, for a never-written block once DULBE is on.
  if nvme set-feature $CTRL -f 5 -n 1 -v $((1 << 16)) >/dev/null 2>&1; then
    out=$(nvme read "/dev/$N1" -s $((fix_blocks - 4096)) -c 0 -z "$dev_bs" -d /dev/null 2>&1)
    check "host: device status passed through ($(tail -1 <<<"$out"))" grep -qiE 'unwritten|0x4287|0x287' <<<"$out"
    nvme set-feature $CTRL -f 5 -n 1 -v 0 >/dev/null 2>&1
  else
    echo "skip - device status passthrough: the drive refuses DULBE"
  fi
  nvme disconnect -n "$NQN" >/dev/null
else
  bad "nvme connect / namespace 1 appears"
fi
stop_fixture

# ---- 2. commands split small (16 KiB), then hot removal
check "fixture is ready (16 KiB commands)" start_fixture NVMF_NVME_MAX_CMD_BYTES=16384
if connect_host; then
  ok "nvme connect: $C, namespace 1 is /dev/$N1"
  check "fio verify, every command split in 16 KiB pieces" run_fio "$N1" split 8M
  check "256 KiB through the target in 16 KiB commands, read on $DEV" target_to_device $((256 << 10)) $((80 << 20))
  check "256 KiB on $DEV, read through the target in 16 KiB commands" device_to_target $((256 << 10)) $((81 << 20))

  # Hot removal with I/O running.
  fio --name=hot --filename="/dev/$N1" --ioengine=libaio --direct=1 --rw=randrw --bs=4k --iodepth=16 \
    --time_based --runtime=120 --output=/tmp/fio-hot.txt >/dev/null 2>&1 &
  FIOPID=$!
  sleep 3
  bdf=$(basename "$(readlink -f /sys/class/nvme/nvme0/device)")
  t0=$(date +%s)
  echo 1 >"/sys/bus/pci/devices/$bdf/remove"
  for _ in $(seq 1 300); do grep -q '^EVENT device-removed' "$OUT" && break; sleep 0.1; done
  ev=$(grep -m1 '^EVENT device-removed' "$OUT")
  check "target: device-removed event ($ev)" grep -q '"nsid":1' <<<"$ev"
  gone=0
  for _ in $(seq 1 300); do [[ -b /dev/$N1 ]] || { gone=1; break; }; sleep 0.1; done
  check "host: namespace AEN handled, /dev/$N1 is gone after $(( $(date +%s) - t0 )) s" [ $gone = 1 ]
  for _ in $(seq 1 600); do kill -0 $FIOPID 2>/dev/null || break; sleep 0.1; done
  if kill -0 $FIOPID 2>/dev/null; then bad "I/O in flight ends (fio still running 60 s after removal)"; kill -9 $FIOPID
  else wait $FIOPID; rc=$?; check "I/O in flight ended with an error after $(( $(date +%s) - t0 )) s (fio rc $rc)" [ $rc != 0 ]; fi
  grep -m2 -E "err=" /tmp/fio-hot.txt | sed 's/^/     /'
  dmesg | grep -iE "nvme.*(rescan|namespace|changed)" | tail -3 | sed 's/^/     dmesg: /'
  check "host: controller $C still connected" [ -e "/sys/class/nvme/$C" ]
  r=$(ctl bdevs); check "target: the dead bdev is gone from the registry ($r)" [ "$r" = "OK -" ]
  nvme disconnect -n "$NQN" >/dev/null
else
  bad "nvme connect / namespace 1 appears"
fi
stop_fixture
sed 's/^/     fixture: /' "$ERR" | grep -v host-connect | tail -5

# ---- sanitizer reports of the fixture: any error fails; leaks only when ours
if [[ -n ${NVME_ASAN:-} ]]; then
  reports=0
  for f in "$ASAN_LOGS"/*; do
    [[ -e $f ]] || continue
    if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$f"; then reports=$((reports + 1)); cat "$f"; continue; fi
    mine=$(awk '
      /^(Direct|Indirect) leak of/ { if (blk != "") judge(); blk = $0; first = ""; next }
      /^ +#[0-9]+ / { if (first == "" && $0 !~ /libclang_rt|libasan|libc\.so|libstdc\+\+|libgcc_s|\/usr\/include\/c\+\+\//) first = $0 }
      function judge() { if (first ~ /nvmf_target\.node|src-native\/|node-addon-api\//) n++ }
      END { if (blk != "") judge(); print n + 0 }' "$f")
    if ((mine > 0)); then reports=$((reports + mine)); cat "$f"; fi
  done
  check "sanitizers: no report from our code in the fixture" [ $reports = 0 ]
fi

echo "$pass passed, $fail failed"
((fail == 0))
