#!/usr/bin/env node
// npm run bench — the bundled fio profiles (bench/fio/nvmf.fio) through fio
// and nvmf-target's fio engine, against:
//   - nvmf-target, started here in its own process (pinned to one core),
//   - the loopback ceiling: the same fio, engine, profiles, I/O sizes, queue
//     depths and connection counts against a bare TCP echo server with no
//     NVMe processing (build-fio/nvmf-echo, pinned to the same core),
//   - any other NVMe/TCP target given with --target-cmd, side by side.
// fio runs on the other core. Prints a table (IOPS, MiB/s, p50/p99 latency,
// target CPU%, fraction of the ceiling) and writes JSON and an SVG chart to
// bench/results/.
//
// Only one server runs at a time: the others are SIGSTOPped, so a
// busy-polling server never takes the core from the one being measured.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { writeChart } = require('./chart');

const ROOT = path.resolve(__dirname, '..');
// Where npm run build:fio put the engine and the echo server (NVMF_FIO_BUILD:
// another build of them, e.g. cmake -S bench/native -B <dir>).
const FIO_BUILD = process.env.NVMF_FIO_BUILD ? path.resolve(process.env.NVMF_FIO_BUILD) : path.join(ROOT, 'build-fio');
const PROFILES = [
  'randread-4k-qd1', 'randread-4k-qd32', 'randwrite-4k-qd1', 'randwrite-4k-qd32',
  'randrw70-4k-qd1', 'randrw70-4k-qd32', 'seqread-128k-qd1', 'seqread-128k-qd32',
  'seqwrite-128k-qd1', 'seqwrite-128k-qd32',
];
const USAGE = `usage: npm run bench -- [options]
  --duration SEC        measured seconds per run (default 4)
  --ramp SEC            warm-up seconds per run, not measured (default 1)
  --profiles A,B        only these profiles (default: all ${PROFILES.length})
  --poll-mode M[,M]     nvmf-target reactor poll mode(s): adaptive, poll, interrupt (default adaptive);
                        several = one nvmf-target column per mode (busy-poll vs adaptive)
  --size SIZE           RAM namespace size (default 512M)
  --target-cmd "CMD"    also benchmark another NVMe/TCP target: CMD is run with sh -c (pinned to the
                        target core) and must serve NVMF_BENCH_NQN (namespace 1) on
                        NVMF_BENCH_ADDR:NVMF_BENCH_PORT (environment); repeatable
  --target-name NAME    column name for the matching --target-cmd (repeatable)
  --repeat N            run every profile N times per server, interleaved, and report the run with
                        the median IOPS (default 1; 3 steadies figures on a busy machine)
  --nice=N              run servers, fio and perf at nice level N (default 0; e.g. --nice=-10 as root on a
                        machine busy with other work)
  --no-ceiling          skip the loopback ceiling
  --no-perf-check       skip the perf-tool vs fio comparison
  --out DIR             results directory (default bench/results)
environment: NVMF_FIO_BUILD=DIR takes nvmf-fio.so and nvmf-echo from DIR instead of build-fio/
`;

function sizeBytes(s) {
  const m = /^(\d+)([kKmMgG]?)$/.exec(s);
  if (!m) die(`--size must be a number with an optional K/M/G suffix (got ${s})`);
  return Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
}

function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(1);
}

const { values: opt } = (() => {
  try {
    return parseArgs({
      options: {
        duration: { type: 'string', default: '4' },
        ramp: { type: 'string', default: '1' },
        profiles: { type: 'string' },
        'poll-mode': { type: 'string', default: 'adaptive' },
        size: { type: 'string', default: '512M' },
        'target-cmd': { type: 'string', multiple: true },
        'target-name': { type: 'string', multiple: true },
        repeat: { type: 'string', default: '1' },
        nice: { type: 'string', default: '0' },
        'no-ceiling': { type: 'boolean', default: false },
        'no-perf-check': { type: 'boolean', default: false },
        out: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    });
  } catch (e) {
    process.stderr.write(`bench: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
})();
if (opt.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const DURATION = Number(opt.duration);
const RAMP = Number(opt.ramp);
if (!(DURATION > 0) || !(RAMP >= 0)) die('--duration must be positive and --ramp not negative');
const NICE = Number(opt.nice);
if (!Number.isInteger(NICE) || NICE < -20 || NICE > 19) die('--nice must be an integer from -20 to 19');
const REPEAT = Number(opt.repeat);
if (!Number.isInteger(REPEAT) || REPEAT < 1) die('--repeat must be a positive integer');
const profiles = opt.profiles ? opt.profiles.split(',') : PROFILES;
for (const p of profiles) if (!PROFILES.includes(p)) die(`unknown profile ${p} (known: ${PROFILES.join(', ')})`);
const pollModes = opt['poll-mode'].split(',');
for (const m of pollModes) if (!['adaptive', 'poll', 'interrupt'].includes(m)) die(`unknown poll mode ${m}`);

// ---------------------------------------------------------------------------
// Machine and tools.

const CPUS = os.cpus().length;
const HAVE_TASKSET = spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;
const TARGET_CPU = 0;
const CLIENT_CPU = CPUS > 1 ? 1 : 0;
// Every server and client runs pinned (taskset) and, with --nice, at that
// scheduling priority (negative needs root): on a machine busy with other
// work it keeps the measured processes from being preempted as often.
const pinned = (cpu, argv) => {
  const a = HAVE_TASKSET && CPUS > 1 ? ['taskset', '-c', String(cpu), ...argv] : argv;
  return NICE ? ['nice', '-n', String(NICE), ...a] : a;
};
const CLK_TCK = 100;

function machine() {
  const cpu = os.cpus()[0];
  const fio = spawnSync('fio', ['--version'], { encoding: 'utf8' });
  return {
    cpuModel: cpu ? cpu.model.trim() : 'unknown',
    cpus: CPUS,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    fio: fio.status === 0 ? fio.stdout.trim() : 'missing',
    pinning: (HAVE_TASKSET && CPUS > 1 ? `servers on CPU ${TARGET_CPU}, fio on CPU ${CLIENT_CPU}` : 'none') + (NICE ? `, nice ${NICE}` : ''),
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

function ensureTools() {
  if (spawnSync('fio', ['--version'], { stdio: 'ignore' }).status !== 0) die('fio is not installed (apt-get install fio, or npm run setup)');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli.js'))) die('dist/ is missing: run npm run build:ts');
  const engine = path.join(FIO_BUILD, 'nvmf-fio.so');
  const echo = path.join(FIO_BUILD, 'nvmf-echo');
  if ((!fs.existsSync(engine) || !fs.existsSync(echo)) && !process.env.NVMF_FIO_BUILD) {
    console.log('bench: the fio engine is not built yet: npm run build:fio');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-fio.js')], { stdio: 'inherit' });
    if (r.status !== 0) die('npm run build:fio failed');
  }
  if (CPUS < 2) console.log('bench: fewer than 2 CPUs: servers and fio share the CPU, figures are not comparable');
  if (!HAVE_TASKSET) console.log('bench: taskset not found: nothing is pinned');
  return { engine, echo };
}

// ---------------------------------------------------------------------------
// Servers: our target, the echo server, other targets.

// A port nobody listens on right now (the kernel picks it).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function waitPort(address, port, ms) {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tryOnce = () => {
      const s = net.connect({ host: address, port });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > end) reject(new Error(`nothing listens on ${address}:${port}`));
        else setTimeout(tryOnce, 100);
      });
    };
    tryOnce();
  });
}

class Server {
  constructor(name, kind, argv, { address, port, nqn, env, shell }) {
    this.name = name;
    this.kind = kind; // 'nvmf-target' | 'echo' | 'other'
    this.argv = argv;
    this.address = address;
    this.port = port;
    this.nqn = nqn;
    this.env = env;
    this.shell = shell;
    this.log = [];
    this.exited = false;
  }

  async start() {
    const [cmd, ...args] = this.shell ? pinned(TARGET_CPU, ['sh', '-c', this.argv]) : this.argv;
    this.proc = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: stopped, continued and measured as a whole
    });
    const keep = (d) => {
      this.log.push(d.toString());
      if (this.log.length > 200) this.log.shift();
    };
    this.proc.stdout.on('data', keep);
    this.proc.stderr.on('data', keep);
    this.proc.on('exit', (code) => {
      this.exited = true;
      this.exitCode = code;
    });
    try {
      await waitPort(this.address, this.port, 60000);
    } catch (e) {
      this.stop();
      throw new Error(`${this.name} did not start: ${e.message}\n${this.log.join('')}`);
    }
    // A command that set a target up and exited (an in-kernel target, a
    // daemon) leaves nothing to measure or stop: CPU% is not reported.
    this.external = this.exited;
  }

  pids() {
    if (this.external || !this.proc) return [];
    const pgid = this.proc.pid;
    const out = [];
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        if (Number(f[2]) === pgid) out.push(Number(d));
      } catch {
        // exited meanwhile
      }
    }
    return out;
  }

  // utime + stime of every process in the group, in clock ticks. The
  // process list is looked up once per run (refresh()), not per sample.
  refresh() {
    this.pidList = this.pids();
  }
  cpuTicks() {
    let t = 0;
    for (const pid of this.pidList || this.pids()) {
      try {
        const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        t += Number(f[11]) + Number(f[12]);
      } catch {
        // exited meanwhile
      }
    }
    return t;
  }

  signal(sig) {
    if (this.external || !this.proc || this.exited) return;
    try {
      process.kill(-this.proc.pid, sig);
    } catch {
      // gone
    }
  }
  pause() {
    this.signal('SIGSTOP');
  }
  resume() {
    this.signal('SIGCONT');
  }
  stop() {
    this.signal('SIGCONT');
    this.signal('SIGTERM');
  }
}

// ---------------------------------------------------------------------------
// fio.

function fioEnv(engine, server, runtime, ramp) {
  return {
    ...process.env,
    NVMF_FIO_ENGINE: engine,
    NVMF_TRANSPORT: server.kind === 'echo' ? 'echo' : 'tcp',
    NVMF_ADDR: server.address,
    NVMF_PORT: String(server.port),
    NVMF_NQN: server.nqn || 'nqn.2014-08.io.nvmf-target:echo',
    NVMF_NS: '1',
    // fio reads plain numbers as whole seconds: pass milliseconds.
    NVMF_RUNTIME: `${Math.round(runtime * 1000)}ms`,
    NVMF_RAMP: `${Math.round(ramp * 1000)}ms`,
  };
}

function runFio(section, env, outFile, onTick) {
  return new Promise((resolve) => {
    const argv = pinned(CLIENT_CPU, ['fio', path.join(ROOT, 'bench', 'fio', 'nvmf.fio'), `--section=${section}`,
      '--output-format=json', `--output=${outFile}`]);
    const p = spawn(argv[0], argv.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d.toString()));
    const t0 = Date.now();
    const timer = onTick ? setInterval(() => onTick((Date.now() - t0) / 1000), 250) : null;
    p.on('exit', (code) => {
      if (timer) clearInterval(timer);
      let json = null;
      try {
        const text = fs.readFileSync(outFile, 'utf8');
        json = JSON.parse(text.slice(text.indexOf('{')));
      } catch {
        // no output
      }
      resolve({ code, json, stderr: err });
    });
  });
}

function summarize(json) {
  const job = json.jobs[0];
  const dirs = ['read', 'write'].filter((d) => job[d].total_ios > 0 || job[d].iops > 0);
  const primary = job.read.iops > 0 ? job.read : job.write;
  const pct = (d, k) => (d.lat_ns && d.lat_ns.percentile ? d.lat_ns.percentile[k] / 1000 : null);
  const lat = (d) => ({
    mean: d.lat_ns ? d.lat_ns.mean / 1000 : null,
    p50: pct(d, '50.000000'),
    p90: pct(d, '90.000000'),
    p99: pct(d, '99.000000'),
    p999: pct(d, '99.900000'),
  });
  return {
    iops: job.read.iops + job.write.iops,
    mibps: (job.read.bw_bytes + job.write.bw_bytes) / 2 ** 20,
    latUs: lat(primary),
    latOf: primary === job.read ? 'read' : 'write',
    read: job.read.iops > 0 ? { iops: job.read.iops, latUs: lat(job.read) } : undefined,
    write: job.write.iops > 0 ? { iops: job.write.iops, latUs: lat(job.write) } : undefined,
    errors: job.error,
    dirs,
  };
}

// ---------------------------------------------------------------------------
// Progress and formatting.

const TTY = process.stdout.isTTY;
const fmtK = (x) => (x == null ? '-' : x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0));
const fmtN = (x, d = 1) => (x == null ? '-' : x.toFixed(d));
const fmtPct = (x) => (x == null ? '-' : `${(x * 100).toFixed(0)}%`);

function progress(prefix, total) {
  return (elapsed) => {
    if (!TTY) return;
    const left = Math.max(0, total - elapsed);
    process.stdout.write(`\r${prefix} ${left > 0 ? `${left.toFixed(0)} s left ` : 'finishing '}`.padEnd(100));
  };
}

function table(rows, cols) {
  const w = cols.map((c) => Math.max(c.h.length, ...rows.map((r) => String(c.v(r)).length)));
  const line = (cells) => cells.map((s, i) => (i < 2 ? String(s).padEnd(w[i]) : String(s).padStart(w[i]))).join('  ');
  const out = [line(cols.map((c) => c.h)), w.map((n) => '-'.repeat(n)).join('  ')];
  for (const r of rows) out.push(line(cols.map((c) => c.v(r))));
  return out.join('\n');
}

// ---------------------------------------------------------------------------

async function main() {
  const { engine, echo } = ensureTools();
  // This process samples CPU and prints progress: keep it off the server core.
  if (HAVE_TASKSET && CPUS > 1) spawnSync('taskset', ['-a', '-p', '-c', String(CLIENT_CPU), String(process.pid)], { stdio: 'ignore' });
  fs.mkdirSync(opt.out, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-bench-'));
  const nqn = 'nqn.2024-01.io.nvmf-target:bench';
  const servers = [];
  let port = 0;
  for (const mode of pollModes) {
    port = await freePort();
    const name = pollModes.length > 1 ? `nvmf-target (${mode})` : 'nvmf-target';
    servers.push(new Server(name, 'nvmf-target',
      pinned(TARGET_CPU, [process.execPath, path.join(ROOT, 'dist', 'cli.js'), 'serve', '--address', '127.0.0.1',
        '--port', String(port), '--nqn', nqn, '--size', opt.size, '--poll-mode', mode]),
      { address: '127.0.0.1', port, nqn }));
  }
  const names = opt['target-name'] || [];
  const cmds = opt['target-cmd'] || [];
  for (let i = 0; i < cmds.length; i++) {
    const cmd = cmds[i];
    const p = await freePort();
    const other = `nqn.2024-01.io.nvmf-target:bench-other${i}`;
    servers.push(new Server(names[i] || `target-cmd ${i + 1}`, 'other', cmd, {
      address: '127.0.0.1', port: p, nqn: other, shell: true,
      env: { NVMF_BENCH_ADDR: '127.0.0.1', NVMF_BENCH_PORT: String(p), NVMF_BENCH_NQN: other, NVMF_BENCH_SIZE: opt.size },
    }));
  }
  let ceiling = null;
  if (!opt['no-ceiling']) {
    port = await freePort();
    ceiling = new Server('loopback ceiling (TCP echo)', 'echo',
      pinned(TARGET_CPU, [echo, '--address', '127.0.0.1', '--port', String(port), '--poll-mode', pollModes[0],
        '--size', String(sizeBytes(opt.size))]),
      { address: '127.0.0.1', port });
    servers.unshift(ceiling);
  }

  const cleanup = () => {
    for (const s of servers) s.stop();
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  process.on('exit', cleanup);

  const m = machine();
  console.log(`bench: ${m.cpuModel}, ${m.cpus} CPUs, ${m.kernel}, node ${m.node}, ${m.fio}; ${m.pinning}; load average ${m.loadAverage.join(" ")}`);
  console.log(`bench: ${profiles.length} profiles x ${servers.length} servers, ${RAMP} s ramp + ${DURATION} s each`);
  for (const s of servers) {
    process.stdout.write(`bench: starting ${s.name} ... `);
    await s.start();
    if (s.kind !== 'echo') {
      // Reads must return written data, not untouched (zero-page) memory.
      const r = await runFio('precondition', fioEnv(engine, s, 600, 0), path.join(tmp, 'pre.json'));
      if (r.code !== 0) die(`preconditioning ${s.name} failed:\n${r.stderr}`);
    }
    s.pause();
    console.log(s.external ? 'ready (external: CPU% not measured)' : 'ready');
  }

  let perfCheck = null;
  const total = profiles.length * servers.length * REPEAT;
  let n = 0;
  const runs = [];
  for (const prof of profiles) {
    for (let rep = 0; rep < REPEAT; rep++) for (const s of servers) {
      n++;
      const prefix = `[${String(n).padStart(String(total).length)}/${total}] ${prof.padEnd(18)} ${s.name.padEnd(28)}`;
      s.resume();
      const outFile = path.join(tmp, `${prof}-${n}.json`);
      // Server CPU over the measured window: sampled every 250 ms, then the
      // samples from the end of the ramp to just before fio finished.
      const samples = [];
      s.refresh();
      const t0 = Date.now();
      const sampler = setInterval(() => samples.push([Date.now(), s.cpuTicks()]), 250);
      const r = await runFio(prof, fioEnv(engine, s, DURATION, RAMP), outFile, progress(prefix, RAMP + DURATION + 1));
      clearInterval(sampler);
      const tEnd = Date.now();
      const win = samples.filter(([t]) => t >= t0 + (RAMP + 0.5) * 1000 && t <= tEnd - 300);
      let row = { profile: prof, server: s.name, kind: s.kind };
      if (r.code !== 0 || !r.json) {
        row.error = (r.stderr || `fio exited with ${r.code}`).trim().split('\n').slice(-3).join(' | ');
      } else {
        Object.assign(row, summarize(r.json));
        if (!s.external && win.length >= 2) {
          const [ta, ca] = win[0];
          const [tb, cb] = win[win.length - 1];
          if (tb - ta >= 500) row.cpuPercent = (100 * (cb - ca)) / CLK_TCK / ((tb - ta) / 1000);
        }
      }
      if (prof === 'randread-4k-qd32' && s.kind === 'nvmf-target' && !perfCheck && !opt['no-perf-check'] && !row.error) {
        // Pairs of back-to-back fio and perf runs under identical conditions
        // (same target, pinning, nice level, queue depth, connection, block
        // range, ramp and run time), the order alternating (fio-perf,
        // perf-fio, ...), so a burst of load from elsewhere on the machine
        // lands on both tools. Every run opens a new connection, and on this
        // kind of machine a connection's throughput can settle at about half
        // of another's for the whole run (seen with both tools alike), and
        // preemption only ever slows a run down: so the comparison is each
        // tool's best run (best of N, the usual estimator for slowdown-only
        // noise); the median of the pair ratios is reported alongside.
        const pairs = [];
        const PAIRS = 6;
        const short = Math.min(DURATION, 2);
        for (let k = 0; k < PAIRS; k++) {
          if (TTY) process.stdout.write(`\r${prefix} perf tool vs fio, pair ${k + 1}/${PAIRS}`.padEnd(100));
          const runF = async () => {
            const f = await runFio(prof, fioEnv(engine, s, short, 0.5), outFile);
            return f.json ? summarize(f.json).iops : 0;
          };
          let fi;
          let pe;
          if (k % 2 === 0) {
            fi = await runF();
            pe = await runPerf(s, short, 0.5);
          } else {
            pe = await runPerf(s, short, 0.5);
            fi = await runF();
          }
          pairs.push({ fioIops: fi, perfIops: pe.perfIops, ratio: fi ? pe.perfIops / fi : 0, error: pe.error });
        }
        const ratios = pairs.map((p) => p.ratio).sort((a, b) => a - b);
        const median = (ratios[(ratios.length - 1) >> 1] + ratios[ratios.length >> 1]) / 2;
        const bestPerf = Math.max(...pairs.map((p) => p.perfIops));
        const bestFio = Math.max(...pairs.map((p) => p.fioIops));
        const best = bestFio ? bestPerf / bestFio : 0;
        perfCheck = {
          server: s.name,
          profile: prof,
          secondsPerRun: short,
          pairs,
          bestPerfIops: bestPerf,
          bestFioIops: bestFio,
          ratio: best,
          medianPairRatio: median,
          agreeWithin10Percent: Math.abs(best - 1) <= 0.1,
          error: pairs.find((p) => p.error)?.error,
        };
      }
      s.pause();
      row.rep = rep + 1;
      runs.push(row);
      const msg = row.error
        ? `FAILED: ${row.error}`
        : `${fmtK(row.iops).padStart(7)} IOPS ${fmtN(row.mibps).padStart(8)} MiB/s  p99 ${fmtN(row.latUs.p99)} us` +
          (row.cpuPercent != null ? `  CPU ${fmtN(row.cpuPercent, 0)}%` : '');
      process.stdout.write(`${TTY ? '\r' : ''}${prefix} ${msg}`.padEnd(100) + '\n');
    }
  }
  cleanup();

  // With --repeat: each server's run with the median IOPS for the profile.
  const results = [];
  for (const prof of profiles) {
    for (const s of servers) {
      const mine = runs.filter((r) => r.profile === prof && r.server === s.name);
      const good = mine.filter((r) => !r.error).sort((a, b) => a.iops - b.iops);
      const pick = good.length ? good[(good.length - 1) >> 1] : mine[0];
      results.push(REPEAT > 1 ? { ...pick, repeats: mine.map((r) => (r.error ? null : r.iops)) } : pick);
    }
  }

  // Fractions of the ceiling.
  for (const r of results) {
    if (r.kind === 'echo' || r.error) continue;
    const c = results.find((x) => x.kind === 'echo' && x.profile === r.profile && !x.error);
    if (!c) continue;
    r.ceiling = {
      iopsFraction: r.iops / c.iops,
      // Latency: the ceiling's p99 over ours (1 = as fast as the bare echo).
      p50Fraction: c.latUs.p50 / r.latUs.p50,
      p99Fraction: c.latUs.p99 / r.latUs.p99,
      // CPU efficiency: I/Os per CPU-second, ours over the echo server's.
      cpuEfficiency: r.cpuPercent && c.cpuPercent ? r.iops / r.cpuPercent / (c.iops / c.cpuPercent) : undefined,
    };
  }

  const cols = [
    { h: 'profile', v: (r) => r.profile },
    { h: 'server', v: (r) => r.server },
    { h: 'IOPS', v: (r) => (r.error ? 'FAILED' : fmtK(r.iops)) },
    { h: 'MiB/s', v: (r) => (r.error ? '' : fmtN(r.mibps)) },
    { h: 'p50 us', v: (r) => (r.error ? '' : fmtN(r.latUs.p50)) },
    { h: 'p99 us', v: (r) => (r.error ? '' : fmtN(r.latUs.p99)) },
    { h: 'CPU%', v: (r) => (r.cpuPercent == null ? '-' : fmtN(r.cpuPercent, 0)) },
    { h: 'of ceiling', v: (r) => (r.ceiling ? fmtPct(r.ceiling.iopsFraction) : r.kind === 'echo' ? '(ceiling)' : '-') },
    { h: 'p99 vs ceiling', v: (r) => (r.ceiling ? fmtPct(r.ceiling.p99Fraction) : '-') },
  ];
  console.log('');
  console.log(table(results, cols));
  console.log('\nIOPS/MiB/s: reads + writes. Latency: submit to completion as fio sees it (reads for the mixed profile).');
  console.log('"of ceiling": IOPS as a fraction of the bare TCP echo with the same client, sizes, depth and connections;');
  console.log('"p99 vs ceiling": the echo\'s p99 over ours (100% = no added tail). CPU%: the server process, one core = 100%.');
  if (perfCheck) {
    console.log(`\nperf tool vs fio, randread-4k-qd32 on ${perfCheck.server}, ${perfCheck.pairs.length} back-to-back pairs of ` +
      `${perfCheck.secondsPerRun} s runs: ${perfCheck.pairs.map((p) => `${fmtK(p.perfIops)}/${fmtK(p.fioIops)}`).join(', ')} ` +
      `(perf/fio IOPS); best runs ${fmtK(perfCheck.bestPerfIops)}/${fmtK(perfCheck.bestFioIops)}: perf/fio = ` +
      `${(perfCheck.ratio * 100).toFixed(1)}% (${perfCheck.agreeWithin10Percent ? 'within' : 'NOT within'} 10%); ` +
      `median of the pair ratios ${(perfCheck.medianPairRatio * 100).toFixed(1)}%` + (perfCheck.error ? ` — ${perfCheck.error}` : ''));
  }

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const report = {
    date: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: m,
    config: { durationSec: DURATION, rampSec: RAMP, repeat: REPEAT, nice: NICE, size: opt.size, pollModes, profiles },
    runs: REPEAT > 1 ? runs : undefined,
    results,
    perfCheck,
  };
  const jsonFile = path.join(opt.out, `bench-${stamp}.json`);
  const svgFile = path.join(opt.out, `bench-${stamp}.svg`);
  fs.writeFileSync(jsonFile, JSON.stringify(report, null, 2));
  fs.writeFileSync(path.join(opt.out, 'latest.json'), JSON.stringify(report, null, 2));
  writeChart(svgFile, report);
  fs.copyFileSync(svgFile, path.join(opt.out, 'latest.svg'));
  console.log(`\nbench: wrote ${path.relative(ROOT, jsonFile)} and ${path.relative(ROOT, svgFile)} (also latest.json / latest.svg)`);
  fs.rmSync(tmp, { recursive: true, force: true });
  if (runs.some((r) => r.error)) process.exitCode = 1;
}

// The perf tool against the same target, right after fio's run of the same
// profile: IOPS should agree (both sit on the host library).
async function runPerf(server, duration, ramp) {
  const argv = pinned(CLIENT_CPU, [process.execPath, path.join(ROOT, 'dist', 'cli.js'), 'perf', '--json',
    '--address', server.address, '--port', String(server.port), '--nqn', server.nqn,
    '--queue-depth', '32', '--io-size', '4096', '--pattern', 'random', '--read-percent', '100',
    '--duration', String(duration), '--ramp', String(ramp)]);
  const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, encoding: 'utf8' });
  try {
    const j = JSON.parse(r.stdout);
    return { perfIops: j.result.iops, perfLatUs: j.result.latencyUs };
  } catch {
    return { perfIops: 0, error: `perf failed: ${(r.stderr || '').trim().split('\n').pop()}` };
  }
}

main().catch((e) => {
  console.error(`bench: ${e.stack || e}`);
  process.exit(1);
});
