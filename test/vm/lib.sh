# Shared by the kernel-host scripts run inside the VM harness (sourced):
# result lines and counts, the target fixture's control FIFO, and finding
# the block device the Linux host made for a subsystem's namespace.
# shellcheck shell=bash

pass=0 fail=0
T0=${T0:-$(date +%s)}
ok() { echo "ok   - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
stamp() { echo "# $(( $(date +%s) - T0 )) s: $*"; }

# Sends a command to the fixture on fd 9 (its FIFO) and prints its reply:
# the first OK/ERR line the fixture adds to $OUT (EVENT lines are skipped),
# or TIMEOUT after 60 s.
ctl() {
  local n r i; n=$(grep -c '' "$OUT"); echo "$*" >&9
  for i in $(seq 1 600); do
    r=$(tail -n +$((n + 1)) "$OUT" | grep -m1 -E '^(OK|ERR)')
    [[ -n $r ]] && { echo "$r"; return 0; }
    sleep 0.1
  done
  echo "TIMEOUT"; return 1
}

# The nvme controller name for subsystem NQN $1 (over transport $2 if given).
dev_of() {
  local c; for c in /sys/class/nvme/nvme*; do
    [[ -f $c/subsysnqn && $(cat "$c/subsysnqn") == "$1" ]] || continue
    [[ -z ${2:-} || $(cat "$c/transport") == "$2" ]] && { basename "$c"; return 0; }
  done; return 1
}

# The block device of namespace $2 (any namespace if not given) on
# controller $1, once it exists (up to 10 s). The kernel numbers block
# devices in scan order, not by NSID; with native multipath the controller
# lists path devices (nvme0c0n1), and the block device is the same name
# without the "cN" part.
ns_dev() {
  local d b i; for i in $(seq 1 100); do
    for d in /sys/class/nvme/$1/nvme*n*; do
      [[ -f $d/nsid ]] && [[ -z ${2:-} || $(cat "$d/nsid") == "$2" ]] || continue
      b=$(basename "$d" | sed -E 's/c[0-9]+n/n/')
      [[ -b /dev/$b ]] && { echo "$b"; return 0; }
    done; sleep 0.1
  done; return 1
}

# fio random writes of 4k-128k at QD32 by 2 jobs of $3 (default $FIO_SIZE)
# each, verified with crc32c, on /dev/$1; output in /tmp/fio-$2.txt.
run_fio() {
  local size=${3:-$FIO_SIZE}
  fio --name=verify --filename="/dev/$1" --ioengine=libaio --direct=1 --rw=randwrite \
    --bsrange=4k-128k --iodepth=32 --numjobs=2 --size="$size" --offset_increment="$size" \
    --verify=crc32c --verify_fatal=1 --verify_state_save=0 --group_reporting --output=/tmp/fio-"$2".txt >/dev/null 2>&1
  local rc=$?
  grep -E "err=|IOPS" /tmp/fio-"$2".txt | head -3 | sed 's/^/     /'
  return $rc
}
