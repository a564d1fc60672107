/**
 * Fault injection: a 'fault' bdev wraps a real one and fails, delays or
 * stalls its I/O. The host must always get an NVMe status (or, once the
 * target goes away, a connection error) -- never a hang -- and destroy()
 * must finish with backend I/O outstanding. Every scenario ends with the
 * target's connection resources back at zero.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Target, connect, type HostController, NvmfError } from '../dist';
import { HOSTNQN, SUBNQN, freePort } from './helpers/target';
import { ZERO_CONNECTIONS, ZERO_PROCESS, processSettled, sleep, targetSettled, waitFor, within } from './helpers/hardening';

const READ_ERROR = 0x281; // SCT 2 / SC 81h Unrecovered Read Error
const WRITE_FAULT = 0x280; // SCT 2 / SC 80h Write Fault

// Faults injected by this file, for the summary.
const injected = { errors: 0, delayed: 0, stalled: 0, cancelled: 0 };
function count(s: { errors: number; delayed: number; stalled: number; cancelled: number }): void {
  injected.errors += s.errors;
  injected.delayed += s.delayed;
  injected.stalled += s.stalled;
  injected.cancelled += s.cancelled;
}

async function serveFault(opts: { base?: 'malloc' | 'uring'; file?: string; reactors?: number; disconnectTimeoutMs?: number; faults?: Record<string, unknown> } = {}) {
  const target = await Target.create({ reactors: opts.reactors ?? 2, ...(opts.disconnectTimeoutMs ? { disconnectTimeoutMs: opts.disconnectTimeoutMs } : {}) });
  if (opts.base === 'uring') {
    await target.createBdev({ name: 'base0', type: 'uring', path: opts.file!, sizeBytes: 8 << 20 });
  } else {
    await target.createBdev({ name: 'base0', type: 'malloc', sizeBytes: 8 << 20 });
  }
  await target.createBdev({ name: 'f0', type: 'fault', base: 'base0', ...(opts.faults ?? {}) });
  const sub = await target.createSubsystem({ nqn: SUBNQN, allowAnyHost: true });
  await sub.addNamespace({ bdev: 'f0' });
  const port = await freePort();
  await target.listen({ transport: 'tcp', address: '127.0.0.1', port });
  return { target, sub, port };
}

async function host(port: number, extra: Record<string, unknown> = {}): Promise<HostController> {
  return connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN, commandTimeoutMs: 20_000, ...extra });
}

/** The NVMe status an I/O failed with, 0 for success; any other error is rethrown. */
async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await within(p, 15_000, 'I/O');
    return 0;
  } catch (e) {
    if (e instanceof NvmfError && e.code === 'ERR_NVME_STATUS') return e.nvmeStatus ?? -1;
    throw e;
  }
}

t.test('injected errors reach the host as NVMe statuses, never as hangs', async (t) => {
  const { target, port } = await serveFault({ faults: { errorOn: { read: true } } });
  t.teardown(() => target.destroy());
  const h = await host(port);
  const data = randomBytes(4096);
  t.equal(await statusOf(h.write(1, 0, data)), 0, 'reads fail, writes pass: write ok');
  t.equal(await statusOf(h.read(1, 0, 8)), READ_ERROR, 'read: Unrecovered Read Error');

  await target.setBdevFaults('f0', { errorOn: { write: true } });
  t.equal(await statusOf(h.write(1, 8, data)), WRITE_FAULT, 'write: Write Fault');
  t.same(await h.read(1, 0, 8), data, 'read ok again, data intact');

  await target.setBdevFaults('f0', { errorOn: { other: true } });
  t.equal(await statusOf(h.writeZeroes(1, 0, 1)), WRITE_FAULT, 'write zeroes: Write Fault');
  t.equal(await statusOf(h.deallocate(1, [{ lba: 100, blocks: 8 }])), WRITE_FAULT, 'deallocate: Write Fault');

  // A fraction of the I/O fails; the host sees exactly the injected errors.
  let stats = await target.setBdevFaults('f0', { errorOn: { read: true, write: true }, errorRate: 0.25 });
  const ios0 = stats.ios;
  const N = 400;
  const seen = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      const p = i % 2 ? h.read(1, (i * 8) % 16000, 8) : h.write(1, (i * 8) % 16000, data);
      const s = await statusOf(p);
      seen.set(s, (seen.get(s) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  stats = await target.bdevFaultStats('f0');
  const failed = (seen.get(READ_ERROR) ?? 0) + (seen.get(WRITE_FAULT) ?? 0);
  t.equal([...seen.keys()].filter((k) => k !== 0 && k !== READ_ERROR && k !== WRITE_FAULT).length, 0, `only media errors (${JSON.stringify([...seen])})`);
  t.equal(stats.ios - ios0, N, 'every I/O went through the fault bdev');
  t.equal(failed, stats.errors - 4, 'the host saw every injected error, and only those');
  t.ok(failed > N * 0.1 && failed < N * 0.4, `about a quarter failed (${failed}/${N})`);

  // errorCount: the first three reads fail, then none.
  await target.setBdevFaults('f0', { errorOn: { read: true }, errorCount: 3 });
  const results: number[] = [];
  for (let i = 0; i < 8; i++) results.push(await statusOf(h.read(1, 0, 8)));
  t.same(results, [READ_ERROR, READ_ERROR, READ_ERROR, 0, 0, 0, 0, 0], 'errorCount 3');

  stats = await target.setBdevFaults('f0', {});
  count(stats);
  t.equal(await statusOf(h.read(1, 0, 8)), 0, 'healed');
  t.comment(`errors injected in this test: ${stats.errors}`);
  await h.close();
  t.same(await targetSettled(target), ZERO_CONNECTIONS, 'connection resources back to 0');
});

t.test('delayed completions arrive late but arrive', async (t) => {
  const { target, port } = await serveFault({ faults: { delayUs: 40_000 } });
  t.teardown(() => target.destroy());
  const h = await host(port);
  const t0 = Date.now();
  await h.write(1, 0, randomBytes(512));
  const took = Date.now() - t0;
  t.ok(took >= 38, `write took at least the delay (${took} ms)`);
  const p = h.read(1, 0, 1);
  t.ok(await waitFor(async () => (await target.bdevFaultStats('f0')).held === 1, 2000, 1), 'the delayed read is held');
  await p;
  const s = await target.bdevFaultStats('f0');
  count(s);
  t.equal(s.delayed, 2, 'two completions delayed');
  t.equal(s.held, 0, 'nothing held afterwards');
  await h.close();
  t.same(await targetSettled(target), ZERO_CONNECTIONS, 'connection resources back to 0');
});

t.test('a stall holds I/O (counted as outstanding) until the faults change', async (t) => {
  const { target, port } = await serveFault({ faults: { stall: true } });
  t.teardown(() => target.destroy());
  const h = await host(port);
  let settled = false;
  const p = h.write(1, 0, randomBytes(4096)).finally(() => (settled = true));
  t.ok(await waitFor(async () => (await target.bdevFaultStats('f0')).held === 1, 3000), 'held by the stall');
  t.equal(target.resources().outstandingRequests, 1, 'one outstanding request in resources()');
  await sleep(200);
  t.notOk(settled, 'not completed while stalled');
  const s = await target.setBdevFaults('f0', {});
  count(s);
  t.equal(s.stalled, 1, 'stalled counter');
  await within(p, 5000, 'write after the stall ended');
  t.pass('completes once the stall ends');
  t.equal(target.resources().outstandingRequests, 0, 'nothing outstanding');
  await h.close();
  t.same(await targetSettled(target), ZERO_CONNECTIONS, 'connection resources back to 0');
});

t.test('destroy() with a stalled backend I/O: waits disconnectTimeoutMs, then cancels it', async (t) => {
  for (const reactors of [1, 4]) {
    const { target, port } = await serveFault({ reactors, disconnectTimeoutMs: 300, faults: { stall: true } });
    const h = await host(port, { ioQueues: 2 });
    const ios = [h.write(1, 0, randomBytes(4096)), h.read(1, 8, 8), h.write(1, 64, randomBytes(512), { queue: 2 })].map((p) =>
      p.then(() => 'ok', (e: NvmfError) => (e.code === 'ERR_NVME_STATUS' ? `status 0x${e.nvmeStatus?.toString(16)}` : e.code)),
    );
    t.ok(await waitFor(async () => (await target.bdevFaultStats('f0')).held === 3, 3000), `${reactors} reactor(s): three I/Os stalled`);
    count(await target.bdevFaultStats('f0'));
    injected.cancelled += 3; // given back by destroy (checked through the hosts' statuses below)
    const t0 = Date.now();
    await within(target.destroy(), 15_000, 'destroy with stalled I/O');
    const took = Date.now() - t0;
    t.equal(target.state, 'destroyed', `${reactors} reactor(s): destroyed`);
    t.ok(took >= 250 && took < 5000, `${reactors} reactor(s): destroy waited the drain limit, then cancelled (${took} ms)`);
    const outcomes = await within(Promise.all(ios), 10_000, 'host outcomes');
    // Cancelled at the backend: Command Aborted due to SQ Deletion (retryable),
    // or the connection closed first.
    t.ok(outcomes.every((o) => o === 'status 0x8' || o === 'ERR_CONNECTION'), `${reactors} reactor(s): aborted, never success (${outcomes.join(', ')})`);
    await h.close();
    t.same(await processSettled(), ZERO_PROCESS, `${reactors} reactor(s): every resource returned`);
  }
});

t.test('destroy() while a backend I/O is outstanding on a slow file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-slow-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // A slow file: every completion 400 ms late. destroy() waits for it.
  {
    const { target, port } = await serveFault({ base: 'uring', file: path.join(dir, 'slow.img'), faults: { delayUs: 400_000 } });
    const h = await host(port);
    const w = h.write(1, 0, randomBytes(8192)).then(() => 'ok', (e: NvmfError) => e.code);
    t.ok(await waitFor(async () => (await target.bdevFaultStats('f0')).held === 1, 3000, 2), 'write completed by the file, held by the delay');
    injected.delayed++;
    const t0 = Date.now();
    await within(target.destroy(), 15_000, 'destroy with a slow I/O');
    const took = Date.now() - t0;
    t.ok(took < 4000, `destroy waited for the slow I/O only (${took} ms)`);
    t.match(await w, /^(ok|ERR_CONNECTION)$/, `host: ${await w}`);
    await h.close();
    t.same(await processSettled(), ZERO_PROCESS, 'every resource returned');
  }
  // A stalled file: never completes by itself; destroy cancels it.
  {
    const { target, port } = await serveFault({ base: 'uring', file: path.join(dir, 'stall.img'), disconnectTimeoutMs: 200, faults: { stall: true } });
    const h = await host(port);
    const w = h.write(1, 0, randomBytes(8192)).then(() => 'ok', (e: NvmfError) => (e.code === 'ERR_NVME_STATUS' ? `status 0x${e.nvmeStatus?.toString(16)}` : e.code));
    t.ok(await waitFor(async () => (await target.bdevFaultStats('f0')).held === 1, 3000), 'write stalled');
    const s = await target.bdevFaultStats('f0');
    count(s);
    injected.cancelled++;
    await within(target.destroy(), 15_000, 'destroy with a stalled file I/O');
    t.match(await w, /^(status 0x8|ERR_CONNECTION)$/, `host: aborted, not success (${await w})`);
    t.equal(s.cancelled, 0, 'nothing cancelled before destroy');
    await h.close();
    t.same(await processSettled(), ZERO_PROCESS, 'every resource returned');
  }
});

t.test('fault bdev arguments', async (t) => {
  const target = await Target.create();
  t.teardown(() => target.destroy());
  await t.rejects(target.createBdev({ name: 'f', type: 'fault', base: 'nope' }), { code: 'ERR_NOT_FOUND', message: /nope/ });
  await target.createBdev({ name: 'ram0', type: 'malloc', sizeBytes: 1 << 20, blockSize: 4096 });
  await t.rejects(target.createBdev({ name: 'f', type: 'fault', base: 'ram0', errorRate: 2 }), { code: 'ERR_INVALID_ARGUMENT', message: /errorRate/ });
  await t.rejects(target.createBdev({ name: 'f', type: 'fault', base: 'ram0', sizeBytes: 4096 } as never), { code: 'ERR_INVALID_ARGUMENT', message: /sizeBytes/ });
  await t.rejects(target.createBdev({ name: 'f', type: 'fault', base: 'ram0', errorOn: { sideways: true } } as never), { code: 'ERR_INVALID_ARGUMENT', message: /errorOn\.sideways/ });
  const info = await target.createBdev({ name: 'f', type: 'fault', base: 'ram0', delayUs: 10 });
  t.match(info, { name: 'f', type: 'fault', base: 'ram0', blockSize: 4096, sizeBytes: 1 << 20 }, 'geometry of its base');
  await t.rejects(target.deleteBdev('ram0'), { code: 'ERR_BUSY' }, 'the base cannot be deleted under it');
  await t.rejects(target.setBdevFaults('ram0', {}), { code: 'ERR_INVALID_ARGUMENT', message: /not a fault bdev/ });
  await t.rejects(target.setBdevFaults('zzz', {}), { code: 'ERR_NOT_FOUND' });
  await t.rejects(target.setBdevFaults('f', { delayUs: -1 }), { code: 'ERR_INVALID_ARGUMENT', message: /faults\.delayUs/ });
  await target.deleteBdev('f');
  await target.deleteBdev('ram0');
  t.pass('fault bdev, then its base, deleted');
});

t.test('summary', async (t) => {
  t.comment(`faults injected by this file: ${injected.errors} errors, ${injected.delayed} delayed completions, ` +
    `${injected.stalled} stalled I/Os (${injected.cancelled} of them cancelled by destroy)`);
  t.ok(injected.errors > 0 && injected.delayed > 0 && injected.stalled > 0);
});
