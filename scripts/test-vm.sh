#!/usr/bin/env bash
# npm run test:vm — the Linux kernel host against our target inside the VM
# harness (../shared/vm/vm-run: QEMU TCG, Debian 6.12 kernel, nvme-tcp,
# nvme-rdma, soft-RoCE). Skips, saying why, when the harness is missing.
#   scripts/test-vm.sh [script ...]   default: every test/vm/*.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VMRUN=${VMRUN:-$ROOT/../shared/vm/vm-run}
if [[ ! -x $VMRUN ]]; then echo "test-vm: SKIP: $VMRUN not found (the VM harness lives in ../shared/vm)"; exit 0; fi
if ! command -v qemu-system-x86_64 >/dev/null; then echo "test-vm: SKIP: qemu-system-x86_64 missing (scripts/setup-system.sh installs it)"; exit 0; fi
cd "$ROOT"
scripts=("$@")
((${#scripts[@]})) || scripts=(test/vm/*.sh)
total_fail=0
for s in "${scripts[@]}"; do
  echo "test-vm: $s"
  t0=$(date +%s)
  # A script asks for VM options (e.g. an emulated drive) in a "# vm-args: ..." line.
  vm_args=()
  read -ra vm_args < <(sed -n 's/^# vm-args: *//p' "$s" | head -1)
  VM_SHARE_CACHE=${VM_SHARE_CACHE:-loose} "$VMRUN" --timeout "${VM_TIMEOUT:-1500}" --mem "${VM_MEM:-3072}" "${vm_args[@]}" -- bash "$s"
  rc=$?
  echo "test-vm: $s exited $rc after $(( $(date +%s) - t0 )) s"
  ((rc == 0)) || total_fail=$((total_fail + 1))
done
((total_fail == 0))
