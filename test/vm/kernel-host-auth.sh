#!/usr/bin/env bash
# The Linux kernel NVMe/TCP host against our target with DH-HMAC-CHAP, inside
# the VM harness:
#   bash scripts/test-vm.sh test/vm/kernel-host-auth.sh
# Every hash and every DH group (the target's allowed list forces the
# choice), unidirectional and bidirectional, keys from our gen-key and from
# nvme gen-dhchap-key; wrong keys fail fast with an authentication error;
# re-authentication through sysfs; key rotation under fio.
# Prints "N passed, N failed"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [[ ${VM_RUN:-} != 1 ]]; then echo "run me inside ../shared/vm/vm-run" >&2; exit 2; fi

ADDR=${VM_TCP_ADDR:-10.99.0.1}
NQN=nqn.2024-01.io.nvmf-target:vm-auth
HOSTID=$(cat /proc/sys/kernel/random/uuid)
HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:$HOSTID
source test/vm/lib.sh
ms() { echo $(( $(date +%s%N) / 1000000 )); }

CTL=/tmp/nvmf-auth-ctl
OUT=/tmp/nvmf-auth.out
ERR=/tmp/nvmf-auth.err
rm -f "$CTL"; mkfifo "$CTL"
node test/vm/auth-fixture.js "$CTL" "$ADDR" >"$OUT" 2>"$ERR" &
FIX=$!
exec 9>"$CTL"
for i in $(seq 1 150); do grep -q READY "$OUT" 2>/dev/null && break; sleep 0.2; done
check "auth fixture is ready" grep -q READY "$OUT"
events() { grep -c "fixture: $1 " "$ERR"; }

gone() { for i in $(seq 1 50); do [[ -e /sys/class/nvme/$1 ]] || return 0; sleep 0.1; done; return 1; }
io_check() {  # write 1 MiB at offset $2 MiB and read it back
  dd if=/dev/urandom of=/tmp/io.in bs=1M count=1 status=none &&
  dd if=/tmp/io.in of="/dev/$1" bs=1M seek="$2" count=1 oflag=direct status=none &&
  dd if="/dev/$1" of=/tmp/io.out bs=1M skip="$2" count=1 iflag=direct status=none &&
  cmp -s /tmp/io.in /tmp/io.out
}
connect() {  # key [ctrl key]: runs nvme connect, prints its output
  local args=(-t tcp -a "$ADDR" -s 4420 -n "$NQN" --hostnqn="$HOSTNQN" --hostid="$HOSTID"
    --dhchap-secret="$1" --ctrl-loss-tmo=1 --reconnect-delay=1)
  [[ -n ${2:-} ]] && args+=(--dhchap-ctrl-secret="$2")
  nvme connect "${args[@]}" 2>&1
}

# --- keys: ours (the CLI once, then the fixture) and nvme-cli's
cli_key=$(node dist/cli.js gen-key --hmac 1 --nqn "$HOSTNQN")
check "gen-key prints a DHHC-1 key ($cli_key)" grep -qE '^DHHC-1:01:[A-Za-z0-9+/]{48}:$' <<<"$cli_key"
our() { ctl gen-key "$1" "$HOSTNQN" | sed 's/^OK //'; }
cli() { nvme gen-dhchap-key --hmac="$1" --nqn="$HOSTNQN" 2>/dev/null | tail -1; }
K=("$cli_key" "$(cli 2)" "$(our 3)" "$(cli 0)" "$(our 0)" "$(cli 3)")
C=("$(cli 1)" "$(our 2)" "$(cli 3)" "$(our 1)" "$(cli 0)" "$(our 3)")
check "nvme gen-dhchap-key keys were made" grep -q '^DHHC-1:02:' <<<"${K[1]}"
check "the target accepts nvme gen-dhchap-key keys" grep -q '^OK' <<<"$(ctl host "$HOSTNQN" "${K[1]}" "${C[0]}")"

# --- every hash and DH group, uni- and bidirectional
DIG=(sha256 sha384 sha512 sha256 sha384 sha512)
GRP=(null ffdhe2048 ffdhe3072 ffdhe4096 ffdhe6144 ffdhe8192)
for i in 0 1 2 3 4 5; do
  d=${DIG[$i]} g=${GRP[$i]}
  ctl policy "$d" "$g" >/dev/null
  for mode in uni bi; do
    name="$d/$g/$mode"
    ctrl=; [[ $mode == bi ]] && ctrl=${C[$i]}
    ctl host "$HOSTNQN" "${K[$i]}" "${ctrl:--}" >/dev/null
    before=$(events auth-success)
    dmesg -C
    t0=$(ms)
    out=$(connect "${K[$i]}" "$ctrl"); rc=$?
    t1=$(ms)
    if [[ $rc -ne 0 ]]; then
      bad "$name: nvme connect after $((t1 - t0)) ms ($out)"
      dmesg | tail -5 | sed 's/^/     dmesg: /'; grep -v "auth-success\|host-connect" "$ERR" | tail -3 | sed 's/^/     target: /'
      continue
    fi
    c=$(dev_of "$NQN") && n=$(ns_dev "$c") || { bad "$name: controller and namespace appear"; nvme disconnect -n "$NQN" >/dev/null; continue; }
    ok "$name: nvme connect in $((t1 - t0)) ms ($c, $n)"
    want="\"digest\":\"$d\",\"dhgroup\":\"$g\",\"bidirectional\":$([[ $mode == bi ]] && echo true || echo false)"
    got=$(tail -n +1 "$ERR" | grep "fixture: auth-success " | tail -n +$((before + 1)) | grep -c "$want")
    check "$name: every queue authenticated with $d/$g ($got auth-success events)" [ "$got" -ge 2 ]
    check "$name: the kernel reports the hash and group" bash -c "dmesg | grep -q 'authenticated with hash hmac($d) dhgroup $g'"
    [[ $mode == bi ]] && check "$name: the kernel authenticated the controller" bash -c "dmesg | grep -q 'controller authenticated'"
    check "$name: 1 MiB written and read back" io_check "$n" "$i"
    nvme disconnect -n "$NQN" >/dev/null 2>&1
    gone "$c" || bad "$name: controller is gone after disconnect"
  done
done
ctl policy sha512,sha384,sha256 ffdhe2048,null >/dev/null

# --- wrong keys fail promptly, as authentication failures
ctl host "$HOSTNQN" "${K[0]}" "${C[0]}" >/dev/null
fails=$(events auth-failure)
dmesg -C
t0=$(ms); out=$(connect "${K[2]}"); rc=$?; t1=$(ms)
check "wrong host key: nvme connect fails (rc=$rc: $out)" [ "$rc" -ne 0 ]
check "wrong host key: fails in $((t1 - t0)) ms (< 5000, not a timeout)" [ $((t1 - t0)) -lt 5000 ]
check "wrong host key: an authentication error, not a connection error" grep -qiE "key was rejected|authentication|permission|operation not permitted" <<<"$out"
dmesg | grep -iE "auth|fail|reject" | tail -4 | sed 's/^/     dmesg: /'
check "wrong host key: the kernel logs an authentication failure" bash -c "dmesg | grep -qiE 'auth.*(fail|reject)|(fail|reject).*auth'"
check "wrong host key: the target sent AUTH_Failure1 (reason failed)" bash -c "grep 'fixture: auth-failure ' '$ERR' | tail -n +$((fails + 1)) | grep -q '\"reason\":\"failed\".*\"failure\":\"AUTH_Failure1\"'"
fails=$(events auth-failure)
t0=$(ms); out=$(connect "${K[0]}" "${C[3]}"); rc=$?; t1=$(ms)
check "wrong controller key: nvme connect fails (rc=$rc: $out)" [ "$rc" -ne 0 ]
check "wrong controller key: fails in $((t1 - t0)) ms (< 5000)" [ $((t1 - t0)) -lt 5000 ]
check "wrong controller key: the target saw the kernel's AUTH_Failure2" bash -c "grep 'fixture: auth-failure ' '$ERR' | tail -n +$((fails + 1)) | grep -q '\"failure\":\"AUTH_Failure2\"'"
dmesg | grep -iE "auth|fail|reject" | tail -4 | sed 's/^/     dmesg: /'
nvme disconnect -n "$NQN" >/dev/null 2>&1

# --- re-authentication through sysfs, and key rotation under fio
out=$(connect "${K[0]}" "${C[0]}") || bad "connect for the rotation test ($out)"
c=$(dev_of "$NQN") && n=$(ns_dev "$c")
ok "connected for re-authentication ($c, $n)"
before=$(events auth-success)
echo -n "${K[0]}" >"/sys/class/nvme/$c/dhchap_secret"
for i in $(seq 1 100); do (( $(events auth-success) >= before + 3 )) && break; sleep 0.1; done
re=$(grep "fixture: auth-success " "$ERR" | tail -n +$((before + 1)) | grep -c '"reauth":true')
check "writing dhchap_secret re-authenticates every queue ($re re-authentications)" [ "$re" -ge 2 ]
check "I/O after the re-authentication" io_check "$n" 7
fio --name=rot --filename="/dev/$n" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=16 \
  --size=32M --time_based --runtime=20 --verify=crc32c --verify_backlog=64 --verify_fatal=1 --verify_state_save=0 \
  --output=/tmp/fio-rot.txt >/dev/null 2>&1 &
FIO=$!
sleep 5
r=$(ctl host "$HOSTNQN" "${K[4]}" "${C[0]}")
check "rotate the host key on the target while fio runs ($r)" grep -q '^OK' <<<"$r"
sleep 3
before=$(events auth-success)
echo -n "${K[4]}" >"/sys/class/nvme/$c/dhchap_secret"
for i in $(seq 1 100); do (( $(events auth-success) >= before + 3 )) && break; sleep 0.1; done
re=$(grep "fixture: auth-success " "$ERR" | tail -n +$((before + 1)) | grep -c '"reauth":true')
check "the host re-authenticates with the rotated key while fio runs ($re queues)" [ "$re" -ge 2 ]
wait $FIO; frc=$?
grep -E "err=|write: IOPS" /tmp/fio-rot.txt | head -2 | sed 's/^/     /'
check "fio (20 s randwrite, crc32c verify) kept running across rotation and re-authentication (rc=$frc)" [ "$frc" -eq 0 ]
check "fio reports no errors" grep -q "err= 0" /tmp/fio-rot.txt
nvme disconnect -n "$NQN" >/dev/null 2>&1
gone "$c" || bad "controller is gone after disconnect"

r=$(ctl destroy)
check "target.destroy() ($r)" grep -q '^OK destroyed' <<<"$r"
wait $FIX; frc=$?
check "fixture exits 0" [ "$frc" -eq 0 ]
echo "     auth events: $(events auth-success) auth-success, $(events auth-failure) auth-failure"
grep -iE "sanitizer|error" "$ERR" | grep -v "fixture: " | head -5
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
