/**
 * Clients that misbehave: stay silent, stop mid-PDU, reset the connection in
 * the middle of a transfer, vanish (killed), claim absurd lengths, or simply
 * open a thousand connections and sit there. The target must close what it
 * should, allocate nothing for lengths it rejects, keep memory per idle
 * connection bounded, and give every resource back.
 */
import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Target } from '../dist';
import { PDU, RawConn, capsule, connectCmd, icreq } from './helpers/raw-tcp';
import { cqeStatus, h2cData, rawController, readCmd, writeByR2T } from './helpers/raw-io';
import { HOSTNQN, SUBNQN, freePort, serveRam } from './helpers/target';
import { ZERO_CONNECTIONS, sleep, targetSettled, waitFor, within } from './helpers/hardening';
import { ROOT } from './helpers/child';

const ASAN = !!process.env.NVMF_ASAN;

t.test('handshake timeout: connections that never finish ICReq + Connect are closed', async (t) => {
  const tgt = await Target.create({ reactors: 2, handshakeTimeoutMs: 300 });
  t.teardown(() => tgt.destroy());
  await tgt.createBdev({ name: 'ram0', type: 'malloc', sizeBytes: 1 << 20 });
  const sub = await tgt.createSubsystem({ nqn: SUBNQN, allowAnyHost: true });
  await sub.addNamespace({ bdev: 'ram0' });
  const p = await freePort();
  await tgt.listen({ transport: 'tcp', address: '127.0.0.1', port: p });

  const { sqe, data } = connectCmd({ cid: 1, qid: 0, sqsize: 32, subnqn: SUBNQN, hostnqn: HOSTNQN });
  const full = capsule(sqe, data);
  // Connect whose 1024 data bytes come by R2T instead of in the capsule.
  const viaR2T = Buffer.from(sqe);
  viaR2T[39] = 0x5a;
  const cases: Array<[string, (c: RawConn) => Promise<void> | void]> = [
    ['silent after TCP connect', () => {}],
    ['half an ICReq', (c) => c.write(icreq().subarray(0, 60))],
    ['ICReq, then nothing', async (c) => void (await c.handshake())],
    ['ICReq, then half a Connect capsule', async (c) => { await c.handshake(); c.write(full.subarray(0, 500)); }],
    ['ICReq, Connect by R2T, then half the H2CData', async (c) => {
      await c.handshake();
      c.write(capsule(viaR2T));
      const r2t = await c.next(PDU.R2T, 2000);
      if (!r2t) throw new Error('no R2T');
      c.write(h2cData(r2t.raw.readUInt16LE(8), r2t.raw.readUInt16LE(10), 0, data).subarray(0, 24 + 400));
    }],
  ];
  for (const [name, act] of cases) {
    const c = await RawConn.connect(p);
    const t0 = Date.now();
    await act(c);
    t.ok(await c.waitClosed(5000), `${name}: closed`);
    const took = Date.now() - t0;
    t.ok(took >= 250 && took < 3000, `${name}: after the timeout (${took} ms)`);
    c.close();
  }
  const good = await RawConn.connect(p);
  await good.handshake();
  t.equal((await good.connectAdmin(SUBNQN, HOSTNQN))?.status, 0, 'a prompt host connects');
  await sleep(700);
  t.notOk(good.closed, 'and is not closed by the handshake timeout afterwards');
  good.close();
  t.same(await targetSettled(tgt), ZERO_CONNECTIONS, 'resources back to 0');
  await t.rejects(Target.create({ handshakeTimeoutMs: -1 }), { code: 'ERR_INVALID_ARGUMENT', message: /handshakeTimeoutMs/ });
});

// A queue holds SQSIZE + 1 requests. A host that sends more commands than
// that (it should not) is read no further until requests free up: every
// command is still answered, and the connection stays. (The parser used to
// miss the wake-up when the requests it waited for were freed by a batched
// send: the queue hung.)
t.test('a host that sends more commands than its queue depth waits, it is not failed', async (t) => {
  const { target, port } = await serveRam({ sizes: [1 << 20] });
  t.teardown(() => target.destroy());
  const rc = await rawController(port, SUBNQN, HOSTNQN, 0, 4);
  t.ok(rc, 'raw controller with a 4-entry I/O queue');
  rc!.io.write(Buffer.concat(Array.from({ length: 16 }, (_, i) => readCmd(100 + i, 1, i, 1))));
  const statuses = new Map<number, number>();
  for (let i = 0; i < 16; i++) {
    const r = await rc!.io.next(PDU.CapsuleResp, 5000);
    if (!r) break;
    statuses.set(r.raw.readUInt16LE(8 + 12), cqeStatus(r.raw));
  }
  t.equal(statuses.size, 16, `16 commands on a 4-entry queue: 16 responses (${statuses.size})`);
  t.ok([...statuses.values()].every((s) => s === 0), 'all successful');
  t.notOk(rc!.io.closed, 'the connection stays');
  rc!.io.close();
  rc!.admin.close();
  t.same(await targetSettled(target), ZERO_CONNECTIONS, 'resources back to 0');
});

t.test('a client that resets the connection mid-transfer', async (t) => {
  const { target, port } = await serveRam({ sizes: [8 << 20] });
  t.teardown(() => target.destroy());
  // 1. Reset in the middle of sending write data (H2CData half sent).
  let rc = await rawController(port, SUBNQN, HOSTNQN);
  t.ok(rc, 'raw controller with an I/O queue');
  rc!.io.write(writeByR2T(5, 1, 0, 64));
  const r2t = await rc!.io.next(PDU.R2T, 2000);
  t.ok(r2t, 'R2T for the write');
  rc!.io.write(h2cData(5, r2t!.raw.readUInt16LE(10), 0, Buffer.alloc(32768, 1)).subarray(0, 10000));
  await sleep(20);
  rc!.io.sock.resetAndDestroy();
  t.ok(await waitFor(() => target.resources().qpairs === 1, 5000), 'the I/O queue is gone, the admin queue stays');
  t.equal(target.resources().outstandingRequests, 0, 'nothing outstanding');
  rc!.admin.close();
  t.same(await targetSettled(target), ZERO_CONNECTIONS, 'resources back to 0');

  // 2. Reset in the middle of a capsule with in-capsule data.
  rc = await rawController(port, SUBNQN, HOSTNQN);
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x01;
  sqe[1] = 0x40;
  sqe.writeUInt16LE(6, 2);
  sqe.writeUInt32LE(1, 4);
  sqe.writeUInt32LE(4096, 32);
  sqe[39] = 0x01;
  sqe.writeUInt16LE(7, 48);
  rc!.io.write(capsule(sqe, Buffer.alloc(4096, 2)).subarray(0, 2000));
  await sleep(20);
  rc!.io.sock.resetAndDestroy();
  t.ok(await waitFor(() => target.resources().qpairs === 1, 5000), 'mid-capsule reset: I/O queue gone');
  rc!.admin.close();
  t.same(await targetSettled(target), ZERO_CONNECTIONS, 'resources back to 0');

  // 3. Reset while the target is writing: 32 reads of 128 KiB the client never reads.
  rc = await rawController(port, SUBNQN, HOSTNQN);
  rc!.io.sock.pause();
  for (let cid = 10; cid < 42; cid++) {
    const r = Buffer.alloc(64);
    r[0] = 0x02;
    r[1] = 0x40;
    r.writeUInt16LE(cid, 2);
    r.writeUInt32LE(1, 4);
    r.writeUInt32LE(131072, 32);
    r[39] = 0x5a;
    r.writeBigUInt64LE(BigInt((cid - 10) * 256), 40);
    r.writeUInt16LE(255, 48);
    rc!.io.write(capsule(r));
  }
  await waitFor(() => target.resources().outstandingRequests === 0, 2000);
  await sleep(50);
  rc!.io.sock.resetAndDestroy();
  t.ok(await waitFor(() => target.resources().qpairs === 1, 5000), 'reset while the target sends: I/O queue gone');
  rc!.admin.close();
  t.same(await targetSettled(target), ZERO_CONNECTIONS, 'resources back to 0');
});

t.test('a client that vanishes mid-I/O (killed)', async (t) => {
  const { target, port } = await serveRam({ sizes: [8 << 20] });
  t.teardown(() => target.destroy());
  for (let round = 0; round < 3; round++) {
    const child = spawn(process.execPath, [path.join(ROOT, 'test/fixtures/io-client.js'), String(port), SUBNQN], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise((r) => child.on('exit', r));
    t.ok(await waitFor(() => out.includes('running'), 20_000), `round ${round}: client runs I/O`);
    t.ok(target.resources().qpairs >= 3, `round ${round}: admin + 2 I/O queues connected`);
    child.kill('SIGKILL');
    await exited;
    t.same(await targetSettled(target), ZERO_CONNECTIONS, `round ${round}: resources back to 0 after the client vanished`);
  }
});

t.test('half a PDU after Connect: keep-alive ends it, buffers are freed', async (t) => {
  const { target, port } = await serveRam({ sizes: [8 << 20] });
  t.teardown(() => target.destroy());
  const rc = await rawController(port, SUBNQN, HOSTNQN, 1000);
  t.ok(rc, 'controller with KATO 1 s and an I/O queue');
  rc!.io.write(writeByR2T(7, 1, 0, 64));
  const r2t = await rc!.io.next(PDU.R2T, 2000);
  rc!.io.write(h2cData(7, r2t!.raw.readUInt16LE(10), 0, Buffer.alloc(32768)).subarray(0, 3000));
  rc!.admin.write(capsule(Buffer.alloc(64)).subarray(0, 33)); // and half a capsule on the admin queue
  t.ok(target.resources().requestBuffers > 0, 'the write holds a request buffer');
  t.ok(await rc!.admin.waitClosed(5000), 'admin queue closed by keep-alive');
  t.ok(await rc!.io.waitClosed(5000), 'I/O queue closed with its controller');
  rc!.admin.close();
  rc!.io.close();
  t.same(await targetSettled(target), ZERO_CONNECTIONS, 'resources back to 0');
});

function rssBytes(pid: number | 'self' = 'self'): { rss: number; hwm: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

t.test('oversize lengths are rejected before anything is allocated for them', async (t) => {
  const { target, port } = await serveRam({ sizes: [8 << 20] });
  t.teardown(() => target.destroy());
  const rounds = 200;
  const rss0 = rssBytes().rss;
  const bufs0 = target.resources().requestBufferBytes;
  let closed = 0;
  // Header lengths: each closes its connection (C2HTermReq), nothing allocated.
  const variants: Array<(c: RawConn) => Promise<void>> = [
    async (c) => { const b = icreq(); b.writeUInt32LE(0x7fffffff, 4); c.write(b); },
    async (c) => { await c.handshake(); const b = capsule(Buffer.alloc(64)); b.writeUInt32LE(0xffffffff, 4); c.write(b); },
    async (c) => { await c.handshake(); const b = capsule(Buffer.alloc(64)); b[3] = 72; b.writeUInt32LE(72 + (64 << 20), 4); c.write(b); },
    async (c) => { await c.handshake(); c.write(h2cData(1, 0, 0, Buffer.alloc(16)).fill(0xff, 16, 20)); },
    async (c) => { await c.handshake(); const b = h2cData(1, 0, 0, Buffer.alloc(16)); b.writeUInt32LE(0xfffffff0, 4); c.write(b); },
  ];
  for (let i = 0; i < rounds; i++) {
    const c = await RawConn.connect(port);
    await variants[i % variants.length]!(c);
    if (await c.waitClosed(5000)) closed++;
    c.close();
  }
  t.equal(closed, rounds, `${rounds} connections with absurd PDU lengths closed`);
  // Command lengths: the command fails, the queue lives, no buffer for it.
  const rc = await rawController(port, SUBNQN, HOSTNQN);
  const bufsBefore = target.resources().requestBufferBytes;
  const statuses = new Set<number>();
  for (let cid = 100; cid < 100 + rounds; cid++) {
    const huge = cid % 2 ? 0xffffffff : 0x80000000;
    rc!.io.write(writeByR2T(cid, 1, 0, 1, huge));
    const r = await rc!.io.next(PDU.CapsuleResp, 3000);
    statuses.add(r ? cqeStatus(r.raw) : -1);
  }
  const inCapsule = Buffer.alloc(64);
  inCapsule[0] = 0x01;
  inCapsule[1] = 0x40;
  inCapsule.writeUInt16LE(1, 2);
  inCapsule.writeUInt32LE(1, 4);
  inCapsule.writeUInt32LE(0xfffff000, 32); // in-capsule SGL claiming ~4 GiB
  inCapsule[39] = 0x01;
  rc!.io.write(capsule(inCapsule, Buffer.alloc(512)));
  const r = await rc!.io.next(PDU.CapsuleResp, 3000);
  statuses.add(r ? cqeStatus(r.raw) : -1);
  t.same([...statuses].sort(), [0x0f], `every oversize command failed with Data SGL Length Invalid (${[...statuses].map((s) => s.toString(16))})`);
  t.equal(target.resources().requestBufferBytes, bufsBefore, 'no request buffer was allocated for them');
  rc!.admin.close();
  rc!.io.close();
  t.same(await targetSettled(target), ZERO_CONNECTIONS, 'resources back to 0');
  const grew = rssBytes().rss - rss0;
  t.comment(`RSS grew ${(grew / 1048576).toFixed(1)} MiB over ${2 * rounds + 1} oversize claims of up to 4 GiB each; request buffers ${bufs0} -> ${target.resources().requestBufferBytes} bytes`);
  t.ok(grew < (ASAN ? 96 : 48) * 1048576, 'RSS stayed flat (nothing sized by the claimed lengths)');
});

t.test('1000 idle connections cost bounded memory', async (t) => {
  const N = Number(process.env.NVMF_IDLE_CONNECTIONS ?? 1000);
  const hard = Number(execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
  if (!(hard >= N + 200) && !Number.isNaN(hard)) {
    t.skip(`needs RLIMIT_NOFILE >= ${N + 200}, the hard limit here is ${hard}`);
    return;
  }
  const fdLimit = Math.min(Number.isNaN(hard) ? 65536 : hard, N * 2 + 1024);
  const port = await freePort();
  const spawnLimited = (script: string, args: string[]) =>
    spawn('bash', ['-c', `ulimit -n ${fdLimit} && exec "$0" "$@"`, process.execPath, path.join(ROOT, script), ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  const tgt = spawnLimited('test/fixtures/idle-target.js', [String(port), '0']);
  let tout = '';
  tgt.stdout.on('data', (d) => (tout += d));
  tgt.stderr.on('data', (d) => (tout += d));
  const tgtExit = new Promise<number | null>((r) => tgt.on('exit', (c) => r(c)));
  t.teardown(() => tgt.kill('SIGKILL'));
  t.ok(await waitFor(() => tout.includes('ready'), 30_000), 'target child ready');
  await sleep(200);
  const base = rssBytes(tgt.pid!);
  const cl = spawnLimited('test/fixtures/idle-clients.js', [String(port), String(N)]);
  let cout = '';
  cl.stdout.on('data', (d) => (cout += d));
  cl.stderr.on('data', (d) => (cout += d));
  t.teardown(() => cl.kill('SIGKILL'));
  const phase = async (name: string) => {
    const ok = await waitFor(() => new RegExp(`^${name} \\d+`, 'm').test(cout), 120_000, 20);
    const n = Number(new RegExp(`^${name} (\\d+)`, 'm').exec(cout)?.[1] ?? -1);
    await sleep(300);
    const m = rssBytes(tgt.pid!);
    return { ok, n, ...m };
  };
  const figures: string[] = [];
  const perConn = (bytes: number) => `${(bytes / N / 1024).toFixed(1)} KiB/connection`;
  const tcp = await phase('tcp');
  t.ok(tcp.ok && tcp.n === N, `${N} TCP connections open (${tcp.n})`);
  figures.push(`TCP only: RSS +${((tcp.rss - base.rss) / 1048576).toFixed(1)} MiB (${perConn(tcp.rss - base.rss)})`);
  cl.stdin.write('next\n');
  const ic = await phase('icreq');
  t.equal(ic.n, N, 'every connection completed ICReq');
  figures.push(`after ICReq: RSS +${((ic.rss - base.rss) / 1048576).toFixed(1)} MiB (${perConn(ic.rss - base.rss)})`);
  cl.stdin.write('next\n');
  const co = await phase('connect');
  t.equal(co.n, N, 'every connection completed an admin Connect');
  figures.push(`after Connect: RSS +${((co.rss - base.rss) / 1048576).toFixed(1)} MiB (${perConn(co.rss - base.rss)})`);
  tgt.stdin.write('resources\n');
  await waitFor(() => tout.includes('resources {'), 5000);
  const res = JSON.parse(/resources (\{.*\})/.exec(tout)![1]!);
  t.equal(res.qpairs, N, `${N} qpairs in resources()`);
  t.equal(res.controllers, N, `${N} controllers in resources()`);
  cl.stdin.write('next\n');
  t.ok(await waitFor(() => cout.includes('closed'), 30_000), 'clients closed');
  let after = { qpairs: -1, controllers: -1, requestBuffers: -1 };
  await waitFor(async () => {
    tout = '';
    tgt.stdin.write('resources\n');
    await waitFor(() => /resources (\{.*\})/.test(tout), 2000, 5);
    after = JSON.parse(/resources (\{.*\})/.exec(tout)?.[1] ?? '{}');
    return after.qpairs === 0 && after.controllers === 0;
  }, 10_000, 100);
  t.same({ q: after.qpairs, c: after.controllers, b: after.requestBuffers }, { q: 0, c: 0, b: 0 }, 'everything given back after they closed');
  const peak = rssBytes(tgt.pid!).hwm - base.rss;
  figures.push(`peak (VmHWM) +${(peak / 1048576).toFixed(1)} MiB = ${perConn(peak)}`);
  for (const f of figures) t.comment(`${N} idle connections: ${f}`);
  // Before Connect a connection holds no requests (they come with its first
  // capsule): an idle or hostile client that never connects costs little.
  const early = (ASAN ? 48 : 16) * 1024;
  t.ok((ic.rss - base.rss) / N < early, `before Connect: below ${early / 1024} KiB per connection (${perConn(ic.rss - base.rss)})`);
  // After Connect an admin queue holds SQSIZE + 1 (32) requests, not an I/O
  // queue's 128: 55 KiB measured (147 KiB when every queue got 128).
  const bound = (ASAN ? 128 : 80) * 1024;
  t.ok(peak / N < bound, `peak RSS per connection below ${bound / 1024} KiB (${perConn(peak)})`);
  tgt.stdin.end();
  t.equal(await within(tgtExit, 30_000, 'target child exit'), 0, 'target child exits cleanly');
});

