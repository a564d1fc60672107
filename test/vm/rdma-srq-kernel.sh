#!/usr/bin/env bash
# The Linux kernel host (nvme-rdma) against the target with a shared receive
# queue per poll group and device (Target.create({ rdma: { srq: true } }),
# default depth 4096), on soft-RoCE inside the VM harness:
#   bash scripts/test-vm.sh test/vm/rdma-srq-kernel.sh
# connect (2 I/O queues of 128), fio randwrite verify with libaio, dd + cmp,
# disconnect, reconnect, then target destroy() under fio load.
# Prints "N passed, N failed"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [[ ${VM_RUN:-} != 1 ]]; then echo "run me inside ../shared/vm/vm-run (bash scripts/test-vm.sh $0)" >&2; exit 2; fi

ADDR=${VM_RDMA_ADDR:-10.99.0.1}
NQN=nqn.2024-01.io.nvmf-target:rdma-srq-kernel
FIO_SIZE=${FIO_SIZE:-16M}
T0=$(date +%s)
source test/vm/lib.sh

if ! ibv_devices 2>/dev/null | grep -q "${VM_RDMA_DEV:-rxe0}"; then
  echo "SKIP: no RDMA device ${VM_RDMA_DEV:-rxe0} in this VM"; exit 0
fi

OUT=/tmp/nvmf-srq-target.out
ERR=/tmp/nvmf-srq-target.err
# The target: SIGUSR2 destroys it (and exits 0).
node - "$ADDR" "$NQN" >"$OUT" 2>"$ERR" <<'JS' &
'use strict';
const path = require('node:path');
const { Target } = require(path.resolve('dist'));
const [address, nqn] = process.argv.slice(2);
(async () => {
  const t = await Target.create({ reactors: 2, pollMode: 'interrupt', rdma: { srq: true } });
  t.ref();
  await t.createBdev({ name: 'm0', type: 'malloc', sizeBytes: 256 << 20, blockSize: 512 });
  const sub = await t.createSubsystem({ nqn, allowAnyHost: true });
  await sub.addNamespace({ bdev: 'm0' });
  await t.listen({ transport: 'rdma', address, port: 4420 });
  process.on('SIGUSR2', async () => {
    const t0 = Date.now();
    await t.destroy();
    console.log(`OK destroyed in ${Date.now() - t0} ms`);
    process.exit(0);
  });
  console.log(`READY srqDepth ${t.options.rdma.srqDepth}`);
})().catch((e) => {
  console.error('target:', e);
  process.exit(1);
});
JS
TGT=$!
for i in $(seq 1 150); do grep -q READY "$OUT" 2>/dev/null && break; sleep 0.2; done
check "target with rdma.srq listens on rdma $ADDR:4420 ($(head -1 "$OUT"))" grep -q READY "$OUT"

connect() { nvme connect -t rdma -a "$ADDR" -s 4420 -n "$NQN" --nr-io-queues=2 --ctrl-loss-tmo=2 --reconnect-delay=1; }

stamp "kernel host"
check "nvme connect -t rdma (2 I/O queues)" connect
if c=$(dev_of "$NQN" rdma) && n1=$(ns_dev "$c" 1); then
  ok "block device $n1 appears ($(cat /sys/class/nvme/$c/queue_count 2>/dev/null || echo ?) queues, sqsize $(cat /sys/class/nvme/$c/sqsize 2>/dev/null || echo ?))"
  check "fio randwrite 4k-128k qd32 x2 verify=crc32c, zero errors" run_fio "$n1" srq
  head -c $((3 << 20)) /dev/urandom >/tmp/pattern
  dd if=/tmp/pattern of="/dev/$n1" bs=1M oflag=direct status=none
  check "3 MiB written with dd read back identical" cmp -n $((3 << 20)) /tmp/pattern "/dev/$n1"
  check "nvme disconnect" nvme disconnect -n "$NQN"
  for i in $(seq 1 50); do [[ -e /sys/class/nvme/$c ]] || break; sleep 0.1; done
  check "controller is gone after disconnect" [ ! -e "/sys/class/nvme/$c" ]
else
  bad "controller and block device appear"
fi
stamp "kernel host done"

# destroy() while the kernel host runs I/O
connect >/dev/null 2>&1
if c=$(dev_of "$NQN" rdma) && n1=$(ns_dev "$c" 1); then
  timeout 120 fio --name=load --filename="/dev/$n1" --ioengine=libaio --direct=1 --rw=randrw \
    --bsrange=4k-64k --iodepth=32 --numjobs=2 --time_based --runtime=60 >/tmp/fio-load.txt 2>&1 &
  LOAD=$!
  sleep 3
  kill -USR2 "$TGT"
  for i in $(seq 1 300); do grep -q 'OK destroyed' "$OUT" && break; sleep 0.1; done
  check "target.destroy() under kernel-host load resolves ($(grep 'OK destroyed' "$OUT"))" grep -q 'OK destroyed' "$OUT"
  wait $LOAD; rc=$?
  check "fio under destroy ends (with an error), not a hang (rc=$rc)" [ "$rc" -ne 124 ]
else
  bad "reconnect for the destroy-under-load step"
  kill -USR2 "$TGT"
fi
wait $TGT; trc=$?
check "target process exits 0 after destroy" [ "$trc" -eq 0 ]
nvme disconnect-all >/dev/null 2>&1
check "no sanitizer report or crash in the target" bash -c "! grep -qiE 'sanitizer|segmentation|abort' '$ERR'"
grep -v "^$" "$ERR" | head -10 | sed 's/^/target: /'
dmesg | grep -iE "nvme.*(error|fail|timeout)" | tail -5 | sed 's/^/dmesg: /'
stamp "end"
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
