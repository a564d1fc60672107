#!/usr/bin/env node
// Builds and runs the libFuzzer harnesses in fuzz/ (clang,
// -fsanitize=fuzzer,address,undefined). Fails on any crash, sanitizer
// report, leak or timeout, and prints executions per harness.
//
//   npm run fuzz                       every harness for FUZZ_SECONDS (default 60) each
//   node scripts/fuzz.js tcp_pdu ...   only these
//   FUZZ_SECONDS=0 npm run fuzz        regression only: every committed corpus input once
//   node scripts/fuzz.js --merge       add the inputs the last runs found (only those that
//                                      add coverage) to fuzz/corpus/<harness>/
//
// Seeds and regression inputs live in fuzz/corpus/<harness>/ (committed,
// small). New inputs found while fuzzing go to build-fuzz/corpus/<harness>/;
// a crash leaves build-fuzz/artifacts/<harness>-crash-<sha1>: fix the bug,
// then copy that file into fuzz/corpus/<harness>/ so the regression runs
// it forever.
'use strict';
const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'build-fuzz');
const AUTH = ['src-native/auth/crypto.cc', 'src-native/auth/messages.cc', 'src-native/auth/dhchap_key.cc'];
// harness -> the sources it links (besides fuzz/<harness>.cc) and libraries.
const HARNESSES = {
  tcp_pdu: { srcs: ['src-native/transport/tcp_parse.cc', 'src-native/nvme/crc32c.cc'] },
  capsule_sgl: { srcs: ['src-native/transport/tcp_parse.cc'] },
  auth_messages: { srcs: AUTH, libs: ['-lcrypto'] },
  auth_session: { srcs: [...AUTH, 'src-native/auth/session.cc'], libs: ['-lcrypto'] },
  dhchap_key: { srcs: AUTH, libs: ['-lcrypto'] },
  // The whole target (every source but the addon and the host library).
  target_tcp: {
    srcs: require(path.join(root, 'src-native', 'sources.json')).sources.filter((f) => !/\/(addon|host)\//.test(f)),
    libs: ['-luring', '-lcrypto', '-ldl', '-lpthread'],
  },
  host_response: {
    srcs: ['src-native/host/tcp_queue.cc', 'src-native/host/tcp_queue_rx.cc', 'src-native/host/commands.cc', 'src-native/nvme/crc32c.cc'],
    optional: true,
  },
};

const args = process.argv.slice(2);
const merge = args.includes('--merge');
const names = args.filter((a) => !a.startsWith('--'));
const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
const selected = names.length ? names : Object.keys(HARNESSES);
for (const n of selected) {
  if (!HARNESSES[n]) {
    console.error(`fuzz: unknown harness ${n} (known: ${Object.keys(HARNESSES).join(', ')})`);
    process.exit(2);
  }
}

function newest(files) {
  return Math.max(...files.map((f) => {
    try {
      return fs.statSync(path.join(root, f)).mtimeMs;
    } catch {
      return Infinity;
    }
  }));
}

// Rebuilds when any source or header under src-native/ is newer.
function headersMtime() {
  let m = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.h')) m = Math.max(m, fs.statSync(p).mtimeMs);
    }
  };
  walk(path.join(root, 'src-native'));
  return m;
}

function build(name) {
  const h = HARNESSES[name];
  const bin = path.join(out, name);
  const srcs = [`fuzz/${name}.cc`, ...h.srcs];
  const stamp = fs.existsSync(bin) ? fs.statSync(bin).mtimeMs : 0;
  if (stamp > newest(srcs) && stamp > headersMtime() && stamp > fs.statSync(__filename).mtimeMs) return true;
  const cmd = [
    '-std=c++20', '-g', '-O1', '-fno-omit-frame-pointer',
    '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=undefined',
    '-Wall', '-Wextra', '-Wno-unused-parameter',
    `-I${path.join(root, 'src-native')}`,
    ...srcs.map((s) => path.join(root, s)),
    ...(h.libs ?? []),
    '-o', bin,
  ];
  process.stdout.write(`fuzz: building ${name}\n`);
  const r = spawnSync('clang++', cmd, { stdio: 'inherit' });
  return r.status === 0;
}

function run(name) {
  return new Promise((resolve) => {
    const bin = path.join(out, name);
    const seeds = path.join(root, 'fuzz', 'corpus', name);
    const work = path.join(out, 'corpus', name);
    const artifacts = path.join(out, 'artifacts');
    fs.mkdirSync(seeds, { recursive: true });
    fs.mkdirSync(work, { recursive: true });
    fs.mkdirSync(artifacts, { recursive: true });
    let flags;
    if (merge) flags = ['-merge=1', seeds, work];
    else if (seconds <= 0) flags = ['-runs=0', seeds];
    else flags = [`-max_total_time=${seconds}`, '-timeout=10', '-rss_limit_mb=2048', '-print_final_stats=1', work, seeds];
    const env = {
      ...process.env,
      ASAN_OPTIONS: 'abort_on_error=1:detect_leaks=1:allocator_may_return_null=1',
      UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
    };
    delete env.LD_PRELOAD;
    const child = spawn(bin, [`-artifact_prefix=${artifacts}/${name}-`, ...flags], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const keep = (d) => {
      log += d;
      if (log.length > 4_000_000) log = log.slice(-2_000_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('close', (code, signal) => {
      const execs = Number(/stat::number_of_executed_units:\s*(\d+)/.exec(log)?.[1] ?? /Done (\d+) runs/.exec(log)?.[1] ?? 0);
      const cov = /cov: (\d+)/g;
      let m;
      let lastCov = 0;
      while ((m = cov.exec(log))) lastCov = Number(m[1]);
      const corpus = fs.readdirSync(seeds).length;
      resolve({ name, ok: code === 0, code, signal, execs, cov: lastCov, corpus, log });
    });
  });
}

(async () => {
  fs.mkdirSync(out, { recursive: true });
  const results = [];
  let failed = false;
  for (const name of selected) {
    if (HARNESSES[name].optional && !fs.existsSync(path.join(root, 'fuzz', `${name}.cc`))) continue;
    if (!build(name)) {
      console.error(`fuzz: ${name}: build failed`);
      failed = true;
      continue;
    }
    const mode = merge ? 'merging' : seconds <= 0 ? 'replaying its corpus' : `fuzzing for ${seconds} s`;
    process.stdout.write(`fuzz: ${name}: ${mode}\n`);
    const r = await run(name);
    results.push(r);
    if (!r.ok) {
      failed = true;
      console.error(`\n===== fuzz: ${name} failed (exit ${r.code}${r.signal ? `, ${r.signal}` : ''}) =====`);
      console.error(r.log.split('\n').filter((l) => !/^#\d+\s+(NEW|REDUCE|pulse|INITED)/.test(l)).slice(-80).join('\n'));
      const crash = /Test unit written to (\S+)/.exec(r.log)?.[1];
      if (crash) console.error(`fuzz: reproduce with: ${path.relative(root, path.join(out, name))} ${crash}\nfuzz: after the fix, keep it as a regression input: cp ${crash} fuzz/corpus/${name}/`);
    }
  }
  console.log('\nharness          result  executions  coverage  seeds');
  for (const r of results) {
    console.log(`${r.name.padEnd(16)} ${(r.ok ? 'ok' : 'FAIL').padEnd(7)} ${String(r.execs).padStart(10)}  ${String(r.cov).padStart(8)}  ${String(r.corpus).padStart(5)}`);
  }
  process.exit(failed ? 1 : 0);
})();
