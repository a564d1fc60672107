/**
 * The exit matrix: a target in each state {created, listening, host
 * connected, I/O in flight, authentication in progress} ended in each way
 * {destroy(), GC only, process.exit(), worker.terminate()}, plus SIGTERM to
 * `nvmf-target serve` {listening, host connected, I/O in flight,
 * authentication in progress} (serve creates and listens in one step, so its
 * "created" is "listening"). Every child
 * exits with code 0 and no signal, and prints no sanitizer report (the
 * sanitizer suite also collects reports from log files). Children run in
 * parallel so the matrix stays fast.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, generateDhchapKey, type HostController } from '../dist';
import { RawConn } from './helpers/raw-tcp';
import { authRecv, authSend, connectAdminRaw, negotiate } from './helpers/raw-auth';
import { ROOT, runNode, sanitizerReport, type ChildResult } from './helpers/child';
import { freePort } from './helpers/target';

const states = ['created', 'listening', 'connected', 'io', 'auth'] as const;
const modes = ['destroy', 'gc', 'exit', 'worker'] as const;
const PARALLEL = Math.max(2, Math.min(6, os.cpus().length * 2));

// A small pool: at most PARALLEL children at once.
let running = 0;
const queue: Array<() => void> = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= PARALLEL) await new Promise<void>((r) => queue.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    queue.shift()?.();
  }
}

interface Case {
  name: string;
  run: () => Promise<ChildResult & { note?: string }>;
  expect?: RegExp;
  expectNote?: RegExp;
}

const cases: Case[] = [];
for (const reactors of [1, 4]) {
  for (const state of states) {
    for (const mode of modes) {
      cases.push({
        name: `${reactors} reactor(s), ${state}, ${mode}`,
        run: () => runNode([...(mode === 'gc' ? ['--expose-gc'] : []), 'test/fixtures/exit-child.js', String(reactors), state, mode], { timeoutMs: 90_000 }),
        ...(mode === 'gc' ? { expect: /gc-collected/ } : mode === 'worker' ? { expect: /worker terminated/ } : {}),
      });
    }
  }
}

/** `nvmf-target serve`, brought to a state, then SIGTERM. */
async function serveSigterm(state: 'listening' | 'connected' | 'io' | 'auth'): Promise<ChildResult & { note?: string }> {
  const port = await freePort();
  const nqn = 'nqn.2024-01.io.nvmf-target:exit-serve';
  const hostnqn = 'nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555';
  const key = generateDhchapKey({ hmac: 1, hostNqn: hostnqn });
  const authArgs = state === 'auth' ? ['--host', hostnqn, '--dhchap-key', key] : [];
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'serve', '--port', String(port), '--size', '16M', '--nqn', nqn, '--reactors', '2', ...authArgs], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const deadline = Date.now() + 60_000;
  while (!stdout.includes('Ctrl-C') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  let h: HostController | undefined;
  let raw: RawConn | undefined;
  let loops: Promise<unknown>[] = [];
  let note = '';
  if (state === 'auth') {
    // Connect, Negotiate (ffdhe2048), Challenge received; no Reply.
    raw = await RawConn.connect(port);
    await raw.handshake();
    const r = await connectAdminRaw(raw, nqn, hostnqn);
    const neg = await authSend(raw, negotiate({ tid: 1, hashes: [1], groups: [1] }));
    const ch = await authRecv(raw);
    note = `Connect status ${r?.status}, AUTHREQ ${(r?.dw0 ?? 0) >>> 16}, Negotiate status ${neg}, Challenge ${ch?.data.length ?? 0} bytes`;
  } else if (state !== 'listening') {
    h = await connect({ address: '127.0.0.1', port, subnqn: nqn, ioQueues: 2, queueDepth: 16, commandTimeoutMs: 20_000 });
    if (state === 'io') {
      let done = 0;
      const data = Buffer.alloc(16384, 1);
      loops = Array.from({ length: 16 }, async (_, k) => {
        for (let i = 0; ; i++) {
          try {
            if (i % 2) await h!.read(1, k * 32, 32);
            else await h!.write(1, k * 32, data);
            done++;
          } catch (e) {
            return (e as { code?: string }).code;
          }
        }
      });
      while (done < 100) await new Promise((r) => setTimeout(r, 5));
      note = `${done} I/Os before SIGTERM`;
    }
  }
  child.kill('SIGTERM');
  const r = await exited;
  clearTimeout(killer);
  const ends = await Promise.all(loops);
  if (ends.length) note += `; loops ended with ${[...new Set(ends)].join(', ')}`;
  await h?.close();
  raw?.close();
  return { ...r, stdout, stderr, note };
}

for (const state of ['listening', 'connected', 'io', 'auth'] as const) {
  cases.push({
    name: `nvmf-target serve, ${state}, SIGTERM`,
    run: () => serveSigterm(state),
    expect: /SIGTERM: shutting down in order/,
    // The transaction really was in progress: Connect asked for it, the Challenge came.
    ...(state === 'auth' ? { expectNote: /Connect status 0, AUTHREQ [1-9]\d*, Negotiate status 0, Challenge [1-9]\d* bytes/ } : {}),
  });
}

// Everything starts at once (bounded by the pool); the subtests collect.
const started = cases.map((c) => ({ c, result: slot(c.run) }));
const t0 = Date.now();
for (const { c, result } of started) {
  t.test(c.name, async (t) => {
    const r = await result;
    t.equal(r.signal, null, 'no signal');
    t.equal(r.code, 0, `exit code 0 (stderr: ${r.stderr.slice(0, 2000)})`);
    t.notOk(sanitizerReport(r.stderr), 'no sanitizer report');
    if (c.expect) t.match(r.stdout, c.expect);
    if (c.expectNote) t.match(r.note ?? '', c.expectNote);
    if (r.note) t.comment(r.note);
  });
}
t.test('matrix time', async (t) => {
  await Promise.all(started.map((s) => s.result));
  t.comment(`${cases.length} children in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${PARALLEL} at a time`);
  t.pass();
});
