#!/usr/bin/env bash
# The Linux kernel NVMe/TCP host against our target, inside the VM harness:
#   ../shared/vm/vm-run --timeout 1200 -- bash test/vm/kernel-host-tcp.sh
# (npm run test:vm). Prints "N passed, N failed"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [[ ${VM_RUN:-} != 1 ]]; then echo "run me inside ../shared/vm/vm-run" >&2; exit 2; fi

ADDR=${VM_TCP_ADDR:-10.99.0.1}
SCR=${VM_SCRATCH:-/tmp}
MALLOC_NQN=nqn.2024-01.io.nvmf-target:vm-malloc
FILE_NQN=nqn.2024-01.io.nvmf-target:vm-file
FIO_SIZE=${FIO_SIZE:-24M}
source test/vm/lib.sh

CTL=/tmp/nvmf-ctl
OUT=/tmp/nvmf-fixture.out
rm -f "$CTL"; mkfifo "$CTL"
node test/vm/target-fixture.js "$CTL" "$ADDR" "$SCR" >"$OUT" 2>/tmp/nvmf-fixture.err &
FIX=$!
exec 9>"$CTL"   # keep the FIFO open for writing
for i in $(seq 1 100); do grep -q READY "$OUT" 2>/dev/null && break; sleep 0.2; done
check "target fixture is ready" grep -q READY "$OUT"

ioccsz_is() { nvme id-ctrl "/dev/$1" | grep -qE "^ioccsz +: $2\$"; }
wait_dev() { for i in $(seq 1 100); do [[ -b /dev/$1 ]] && return 0; sleep 0.1; done; return 1; }

# --- discovery
disc=$(nvme discover -t tcp -a "$ADDR" -s 4420 2>&1)
check "nvme discover lists the malloc subsystem" grep -q "$MALLOC_NQN" <<<"$disc"
check "nvme discover lists the file subsystem" grep -q "$FILE_NQN" <<<"$disc"


for variant in plain digests; do
  flags=(); [[ $variant == digests ]] && flags=(-g -G)
  for sub in malloc file; do
    nqn=$MALLOC_NQN; size=$((256 << 20)); model=nvmf-target-malloc; serial=VMMALLOC0001
    [[ $sub == file ]] && { nqn=$FILE_NQN; model=nvmf-target-file; serial=VMFILE0001; }
    check "$sub/$variant: nvme connect" nvme connect -t tcp -a "$ADDR" -s 4420 -n "$nqn" "${flags[@]}" \
      --ctrl-loss-tmo=2 --reconnect-delay=1
    c=$(dev_of "$nqn") || { bad "$sub/$variant: controller appears"; continue; }
    n1=$(ns_dev "$c" 1) || { bad "$sub/$variant: block device of namespace 1 appears"; nvme disconnect -n "$nqn" >/dev/null; continue; }
    ok "$sub/$variant: block device $n1 (nsid 1) appears"
    check "$sub/$variant: size is $size" [ "$(blockdev --getsize64 "/dev/$n1")" = "$size" ]
    check "$sub/$variant: model is $model" [ "$(sed 's/ *$//' "/sys/class/nvme/$c/model")" = "$model" ]
    check "$sub/$variant: serial is $serial" [ "$(sed 's/ *$//' "/sys/class/nvme/$c/serial")" = "$serial" ]
    check "$sub/$variant: IOCCSZ 2052 (32 KiB of in-capsule data)" ioccsz_is "$c" 2052
    check "$sub/$variant: fio randwrite 4k-128k qd32 x2 verify=crc32c" run_fio "$n1" "$sub-$variant"
    if [[ $sub == malloc && $variant == plain ]]; then
      r=$(ctl add-ns "$MALLOC_NQN" m1 64)
      check "add a namespace while connected ($r)" grep -q '^OK' <<<"$r"
      n2=$(ns_dev "$c" 2)
      check "the new block device of namespace 2 appears (${n2:-none})" [ -n "$n2" ]
      check "namespace 2 has the size given (64 MiB)" [ "$(blockdev --getsize64 "/dev/$n2" 2>/dev/null)" = "$((64 << 20))" ]
    fi
    check "$sub/$variant: nvme disconnect" nvme disconnect -n "$nqn"
    for i in $(seq 1 50); do [[ -e /sys/class/nvme/$c ]] || break; sleep 0.1; done
    check "$sub/$variant: controller is gone after disconnect" [ ! -e "/sys/class/nvme/$c" ]
  done
done

# --- destroy under load: hosts see errors, not hangs
nvme connect -t tcp -a "$ADDR" -s 4420 -n "$MALLOC_NQN" --ctrl-loss-tmo=2 --reconnect-delay=1 >/dev/null 2>&1
c=$(dev_of "$MALLOC_NQN") && n1=$(ns_dev "$c" 1)
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
grep -iE "error|sanitizer" /tmp/nvmf-fixture.err | grep -v "host-" | head -5
dmesg | grep -iE "nvme.*(error|fail|timeout)" | tail -5 | sed 's/^/dmesg: /'
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
