#!/usr/bin/env bash
# npm run bench:in-capsule — what a larger in-capsule data size buys:
# two targets (`serve`, default 8 KiB and --in-capsule-data 128K) pinned to
# CPU 0, the perf tool (--in-capsule 128K) on CPU 1; 128 KiB sequential
# writes at QD1, ROUNDS alternating pairs (only the measured target runs, the
# other is stopped), and the median of the pair ratios.
#   ROUNDS=6 SECONDS_EACH=2 IO_SIZE=128K QD=1 npm run bench:in-capsule
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-6} SECS=${SECONDS_EACH:-2} IO=${IO_SIZE:-128K} QD=${QD:-1}
NQN=nqn.2024-01.io.nvmf-target:in-capsule-bench
P8=${PORT_BASE:-4441}; P128=$((P8 + 1))
taskset -c 0 node dist/cli.js serve --port "$P8" --nqn "$NQN" --size 512M >/dev/null 2>&1 & T8=$!
taskset -c 0 node dist/cli.js serve --port "$P128" --nqn "$NQN" --size 512M --in-capsule-data 128K >/dev/null 2>&1 & T128=$!
trap 'kill -CONT $T8 $T128 2>/dev/null; kill $T8 $T128 2>/dev/null; wait' EXIT
sleep 2
run() {  # port -> IOPS
  taskset -c 1 node dist/cli.js perf --port "$1" --nqn "$NQN" --io-size "$IO" --queue-depth "$QD" --pattern sequential \
    --read-percent 0 --duration "$SECS" --ramp 0.5 --in-capsule 128K --json |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s).result;
      if(r.errors) {console.error("errors: "+r.errors);process.exit(1)}
      console.log(r.iops.toFixed(0)+" "+r.latencyUs.p50.toFixed(1)+" "+r.latencyUs.p99.toFixed(1))})'
}
ratios=()
echo "write $IO QD$QD, ${SECS} s per run: IOPS (p50/p99 us), in-capsule 8 KiB (default) vs 128 KiB"
for r in $(seq 1 "$ROUNDS"); do
  kill -STOP $T128; kill -CONT $T8; read -r a pa qa < <(run "$P8")
  kill -STOP $T8; kill -CONT $T128; read -r b pb qb < <(run "$P128")
  ratio=$(node -e "console.log(($b/$a).toFixed(3))")
  ratios+=("$ratio")
  echo "round $r: 8 KiB $a ($pa/$qa)  128 KiB $b ($pb/$qb)  ratio $ratio"
done
echo "median ratio (128 KiB / 8 KiB in-capsule): $(printf '%s\n' "${ratios[@]}" | sort -n | node -e 'const v=require("fs").readFileSync(0,"utf8").trim().split("\n").map(Number);const m=v.length>>1;console.log((v.length%2?v[m]:(v[m-1]+v[m])/2).toFixed(3))')"
