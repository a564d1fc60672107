#!/usr/bin/env node
// npm run bench:idle — CPU used by an idle target over 5 s in each poll mode,
// measured from the reactor threads' own utime+stime (/proc/self/task/<tid>/stat).
// A benchmark, not a test: it prints figures, it asserts nothing.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { Target } = require(path.resolve(__dirname, '..', 'dist'));

const SECONDS = Number(process.env.IDLE_SECONDS || 5);
const TICK = 100; // USER_HZ on Linux

function cpuTicks(tid) {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

async function measure(pollMode, reactors) {
  const t = await Target.create({ reactors, pollMode });
  await new Promise((r) => setTimeout(r, 200)); // past the adaptive spin spell
  const tids = t.reactors().map((r) => r.tid);
  const before = tids.map(cpuTicks);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = tids.map(cpuTicks);
  const info = t.reactors();
  await t.destroy();
  const used = after.reduce((s, v, i) => s + v - before[i], 0) / TICK;
  return {
    pollMode,
    reactors,
    seconds: Number(secs.toFixed(2)),
    cpuPercentOfOneCore: Number(((100 * used) / secs).toFixed(2)),
    loopIterations: info.reduce((s, r) => s + r.iterations, 0),
    sleeps: info.reduce((s, r) => s + r.sleeps, 0),
  };
}

(async () => {
  console.log(`bench:idle — idle target, ${SECONDS} s per mode, 1 reactor, on ${require('node:os').cpus().length} CPU(s)`);
  const rows = [];
  for (const mode of ['interrupt', 'adaptive', 'poll']) rows.push(await measure(mode, 1));
  console.table(rows);
  const out = path.resolve(__dirname, 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'idle.json'), JSON.stringify({ date: new Date().toISOString(), rows }, null, 2));
})();
