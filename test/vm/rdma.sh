#!/usr/bin/env bash
# NVMe/RDMA on soft-RoCE (rxe0) inside the VM harness:
#   bash scripts/test-vm.sh test/vm/rdma.sh
# 1. the Linux kernel host (nvme-rdma): discovery, connect, fio verify on a
#    RAM and a file namespace, disconnect; target destroy() under load;
# 2. this package's own host library over RDMA (test/vm/rdma-host.js):
#    connections x queue depth of verified random I/O, perf and the fio
#    engine over RDMA, AUTH_Failure1 over RDMA 100 times, the full
#    DH-HMAC-CHAP matrix (3 hashes x 6 DH groups x uni/bi, wrong controller
#    key), destroy under load, and the connect-while-destroy race (1 and 4
#    reactors) with every resource counter back to zero.
# Prints "N passed, N failed"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [[ ${VM_RUN:-} != 1 ]]; then echo "run me inside ../shared/vm/vm-run (bash scripts/test-vm.sh $0)" >&2; exit 2; fi

ADDR=${VM_RDMA_ADDR:-10.99.0.1}
SCR=${VM_SCRATCH:-/tmp}
MALLOC_NQN=nqn.2024-01.io.nvmf-target:rdma-malloc
FILE_NQN=nqn.2024-01.io.nvmf-target:rdma-file
FIO_SIZE=${FIO_SIZE:-16M}
T0=$(date +%s)
source test/vm/lib.sh

if ! ibv_devices 2>/dev/null | grep -q "${VM_RDMA_DEV:-rxe0}"; then
  echo "SKIP: no RDMA device ${VM_RDMA_DEV:-rxe0} in this VM"; exit 0
fi

CTL=/tmp/nvmf-rdma-ctl
OUT=/tmp/nvmf-rdma-fixture.out
ERR=/tmp/nvmf-rdma-fixture.err
rm -f "$CTL"; mkfifo "$CTL"
node test/vm/rdma-fixture.js "$CTL" "$ADDR" "$SCR" >"$OUT" 2>"$ERR" &
FIX=$!
exec 9>"$CTL"   # keep the FIFO open for writing
for i in $(seq 1 150); do grep -q READY "$OUT" 2>/dev/null && break; sleep 0.2; done
check "target fixture listens on rdma $ADDR:4420" grep -q READY "$OUT"

# --- 1. the Linux kernel host
stamp "kernel host"
disc=$(nvme discover -t rdma -a "$ADDR" -s 4420 2>&1)
check "nvme discover -t rdma lists the malloc subsystem" grep -q "$MALLOC_NQN" <<<"$disc"
check "the discovery log says trtype rdma" grep -q "trtype: *rdma" <<<"$disc"

for sub in malloc file; do
  nqn=$MALLOC_NQN; size=$((256 << 20)); model=nvmf-target-malloc
  [[ $sub == file ]] && { nqn=$FILE_NQN; size=$((128 << 20)); model=nvmf-target-file; }
  check "$sub: nvme connect -t rdma" nvme connect -t rdma -a "$ADDR" -s 4420 -n "$nqn" --ctrl-loss-tmo=2 --reconnect-delay=1
  c=$(dev_of "$nqn" rdma) || { bad "$sub: controller appears"; continue; }
  n1=$(ns_dev "$c" 1) || { bad "$sub: block device appears"; nvme disconnect -n "$nqn" >/dev/null; continue; }
  ok "$sub: block device $n1 appears ($(cat /sys/class/nvme/$c/queue_count 2>/dev/null || echo ?) queues)"
  check "$sub: size is $size" [ "$(blockdev --getsize64 "/dev/$n1")" = "$size" ]
  check "$sub: model is $model" [ "$(sed 's/ *$//' "/sys/class/nvme/$c/model")" = "$model" ]
  check "$sub: fio randwrite 4k-128k qd32 x2 verify=crc32c, zero errors" run_fio "$n1" "$sub"
  head -c $((3 << 20)) /dev/urandom >/tmp/pattern
  dd if=/tmp/pattern of="/dev/$n1" bs=1M oflag=direct status=none
  check "$sub: 3 MiB written with dd read back identical" cmp -n $((3 << 20)) /tmp/pattern "/dev/$n1"
  check "$sub: nvme disconnect" nvme disconnect -n "$nqn"
  for i in $(seq 1 50); do [[ -e /sys/class/nvme/$c ]] || break; sleep 0.1; done
  check "$sub: controller is gone after disconnect" [ ! -e "/sys/class/nvme/$c" ]
done

# DH-HMAC-CHAP over RDMA with the kernel host: uni- and bidirectional; a
# wrong key must fail fast with an authentication error (the kernel's own
# nvmet-rdma often loses AUTH_Failure1 and the host waits minutes).
AUTH_NQN=nqn.2024-01.io.nvmf-target:rdma-auth
HOSTID=$(cat /proc/sys/kernel/random/uuid)
HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:$HOSTID
KEY=$(nvme gen-dhchap-key --hmac=1 --key-length=32 --nqn="$HOSTNQN")
CKEY=$(nvme gen-dhchap-key --hmac=2 --key-length=48 --nqn="$AUTH_NQN")
auth_connect() { nvme connect -t rdma -a "$ADDR" -s 4420 -n "$AUTH_NQN" --hostnqn="$HOSTNQN" --hostid="$HOSTID" "$@"; }
auth_io() {  # fio verify on the 32 MiB namespace, then 1 MiB with dd read back
  local c n; c=$(dev_of "$AUTH_NQN" rdma) && n=$(ns_dev "$c" 1) || return 1
  run_fio "$n" "auth-$1" 8M || return 1
  head -c $((1 << 20)) /dev/urandom >/tmp/auth.in
  dd if=/tmp/auth.in of="/dev/$n" bs=1M oflag=direct status=none && cmp -n $((1 << 20)) /tmp/auth.in "/dev/$n"
}
for mode in unidirectional bidirectional; do
  if [[ $mode == unidirectional ]]; then r=$(ctl host "$HOSTNQN" "$KEY"); flags=(--dhchap-secret="$KEY")
  else r=$(ctl host "$HOSTNQN" "$KEY" "$CKEY"); flags=(--dhchap-secret="$KEY" --dhchap-ctrl-secret="$CKEY"); fi
  check "auth/$mode: host keys set ($r)" grep -q '^OK' <<<"$r"
  check "auth/$mode: nvme connect -t rdma with DH-HMAC-CHAP" auth_connect "${flags[@]}"
  check "auth/$mode: fio randwrite 4k-128k qd32 x2 verify=crc32c zero errors; 1 MiB dd read back" auth_io "$mode"
  check "auth/$mode: nvme disconnect" nvme disconnect -n "$AUTH_NQN"
done
dmesg | grep -E "qid 0: (authenticated|controller authenticated)" | tail -3 | sed 's/^/dmesg: /'
ctl host "$HOSTNQN" "$KEY" >/dev/null
refused_fast() { [[ $1 -ne 0 && $2 -lt 10000 ]] && grep -qiE 'rejected|authentication|key' <<<"$3"; }
for i in 1 2 3; do
  t1=$(date +%s%N)
  out=$(timeout 120 nvme connect -t rdma -a "$ADDR" -s 4420 -n "$AUTH_NQN" --hostnqn="$HOSTNQN" --hostid="$HOSTID" \
    --dhchap-secret="$(nvme gen-dhchap-key --hmac=1 --key-length=32 --nqn="$HOSTNQN")" 2>&1); rc=$?
  ms=$(( ($(date +%s%N) - t1) / 1000000 ))
  check "auth/wrong key $i: refused with an authentication error in $ms ms (rc=$rc: ${out//$'\n'/ })" \
    refused_fast "$rc" "$ms" "$out"
done
check "auth: the target reported AUTH_Failure1 for each wrong key" [ "$(grep -c 'fixture: auth-failure .*AUTH_Failure1' "$ERR")" -ge 3 ]
nvme disconnect -n "$AUTH_NQN" >/dev/null 2>&1
stamp "kernel host done"

# --- 2. our own host library over RDMA (target and host in one process,
# test/vm/rdma-host.js, TAP). With the sanitizer build present (CI builds it
# first: npm run test:asan) it runs under AddressSanitizer + LeakSanitizer
# through scripts/run-asan.js, which fails on any report or leak from our
# code, host or target side; RDMA_ASAN=0 runs it plain.
stamp "own host"
ASAN_ADDON=${NVMF_ASAN_ADDON:-build-asan/Release/nvmf_target.node}
if [[ ${RDMA_ASAN:-1} == 1 && -f $ASAN_ADDON ]] && command -v clang >/dev/null; then
  NVMF_ASAN_ADDON=$ASAN_ADDON node scripts/run-asan.js --reporter=tap --timeout=1500 test/vm/rdma-host.js \
    >/tmp/rdma-host.out 2>/tmp/rdma-host.err
  rc=$?
  what="own host suite under ASan+LSan (run-asan.js test/vm/rdma-host.js)"
else
  node test/vm/rdma-host.js "$ADDR" >/tmp/rdma-host.out 2>/tmp/rdma-host.err
  rc=$?
  what="own host suite (test/vm/rdma-host.js)"
fi
# The suite's own lines (tap indents a file's output one level).
sed -E -n 's/^ {0,4}(ok|not ok) [0-9]+ - /\1 - /p; s/^ {0,4}# /# /p' /tmp/rdma-host.out \
  | grep -vE ' - test/vm/rdma-host.js|^# (Subtest|time=|\{|No coverage)' | sed 's/^ok - /ok   - /; s/^not ok - /FAIL - /' >/tmp/rdma-host.lines
cat /tmp/rdma-host.lines
grep -h "run-asan" /tmp/rdma-host.out /tmp/rdma-host.err
pass=$((pass + $(grep -c '^ok' /tmp/rdma-host.lines)))
fail=$((fail + $(grep -c '^FAIL' /tmp/rdma-host.lines)))
((rc == 0)) || tail -30 /tmp/rdma-host.err
check "$what exits 0 (rc=$rc)" [ "$rc" -eq 0 ]
stamp "own host done"

# --- 3. a connection request without NVMe/RDMA private data (rping) is refused
out=$(timeout 30 rping -c -a "$ADDR" -p 4420 -C 1 -v 2>&1); rc=$?
check "rping (no NVMe/RDMA private data) is rejected (rc=$rc)" grep -qiE "reject" <<<"$out"
check "the target says why it rejected it" grep -q "connection rejected: .*(invalid host send queue size (HSQSIZE))" "$ERR"

# --- 4. destroy() while the kernel host runs I/O
nvme connect -t rdma -a "$ADDR" -s 4420 -n "$MALLOC_NQN" --ctrl-loss-tmo=2 --reconnect-delay=1 >/dev/null 2>&1
c=$(dev_of "$MALLOC_NQN" rdma) && n1=$(ns_dev "$c" 1)
timeout 120 fio --name=load --filename="/dev/$n1" --ioengine=libaio --direct=1 --rw=randrw \
  --bs=4k --iodepth=32 --time_based --runtime=60 >/tmp/fio-load.txt 2>&1 &
LOAD=$!
sleep 3
r=$(ctl destroy)
check "target.destroy() under kernel-host load resolves ($r)" grep -q '^OK destroyed' <<<"$r"
wait $LOAD; rc=$?
check "fio under destroy ends with an error, not a hang (rc=$rc)" [ "$rc" -ne 124 ]
wait $FIX; frc=$?
check "fixture exits 0 after destroy" [ "$frc" -eq 0 ]
nvme disconnect-all >/dev/null 2>&1
check "no sanitizer report or crash in the fixture" bash -c "! grep -qiE 'sanitizer|segmentation|abort' '$ERR'"

# --- 5. the RDMA port goes down under a connected host (async events)
stamp "port down"
node test/vm/rdma-host.js "$ADDR" port-down >/tmp/rdma-port.out 2>/tmp/rdma-port.err
rc=$?
sed -E 's/^ok [0-9]+ - /ok   - /; s/^not ok [0-9]+ - /FAIL - /' /tmp/rdma-port.out | grep -v '^1\.\.'
pass=$((pass + $(grep -c '^ok' /tmp/rdma-port.out)))
fail=$((fail + $(grep -c '^not ok' /tmp/rdma-port.out)))
check "port-down script exits 0 (rc=$rc)" [ "$rc" -eq 0 ]
grep -v "^$" /tmp/rdma-port.err | head -5 | sed 's/^/port-down: /'
grep -vE "host-(connect|disconnect)" "$ERR" | head -10 | sed 's/^/fixture: /'
dmesg | grep -iE "nvme.*(error|fail|timeout)" | tail -5 | sed 's/^/dmesg: /'
stamp "end"
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
