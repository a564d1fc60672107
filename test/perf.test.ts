import t from 'tap';
import * as net from 'node:net';
import { connect, perf, type PerfResult } from '../dist';
import { HOSTNQN, SUBNQN, freePort, serveRam } from './helpers/target';

function checkLatency(t: Tap.Test, r: PerfResult, what: string): void {
  const l = r.latencyUs;
  t.ok(l.min > 0 && l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max,
    `${what}: latency percentiles are ordered (${JSON.stringify(l)})`);
  t.ok(l.avg >= l.min && l.avg <= l.max, `${what}: the mean lies between min and max`);
}

t.test('perf drives a target: random reads, a 70/30 mix, sequential 128 KiB writes', async (t) => {
  const s = await serveRam({ sizes: [64 << 20], reactors: 1 });
  t.teardown(() => s.target.destroy());
  const base = { address: s.address, port: s.port, subnqn: SUBNQN, durationSec: 0.5 };

  const rr = await perf({ ...base, queueDepth: 8, ioSize: 4096 });
  t.equal(rr.errors, 0, 'randread: no errors');
  t.ok(rr.ios > 100, `randread: I/O completed (${rr.ios})`);
  t.equal(rr.reads, rr.ios, 'randread: only reads');
  t.equal(rr.bytes, rr.ios * 4096, 'randread: bytes = ios x size');
  t.ok(Math.abs(rr.iops - rr.ios / rr.seconds) < 1, 'randread: IOPS = ios / seconds');
  t.equal(rr.queueDepth, 8);
  t.equal(rr.blockSize, 512);
  t.equal(rr.sizeBytes, 64 << 20);
  checkLatency(t, rr, 'randread');

  const mix = await perf({ ...base, queueDepth: 4, readPercent: 70, connections: 2 });
  t.equal(mix.errors, 0, 'mix: no errors');
  t.equal(mix.connections, 2, 'mix: two connections');
  t.ok(mix.reads > 0 && mix.writes > 0, `mix: both reads (${mix.reads}) and writes (${mix.writes})`);
  const share = mix.reads / mix.ios;
  t.ok(share > 0.6 && share < 0.8, `mix: about 70% reads (${(share * 100).toFixed(1)}%)`);

  const sw = await perf({ ...base, queueDepth: 2, ioSize: 128 << 10, pattern: 'sequential', readPercent: 0, rangeBytes: 4 << 20 });
  t.equal(sw.errors, 0, 'seqwrite: no errors');
  t.equal(sw.writes, sw.ios, 'seqwrite: only writes');
  checkLatency(t, sw, 'seqwrite');
  // The writes landed: the first MiB no longer reads as zeroes.
  const h = await connect({ address: s.address, port: s.port, subnqn: SUBNQN, hostnqn: HOSTNQN });
  t.teardown(() => h.close());
  const data = await h.read(1, 0, 2048);
  t.ok(data.some((b) => b !== 0), 'seqwrite: data reached the namespace');
  const beyond = await h.read(1, (4 << 20) / 512, 8);
  t.ok(beyond.every((b) => b === 0), 'seqwrite: nothing written past rangeBytes');
});

t.test('perf --in-capsule: 128 KiB writes inside the capsule of a target that takes them', async (t) => {
  const { target, port } = await serveRam({ sizes: [16 << 20], reactors: 1, inCapsuleDataSize: 131072 });
  t.teardown(() => target.destroy());
  const r = await perf({ address: '127.0.0.1', port, subnqn: SUBNQN, durationSec: 0.5, queueDepth: 2, ioSize: 128 << 10,
    pattern: 'sequential', readPercent: 0, maxInCapsuleBytes: 131072 });
  t.equal(r.errors, 0, 'no errors');
  t.ok(r.writes > 0 && r.writes === r.ios, `only writes (${r.writes})`);
  await t.rejects(perf({ address: '127.0.0.1', port, subnqn: SUBNQN, maxInCapsuleBytes: 1 << 20 }),
    { code: 'ERR_INVALID_ARGUMENT', message: /options\.maxInCapsuleBytes/ }, 'maxInCapsuleBytes above 128 KiB is refused by name');
});

t.test('perf rejects bad options with ERR_INVALID_ARGUMENT naming them', async (t) => {
  const s = await serveRam({ sizes: [8 << 20], reactors: 1 });
  t.teardown(() => s.target.destroy());
  const base = { address: s.address, port: s.port, subnqn: SUBNQN, durationSec: 0.1 };
  await t.rejects(perf({ ...base, queueDepth: 0 }), { code: 'ERR_INVALID_ARGUMENT', message: /queueDepth/ });
  await t.rejects(perf({ ...base, readPercent: 101 }), { code: 'ERR_INVALID_ARGUMENT', message: /readPercent/ });
  await t.rejects(perf({ ...base, pattern: 'zigzag' as 'random' }), { code: 'ERR_INVALID_ARGUMENT', message: /pattern/ });
  await t.rejects(perf({ ...base, bogus: 1 } as object), { code: 'ERR_INVALID_ARGUMENT', message: /bogus/ });
  await t.rejects(perf({ ...base, subnqn: undefined }), { code: 'ERR_INVALID_ARGUMENT', message: /subnqn/ });
  // Known only once connected: the block size and MDTS.
  await t.rejects(perf({ ...base, ioSize: 1000 }), { code: 'ERR_INVALID_ARGUMENT', message: /block size/ });
  await t.rejects(perf({ ...base, ioSize: 1 << 20 }), { code: 'ERR_INVALID_ARGUMENT', message: /maximum transfer size/ });
  await t.rejects(perf({ ...base, nsid: 7 }), { code: 'ERR_CONNECTION', message: /namespace 7/ });
  await t.rejects(perf({ ...base, dhchapSecret: 'DHHC-1:00:bad:' }), { code: 'ERR_INVALID_KEY', message: /dhchap_secret/ });
});

t.test('perf reports connection failures with the host library\'s codes', async (t) => {
  const port = await freePort();
  await t.rejects(perf({ address: '127.0.0.1', port, subnqn: SUBNQN, durationSec: 0.1 }), { code: 'ERR_CONNECTION', message: /refused/i });
  const s = await serveRam({ sizes: [8 << 20], reactors: 1 });
  t.teardown(() => s.target.destroy());
  await t.rejects(perf({ address: s.address, port: s.port, subnqn: 'nqn.2024-01.io.nvmf-target:nobody', durationSec: 0.1 }),
    { code: 'ERR_NVME_STATUS', message: /nobody/ });
});

// A minimal server for the echo protocol (src-native/host/echo_wire.h): a
// 72-byte request (magic "ECHO", op, len, tag), write data after it; a
// 24-byte response, read data after it.
function echoServer(): Promise<{ port: number; close: () => Promise<void>; stats: { reads: number; writes: number } }> {
  const stats = { reads: 0, writes: 0 };
  const srv = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 72) {
        if (buf.readUInt32LE(0) !== 0x4f484345) return sock.destroy();
        const op = buf[4]!;
        const len = buf.readUInt32LE(8);
        const tag = buf.readUInt16LE(12);
        const need = 72 + (op === 2 ? len : 0);
        if (buf.length < need) break;
        buf = buf.subarray(need);
        const resp = Buffer.alloc(24 + (op === 1 ? len : 0), 0xab);
        resp.writeUInt32LE(0x50534552, 0);
        resp.writeUInt16LE(tag, 4);
        resp.writeUInt16LE(0, 6);
        resp.writeUInt32LE(op === 1 ? len : 0, 8);
        resp.fill(0, 12, 24);
        if (op === 1) stats.reads++;
        else stats.writes++;
        sock.write(resp);
      }
    });
    sock.on('error', () => {});
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      resolve({ port, stats, close: () => new Promise((r) => srv.close(() => r())) });
    });
  });
}

t.test('perf speaks the loopback-ceiling echo protocol with the same client', async (t) => {
  const e = await echoServer();
  const r = await perf({ transport: 'echo', address: '127.0.0.1', port: e.port, durationSec: 0.4, queueDepth: 4, readPercent: 50 });
  await e.close();
  t.equal(r.errors, 0, 'no errors');
  t.ok(r.reads > 0 && r.writes > 0, `reads (${r.reads}) and writes (${r.writes})`);
  // The server saw at least what was counted (the ramp-less run counts all).
  t.ok(e.stats.reads >= r.reads && e.stats.writes >= r.writes, 'every counted I/O went through the server');
  t.equal(r.blockSize, 512, 'the echo "namespace" has 512-byte blocks');
});
