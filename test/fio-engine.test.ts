import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, serveRam, SUBNQN } from './helpers/target';

// fio with nvmf-target's external ioengine (npm run build:fio) against a
// target in this process: every bundled profile, every verify variant, and
// a negative control proving that verify notices wrong data.
const ROOT = path.resolve(__dirname, '..');
// NVMF_FIO_BUILD: another build of the engine and echo server (default: npm run build:fio's).
const FIO_BUILD = process.env.NVMF_FIO_BUILD ? path.resolve(process.env.NVMF_FIO_BUILD) : path.join(ROOT, 'build-fio');
const ENGINE = path.join(FIO_BUILD, 'nvmf-fio.so');
const ECHO = path.join(FIO_BUILD, 'nvmf-echo');
const haveFio = spawnSync('fio', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = !haveFio
  ? 'fio is not installed (apt-get install fio)'
  : !fs.existsSync(ENGINE)
    ? 'the fio engine is not built (npm run build:fio fetches the fio source and builds it)'
    : false;
if (skip) console.log(`# fio-engine tests skipped: ${skip}`);

interface FioJob {
  jobname: string;
  error: number;
  read: { io_bytes: number; iops: number };
  write: { io_bytes: number; iops: number };
}

function runFio(file: string, env: Record<string, string>, extra: string[] = []): Promise<{ code: number | null; jobs: FioJob[]; stderr: string }> {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-fio-test-')), 'out.json');
  return new Promise((resolve) => {
    // Asynchronous: the target serving fio lives in this very process.
    const p = spawn('fio', [file, '--output-format=json', `--output=${out}`, ...extra], {
      cwd: ROOT,
      env: { ...process.env, NVMF_FIO_ENGINE: ENGINE, NVMF_ADDR: '127.0.0.1', NVMF_NS: '1', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d.toString()));
    p.on('exit', (code) => {
      let jobs: FioJob[] = [];
      try {
        const text = fs.readFileSync(out, 'utf8');
        jobs = JSON.parse(text.slice(text.indexOf('{'))).jobs;
      } catch {
        // no output
      }
      fs.rmSync(path.dirname(out), { recursive: true, force: true });
      resolve({ code, jobs, stderr });
    });
  });
}

t.test('every bundled profile runs on the engine against nvmf-target', { skip }, async (t) => {
  const s = await serveRam({ sizes: [64 << 20], reactors: 1 });
  t.teardown(() => s.target.destroy());
  const r = await runFio(path.join(ROOT, 'bench', 'fio', 'nvmf.fio'), {
    NVMF_TRANSPORT: 'tcp', NVMF_PORT: String(s.port), NVMF_NQN: SUBNQN, NVMF_RUNTIME: '500ms', NVMF_RAMP: '0',
  });
  t.equal(r.code, 0, `fio exits 0 ${r.stderr}`);
  const names = r.jobs.map((j) => j.jobname);
  t.same(names, ['precondition',
    'randread-4k-qd1', 'randread-4k-qd32', 'randwrite-4k-qd1', 'randwrite-4k-qd32', 'randrw70-4k-qd1',
    'randrw70-4k-qd32', 'seqread-128k-qd1', 'seqread-128k-qd32', 'seqwrite-128k-qd1', 'seqwrite-128k-qd32'],
  'the precondition and ten profiles ran');
  for (const j of r.jobs) {
    t.equal(j.error, 0, `${j.jobname}: no error`);
    const reads = /read|rw/.test(j.jobname);
    const writes = /write|rw|precondition/.test(j.jobname);
    if (reads) t.ok(j.read.io_bytes > 0, `${j.jobname}: read data`);
    if (writes) t.ok(j.write.io_bytes > 0, `${j.jobname}: wrote data`);
  }
  const pre = r.jobs[0]!;
  t.equal(pre.write.io_bytes, 64 << 20, 'the precondition wrote the whole namespace');
});

t.test('every verify variant passes against nvmf-target', { skip }, async (t) => {
  const s = await serveRam({ sizes: [256 << 20], reactors: 1 });
  t.teardown(() => s.target.destroy());
  const r = await runFio(path.join(ROOT, 'bench', 'fio', 'nvmf-verify.fio'), {
    NVMF_TRANSPORT: 'tcp', NVMF_PORT: String(s.port), NVMF_NQN: SUBNQN,
  });
  t.equal(r.code, 0, `fio exits 0 ${r.stderr}`);
  t.equal(r.jobs.length, 10, 'ten verify jobs');
  for (const j of r.jobs) {
    t.equal(j.error, 0, `${j.jobname}: verified`);
    t.ok(j.write.io_bytes > 0 && j.read.io_bytes > 0, `${j.jobname}: wrote and read back`);
  }
});

t.test('verify notices wrong data (negative control: an echo server whose 1 MiB region aliases every MiB)', { skip: skip || (!fs.existsSync(ECHO) && 'build-fio/nvmf-echo is missing') }, async (t) => {
  const port = await freePort();
  const echo = spawn(ECHO, ['--address', '127.0.0.1', '--port', String(port), '--poll-mode', 'interrupt', '--size', String(1 << 20)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => echo.kill('SIGTERM'));
  await new Promise((resolve) => echo.stdout!.once('data', resolve));
  const r = await runFio(path.join(ROOT, 'bench', 'fio', 'nvmf-verify.fio'), {
    NVMF_TRANSPORT: 'echo', NVMF_PORT: String(port), NVMF_NQN: SUBNQN,
  }, ['--section=verify-randwrite-4k-qd32']);
  t.not(r.code, 0, 'fio fails');
  t.match(r.stderr, /verify: bad (magic header|header offset)|verify: .*mismatch/, 'with a verify error');
});

t.test('engine errors are reported by fio', { skip }, async (t) => {
  const s = await serveRam({ sizes: [8 << 20], reactors: 1 });
  t.teardown(() => s.target.destroy());
  const r = await runFio(path.join(ROOT, 'bench', 'fio', 'nvmf.fio'), {
    NVMF_TRANSPORT: 'tcp', NVMF_PORT: String(s.port), NVMF_NQN: 'nqn.2024-01.io.nvmf-target:nobody', NVMF_RUNTIME: '200ms', NVMF_RAMP: '0',
  }, ['--section=randread-4k-qd1']);
  t.not(r.code, 0, 'fio fails');
  t.match(r.stderr, /nvmf: .*nobody/, 'naming the subsystem');
  const job = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-fio-job-')), 'bad-bs.fio');
  t.teardown(() => fs.rmSync(path.dirname(job), { recursive: true, force: true }));
  fs.writeFileSync(job, [
    '[bad-bs]', `ioengine=external:${ENGINE}`, 'transport=tcp', 'traddr=127.0.0.1', `trsvcid=${s.port}`,
    `subnqn=${SUBNQN}`, 'filename=nvmf', 'thread=1', 'rw=randread', 'bs=1000', 'size=1m', '',
  ].join('\n'));
  const r2 = await runFio(job, {});
  t.not(r2.code, 0, 'an unaligned block size fails');
  t.match(r2.stderr, /not aligned to the 512-byte block size/, 'saying why');
});

t.test('incapsule=131072 against a target with 128 KiB of in-capsule data: 128 KiB writes verify', { skip }, async (t) => {
  const { target, port } = await serveRam({ sizes: [16 << 20], reactors: 1, inCapsuleDataSize: 131072 });
  t.teardown(() => target.destroy());
  const job = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-fio-job-')), 'icd.fio');
  t.teardown(() => fs.rmSync(path.dirname(job), { recursive: true, force: true }));
  fs.writeFileSync(job, [
    '[icd]', `ioengine=external:${ENGINE}`, 'transport=tcp', 'traddr=127.0.0.1', `trsvcid=${port}`,
    `subnqn=${SUBNQN}`, 'incapsule=131072', 'filename=nvmf', 'thread=1', 'rw=write', 'bs=128k', 'iodepth=4',
    'size=8m', 'verify=crc32c', 'do_verify=1', '',
  ].join('\n'));
  const r = await runFio(job, {});
  t.equal(r.code, 0, `fio exits 0 ${r.stderr.slice(0, 300)}`);
  t.equal(r.jobs[0]?.error, 0, 'no error');
  t.equal(r.jobs[0]?.write.io_bytes, 8 << 20, 'wrote 8 MiB in 128 KiB writes');
  t.equal(r.jobs[0]?.read.io_bytes, 8 << 20, 'and verified it by reading back');
});
