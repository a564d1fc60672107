import t from 'tap';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Target, connect, type HostController } from '../dist';
import { HOSTNQN, SUBNQN, serveRam } from './helpers/target';

function sqe(opc: number, nsid: number, slba: bigint, nlb0: number): Buffer {
  const b = Buffer.alloc(64);
  b[0] = opc;
  b.writeUInt32LE(nsid, 4);
  b.writeBigUInt64LE(slba, 40); // cdw10-11
  b.writeUInt16LE(nlb0, 48); // cdw12 NLB (0-based)
  return b;
}

t.test('round trips of every I/O command (512 and 4096-byte blocks)', async (t) => {
  const target = await Target.create({ reactors: 2 });
  t.teardown(() => target.destroy());
  const sub = await target.createSubsystem({ nqn: SUBNQN, allowAnyHost: true });
  await target.createBdev({ name: 'a', type: 'malloc', sizeBytes: 8 << 20, blockSize: 512 });
  await target.createBdev({ name: 'b', type: 'malloc', sizeBytes: 8 << 20, blockSize: 4096 });
  t.equal(await sub.addNamespace({ bdev: 'a' }), 1);
  t.equal(await sub.addNamespace({ bdev: 'b' }), 2);
  const port = (await import('./helpers/target')).freePort;
  const p = await port();
  await target.listen({ transport: 'tcp', address: '127.0.0.1', port: p });
  const h = await connect({ address: '127.0.0.1', port: p, subnqn: SUBNQN, hostnqn: HOSTNQN, ioQueues: 2 });
  t.teardown(() => h.close());

  const id = await h.identify();
  t.equal(id.nn, 32, 'identify: nn = maxNamespaces');
  t.equal(id.sgls & 0x200004, 0x200000, 'identify over TCP: transport SGL data blocks, not keyed ones');
  t.equal(id.msdbd, 1, 'identify over TCP: MSDBD 1');
  const nss = await h.namespaces();
  t.same(nss.map((n) => [n.nsid, n.blockSize, Number(n.nsze)]), [[1, 512, 16384], [2, 4096, 2048]], 'namespaces and their formats');

  for (const [nsid, bs] of [[1, 512], [2, 4096]] as const) {
    const data = randomBytes(bs * 37); // crosses the in-capsule size: R2T path
    await h.write(nsid, 5, data);
    t.same(await h.read(nsid, 5, 37), data, `ns${nsid}: write then read`);
    const small = randomBytes(bs);
    await h.write(nsid, 100, small); // in-capsule write
    t.same(await h.read(nsid, 100, 1), small, `ns${nsid}: small in-capsule write`);
    t.equal(await h.compare(nsid, 5, data), true, `ns${nsid}: compare equal`);
    const other = Buffer.from(data);
    other[7] ^= 0xff;
    t.equal(await h.compare(nsid, 5, other), false, `ns${nsid}: compare differs`);
    await h.writeZeroes(nsid, 6, 3);
    const z = await h.read(nsid, 5, 5);
    t.same(z.subarray(bs, 4 * bs), Buffer.alloc(3 * bs), `ns${nsid}: write zeroes`);
    t.same(z.subarray(0, bs), data.subarray(0, bs), `ns${nsid}: write zeroes leaves neighbours`);
    await h.deallocate(nsid, [{ lba: 20, blocks: 4 }, { lba: 30, blocks: 2 }]);
    t.same(await h.read(nsid, 20, 4), Buffer.alloc(4 * bs), `ns${nsid}: deallocate reads zeroes`);
    await h.flush(nsid);
    t.pass(`ns${nsid}: flush`);
  }
  const stats = await target.stats();
  const qps = stats.flatMap((g) => g.qpairs);
  t.equal(qps.length, 3, 'admin + 2 I/O qpairs in stats');
  const written = qps.reduce((a, q) => a + q.bytesWritten, 0);
  t.equal(written, 38 * 512 + 38 * 4096, 'bytesWritten counts each written payload byte once');
  t.ok(qps.some((q) => q.bytesRead > 0), 'bytesRead moves');
});

t.test('NVMe status codes for bad commands', async (t) => {
  const { target, port } = await serveRam({ sizes: [1 << 20] });
  t.teardown(() => target.destroy());
  const h: HostController = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN });
  t.teardown(() => h.close());
  const blocks = (1 << 20) / 512;
  const buf = Buffer.alloc(512);
  let r = await h.ioRaw(1, sqe(0x02, 1, BigInt(blocks), 0), buf, { dir: 'c2h' });
  t.equal(r.status, 0x80, 'read past the end: LBA Out of Range');
  r = await h.ioRaw(1, sqe(0x02, 1, BigInt(blocks - 1), 1), Buffer.alloc(1024), { dir: 'c2h' });
  t.equal(r.status, 0x80, 'read crossing the end: LBA Out of Range');
  r = await h.ioRaw(1, sqe(0x01, 1, BigInt(blocks), 0), buf, { dir: 'h2c' });
  t.equal(r.status, 0x80, 'write past the end: LBA Out of Range');
  r = await h.ioRaw(1, sqe(0x02, 7, 0n, 0), buf, { dir: 'c2h' });
  t.equal(r.status, 0x0b, 'unknown nsid: Invalid Namespace or Format');
  r = await h.ioRaw(1, sqe(0x02, 0, 0n, 0), buf, { dir: 'c2h' });
  t.equal(r.status, 0x0b, 'nsid 0: Invalid Namespace or Format');
  r = await h.ioRaw(1, sqe(0x7e, 1, 0n, 0));
  t.equal(r.status, 0x01, 'unknown I/O opcode: Invalid Command Opcode');
  r = await h.adminRaw(sqe(0xc5, 0, 0n, 0));
  t.equal(r.status, 0x01, 'unknown admin opcode: Invalid Command Opcode');
  // Our host refuses to send beyond MDTS, so the SGL is written by hand:
  // a transport data block (type 5, subtype Ah) claiming 256 KiB.
  const big = sqe(0x01, 1, 0n, 511);
  big[1] = 0x40; // PSDT: SGL
  big.writeUInt32LE(256 * 1024, 32);
  big[39] = 0x5a;
  r = await h.ioRaw(1, big, undefined, { keepDptr: true });
  t.equal(r.status, 0x0f, 'transfer beyond MDTS: Data SGL Length Invalid');
  r = await h.ioRaw(1, sqe(0x02, 1, 0n, 3), buf, { dir: 'c2h' });
  t.not(r.status, 0, `SGL shorter than NLB blocks is refused (status 0x${r.status.toString(16)})`);
  // The queue still works after all of that.
  await h.write(1, 0, Buffer.alloc(512, 7));
  t.same(await h.read(1, 0, 1), Buffer.alloc(512, 7), 'queue still serves');
});

t.test('64 connections x QD32 random writes and reads with verification for 10 s', async (t) => {
  const NS_BLOCKS = 65536; // 32 MiB of 512-byte blocks
  const { target, port } = await serveRam({ sizes: [NS_BLOCKS * 512], reactors: 2 });
  t.teardown(() => target.destroy());
  const CONNS = 64;
  const QD = 32;
  const SECONDS = Number(process.env.NVMF_SOAK_SECONDS ?? 10);
  const hosts = await Promise.all(
    Array.from({ length: CONNS }, () => connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN, queueDepth: QD })),
  );
  t.teardown(() => Promise.all(hosts.map((h) => h.close())));
  // Each (connection, slot) owns a disjoint region, so every read has a known
  // expected content: what that slot wrote there last.
  const slots = CONNS * QD;
  const region = Math.floor(NS_BLOCKS / slots); // blocks per slot
  let ios = 0;
  let mismatches = 0;
  const deadline = Date.now() + SECONDS * 1000;
  const worker = async (h: HostController, slot: number) => {
    const base = slot * region;
    const shadow = new Map<number, Buffer>();
    while (Date.now() < deadline) {
      const nlb = 1 + Math.floor(Math.random() * Math.min(8, region));
      const off = Math.floor(Math.random() * (region - nlb + 1));
      if (Math.random() < 0.5 || shadow.size === 0) {
        const data = randomBytes(nlb * 512);
        await h.write(1, base + off, data);
        for (let i = 0; i < nlb; i++) shadow.set(off + i, data.subarray(i * 512, (i + 1) * 512));
      } else {
        const got = await h.read(1, base + off, nlb);
        for (let i = 0; i < nlb; i++) {
          const want = shadow.get(off + i) ?? Buffer.alloc(512);
          if (!got.subarray(i * 512, (i + 1) * 512).equals(want)) mismatches++;
        }
      }
      ios++;
    }
  };
  const t0 = Date.now();
  await Promise.all(hosts.flatMap((h, c) => Array.from({ length: QD }, (_, s) => worker(h, c * QD + s))));
  const secs = (Date.now() - t0) / 1000;
  t.comment(`${ios} I/Os in ${secs.toFixed(1)} s over ${CONNS} connections x QD${QD}`);
  t.ok(ios > slots, 'every slot did I/O');
  t.equal(mismatches, 0, 'zero mismatches');
  const stats = await target.stats();
  const perGroup = stats.map((g) => g.qpairs.length);
  t.ok(perGroup.every((n) => n > 0), `connections spread over reactors (${perGroup.join('/')})`);
});

t.test('a file-backed namespace keeps its data across a target restart', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-file-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'disk.img');
  const data = randomBytes(4096 * 9);
  for (const round of [1, 2]) {
    const target = await Target.create();
    const bdev = await target.createBdev({ name: 'f', type: 'uring', path: file, sizeBytes: 16 << 20, blockSize: 4096 });
    t.equal(bdev.sizeBytes, 16 << 20, `round ${round}: size`);
    const sub = await target.createSubsystem({ nqn: SUBNQN, allowAnyHost: true });
    await sub.addNamespace({ bdev: 'f' });
    const port = await (await import('./helpers/target')).freePort();
    await target.listen({ transport: 'tcp', address: '127.0.0.1', port });
    const h = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN });
    if (round === 1) {
      await h.write(1, 11, data);
      await h.flush(1);
    } else {
      t.same(await h.read(1, 11, 9), data, 'data written before the restart reads back');
    }
    await h.close();
    await target.destroy();
  }
});

t.test('destroy() while own hosts run I/O: resolves, hosts see errors not hangs', async (t) => {
  const { target, port } = await serveRam({ sizes: [8 << 20], reactors: 2 });
  const hosts = await Promise.all(
    Array.from({ length: 8 }, () => connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN, queueDepth: 16, commandTimeoutMs: 10_000 })),
  );
  let done = 0;
  const outcomes = new Map<string, number>();
  const loop = async (h: HostController) => {
    for (;;) {
      try {
        if (Math.random() < 0.5) await h.write(1, Math.floor(Math.random() * 16000), randomBytes(4096));
        else await h.read(1, Math.floor(Math.random() * 16000), 8);
        done++;
      } catch (e) {
        const code = (e as { code: string }).code;
        outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
        return;
      }
    }
  };
  const loops = hosts.flatMap((h) => Array.from({ length: 16 }, () => loop(h)));
  await new Promise((r) => setTimeout(r, 300));
  const before = done;
  await target.destroy();
  t.equal(target.state, 'destroyed', 'destroy resolved');
  await Promise.all(loops);
  t.ok(before > 0, `I/O was running (${before} done before destroy)`);
  // Commands held while the subsystem pauses may instead complete with
  // "aborted, SQ deletion" (ERR_NVME_STATUS) — also an error, not a hang.
  t.ok([...outcomes.keys()].every((k) => k === 'ERR_CONNECTION' || k === 'ERR_NVME_STATUS'),
    `every I/O loop ended with an error (${JSON.stringify([...outcomes])})`);
  t.equal([...outcomes.values()].reduce((a, b) => a + b, 0), 128, 'all 128 loops ended');
  await Promise.all(hosts.map((h) => h.close()));
});

// Zero-copy reads from RAM send the bdev's memory itself. With a data digest
// the CRC is computed before the socket copies the bytes, so a write from
// another reactor in between used to make them disagree: the host saw Data
// Transfer Error. Queues with data digests now read through their own buffer.
t.test('data digests stay right while another reactor writes the blocks being read', async (t) => {
  const { target, port } = await serveRam({ sizes: [1 << 20], reactors: 3 });
  t.teardown(() => target.destroy());
  const WRITER = 'nqn.2014-08.org.nvmexpress:uuid:99999999-2222-3333-4444-555555555555';
  const reader = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN, hdgst: true, ddgst: true });
  t.teardown(() => reader.close());
  const writer = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: WRITER });
  t.teardown(() => writer.close());
  // The two I/O queues must sit on different reactors for the race to exist.
  const groupOf = (nqn: string) => (target.stats() as Promise<Awaited<ReturnType<typeof target.stats>>>)
    .then((gs) => gs.findIndex((g) => g.qpairs.some((q) => q.qid === 1 && q.hostnqn === nqn)));
  const [rg, wg] = [await groupOf(HOSTNQN), await groupOf(WRITER)];
  t.ok(rg >= 0 && wg >= 0 && rg !== wg, `reader's I/O queue on reactor ${rg}, writer's on ${wg}`);
  const patterns = [randomBytes(128 << 10), randomBytes(128 << 10)];
  const end = Date.now() + 2000;
  let reads = 0;
  let writes = 0;
  const failures: string[] = [];
  const readLoop = async () => {
    while (Date.now() < end && failures.length < 5) {
      await reader.read(1, 0, 256).then(() => reads++, (e: Error) => failures.push(e.message));
    }
  };
  const writeLoop = async () => {
    for (let i = 0; Date.now() < end; i++) await writer.write(1, 0, patterns[i & 1]!).then(() => writes++);
  };
  await Promise.all([readLoop(), readLoop(), readLoop(), readLoop(), writeLoop(), writeLoop(), writeLoop(), writeLoop()]);
  t.comment(`${reads} digest-checked 128 KiB reads while ${writes} writes of the same blocks ran on another reactor`);
  t.ok(reads > 0 && writes > 0, 'both loops ran');
  t.same(failures, [], 'no read failed its data digest');
});

for (const icd of [32768, 131072]) {
  t.test(`inCapsuleDataSize ${icd / 1024} KiB: writes up to it travel in the capsule, larger ones by R2T`, async (t) => {
    const { target, port } = await serveRam({ sizes: [4 << 20], reactors: 1, inCapsuleDataSize: icd });
    t.teardown(() => target.destroy());
    const h = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN, maxInCapsuleBytes: 131072 });
    t.teardown(() => h.close());
    t.equal((await h.identify()).ioccsz, (64 + icd) / 16, `Identify Controller: IOCCSZ = (64 B SQE + ${icd / 1024} KiB) / 16`);
    t.equal(h.info.inCapsuleBytes, icd, `the host sends writes up to ${icd / 1024} KiB in the capsule (bounded by IOCCSZ)`);
    // An in-capsule write the target did not take would fail (SGL length
    // invalid); what is larger goes by R2T.
    for (const [lba, size] of [[0, 32768], [64, 4096], [128, 65536], [512, 131072]] as const) {
      const d = randomBytes(size);
      await h.write(1, lba, d);
      t.same(await h.read(1, lba, size / 512), d, `${size / 1024} KiB write (${size <= icd ? 'in the capsule' : 'by R2T'}) reads back`);
    }
    const def = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN });
    t.teardown(() => def.close());
    t.equal(def.info.inCapsuleBytes, 8192, 'a host without maxInCapsuleBytes keeps its 8 KiB default');
    const d = randomBytes(16384);
    await def.write(1, 1024, d);
    t.same(await def.read(1, 1024, 32), d, 'its 16 KiB write goes by R2T and reads back');
  });
}

t.test('inCapsuleDataSize and maxInCapsuleBytes are validated', async (t) => {
  await t.rejects(Target.create({ inCapsuleDataSize: 2048 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.inCapsuleDataSize must be an integer from 4096 to 131072/ }, 'below 4 KiB');
  await t.rejects(Target.create({ inCapsuleDataSize: 262144 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.inCapsuleDataSize/ }, 'above the 128 KiB transfer size');
  await t.rejects(Target.create({ inCapsuleDataSize: 8200 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.inCapsuleDataSize must be a multiple of 16/ }, 'not a multiple of 16');
  await t.rejects(connect({ address: '127.0.0.1', port: 4420, subnqn: SUBNQN, maxInCapsuleBytes: 1 << 20 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.maxInCapsuleBytes/ }, 'host: above 128 KiB');
  await t.rejects(connect({ address: '127.0.0.1', port: 4420, subnqn: SUBNQN, maxInCapsuleBytes: -1 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.maxInCapsuleBytes/ }, 'host: negative');
});

t.test('a default target keeps a host that wants more in-capsule data at 8 KiB', async (t) => {
  const { target, port } = await serveRam({ sizes: [1 << 20], reactors: 1 });
  t.teardown(() => target.destroy());
  const h = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN, maxInCapsuleBytes: 131072 });
  t.teardown(() => h.close());
  t.equal((await h.identify()).ioccsz, (64 + 8192) / 16, 'IOCCSZ: 64 B + 8 KiB');
  t.equal(h.info.inCapsuleBytes, 8192, 'the host is bounded by the target');
  const d = randomBytes(16384);
  await h.write(1, 8, d);
  t.same(await h.read(1, 8, 32), d, '16 KiB write by R2T reads back');
});
