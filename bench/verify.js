#!/usr/bin/env node
// npm run bench:verify — the data-integrity variant of every bundled profile
// (bench/fio/nvmf-verify.fio: write with crc32c headers, read back at the
// profile's block size and queue depth) through fio and nvmf-target's engine
// against a fresh target in its own process. Exits non-zero when any job
// fails or moved no data.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
// NVMF_FIO_BUILD: another build of the engine (default: npm run build:fio's).
const ENGINE = path.join(process.env.NVMF_FIO_BUILD ? path.resolve(process.env.NVMF_FIO_BUILD) : path.join(ROOT, 'build-fio'), 'nvmf-fio.so');
const NQN = 'nqn.2024-01.io.nvmf-target:verify';

function die(msg) {
  console.error(`bench:verify: ${msg}`);
  process.exit(1);
}

function waitPort(port, ms) {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tryOnce = () => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > end) reject(new Error(`the target did not listen on port ${port}`));
        else setTimeout(tryOnce, 100);
      });
    };
    tryOnce();
  });
}

async function main() {
  if (spawnSync('fio', ['--version'], { stdio: 'ignore' }).status !== 0) die('fio is not installed (apt-get install fio)');
  if (!fs.existsSync(ENGINE) && !process.env.NVMF_FIO_BUILD) {
    console.log('bench:verify: building the fio engine first (npm run build:fio)');
    const b = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-fio.js')], { stdio: 'inherit' });
    if (b.status !== 0) die('npm run build:fio failed');
  }
  const port = 25420 + (process.pid % 1000);
  const target = spawn(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'serve', '--port', String(port),
    '--nqn', NQN, '--size', '256M'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = () => {
    if (target.exitCode === null) target.kill('SIGTERM');
  };
  process.on('exit', stop);
  await waitPort(port, 30000);

  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-verify-')), 'verify.json');
  const env = {
    ...process.env, NVMF_FIO_ENGINE: ENGINE, NVMF_TRANSPORT: 'tcp', NVMF_ADDR: '127.0.0.1',
    NVMF_PORT: String(port), NVMF_NQN: NQN, NVMF_NS: '1',
  };
  console.log(`bench:verify: fio bench/fio/nvmf-verify.fio against nvmf-target on 127.0.0.1:${port}`);
  const r = spawnSync('fio', [path.join(ROOT, 'bench', 'fio', 'nvmf-verify.fio'), '--output-format=json', `--output=${out}`],
    { cwd: ROOT, env, encoding: 'utf8' });
  stop();
  let json;
  try {
    const text = fs.readFileSync(out, 'utf8');
    json = JSON.parse(text.slice(text.indexOf('{')));
  } catch {
    die(`fio produced no results (exit ${r.status}):\n${r.stderr}`);
  }
  let failed = 0;
  for (const j of json.jobs) {
    const moved = j.read.io_bytes > 0 && j.write.io_bytes > 0;
    const ok = j.error === 0 && moved;
    if (!ok) failed++;
    console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${j.jobname.padEnd(28)} wrote ${(j.write.io_bytes / 2 ** 20).toFixed(0)} MiB, ` +
      `read back ${(j.read.io_bytes / 2 ** 20).toFixed(0)} MiB${j.error ? `, error ${j.error}` : ''}`);
  }
  if (r.status !== 0 && failed === 0) {
    failed++;
    console.log(`  FAIL fio exited with ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  const passed = json.jobs.length - (failed > json.jobs.length ? json.jobs.length : failed);
  console.log(`bench:verify: ${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => die(e.stack || String(e)));
