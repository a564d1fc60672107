#!/usr/bin/env node
// The NVMe/RDMA target with a shared receive queue per poll group and
// device (Target.create({ rdma: { srq: true } })), against this package's
// own host library over soft-RoCE, both in this process. Run inside the VM:
//   ../shared/vm/vm-run --timeout 900 -- node test/vm/rdma-srq.js
// or under the sanitizers:
//   ../shared/vm/vm-run --timeout 1500 -- env NVMF_ASAN_ADDON=$PWD/build-asan-srq/Release/nvmf_target.node \
//     node scripts/run-asan.js test/vm/rdma-srq.js
// Prints TAP and exits non-zero on a failure.
// (Option validation runs everywhere, in test/target-api.test.ts.)
// Steps: several hosts x several I/O queues of verified
// random I/O (far more capsules than the SRQs hold, so buffers are
// reposted); the queue depth rule (a queue that does not fit in what is
// left of the SRQ is refused, and fits once another host left); destroy
// under load; the process-wide counters back to zero.
// Env: SRQ_HOSTS (3), SRQ_IO_QUEUES (3), SRQ_QD (8), SRQ_SECONDS (5),
//      SRQ_DEPTH (192: the 3 x (32 + 3 x 8) buffers fit in one group's SRQ).
'use strict';
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const dist = require(path.resolve(__dirname, '../../dist'));
const { Target, connect } = dist;
const { sleep, tap, verifiedIo, ioUntilError, settledResources } = require('./rdma-lib');

const address = process.argv[2] || process.env.VM_RDMA_ADDR;
const PORT = 4431;
const NQN = 'nqn.2024-01.io.nvmf-target:rdma-srq';
const HOSTNQN = 'nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-5555555555aa';
const HOSTS = Number(process.env.SRQ_HOSTS ?? 3);
const IOQ = Number(process.env.SRQ_IO_QUEUES ?? 3);
const QD = Number(process.env.SRQ_QD ?? 8);
const SECONDS = Number(process.env.SRQ_SECONDS ?? 5);
const DEPTH = Number(process.env.SRQ_DEPTH ?? 192);
const REACTORS = 2;
const NS_BLOCKS = 65536; // 32 MiB of 512 B blocks

const { ok, finish, step } = tap();
const base = { transport: 'rdma', address, subnqn: NQN, hostnqn: HOSTNQN, kato: 30_000, commandTimeoutMs: 30_000 };
const qpairsOf = async (t) => (await t.stats()).reduce((n, g) => n + g.qpairs.length, 0);
async function waitQpairs(t, want, ms = 10_000) {
  let n = -1;
  const until = Date.now() + ms;
  while ((n = await qpairsOf(t)) !== want && Date.now() < until) await sleep(50);
  return n;
}

async function newTarget(rdma, port, opts = {}) {
  const t = await Target.create({ reactors: REACTORS, rdma, ...opts });
  await t.createBdev({ name: 'm', type: 'malloc', sizeBytes: NS_BLOCKS * 512, blockSize: 512 });
  const sub = await t.createSubsystem({ nqn: NQN, allowAnyHost: true });
  await sub.addNamespace({ bdev: 'm' });
  await t.listen({ transport: 'rdma', address, port });
  return t;
}

// Verified random I/O: every worker owns a region and keeps a shadow of it.
async function soak(t) {
  const hosts = await Promise.all(Array.from({ length: HOSTS }, () => connect({ ...base, port: PORT, ioQueues: IOQ, queueDepth: QD })));
  const n = await qpairsOf(t);
  const live = t.resources();
  ok(n === HOSTS * (1 + IOQ), `${HOSTS} hosts x ${IOQ} I/O queues (QD${QD}) connected over RDMA with the SRQ on: ${n} qpairs, ${live.registeredBuffers} memory registrations`);
  const info = hosts[0].info;
  console.log(`# host info: ${info.ioQueues} I/O queues, QD ${info.queueDepth}, in-capsule ${info.inCapsuleBytes} B, MDTS ${info.maxTransferBytes} B`);
  const workersPer = IOQ * QD;
  const slots = HOSTS * workersPer;
  const region = Math.floor(NS_BLOCKS / slots);
  const stats = { ios: 0, mismatches: 0, errors: 0 };
  const buffers = REACTORS * DEPTH;
  // At least SECONDS, and on a slow (shared) machine on until twice as many
  // I/Os as the SRQs hold buffers (for at most a minute).
  const deadline = Date.now() + SECONDS * 1000;
  const last = Date.now() + 60_000;
  const running = () => Date.now() < deadline || (stats.ios < 2 * buffers && Date.now() < last);
  const worker = (h, slot) => verifiedIo(h, { lbaBase: slot * region, size: region, running, stats });
  // The malloc bdev starts zeroed; so does every shadow.
  const t0 = Date.now();
  await Promise.all(hosts.flatMap((h, c) => Array.from({ length: workersPer }, (_, s) => worker(h, c * workersPer + s))));
  const secs = (Date.now() - t0) / 1000;
  const { ios, errors, mismatches, kinds } = stats;
  // Every command capsule takes an SRQ buffer: more I/Os than the SRQs
  // hold means buffers were reposted.
  ok(errors === 0 && ios > buffers,
    `${slots} workers: ${ios} verified I/Os (512 B..32 KiB) in ${secs.toFixed(1)} s (${Math.round(ios / secs)} IOPS), ${errors} errors; more than the ${buffers} SRQ buffers of ${REACTORS} groups, so they were reposted ${JSON.stringify(kinds)}`);
  ok(mismatches === 0, `zero data mismatches (${mismatches})`);
  await Promise.all(hosts.map((h) => h.close()));
  const left = await waitQpairs(t, 0);
  ok(left === 0, `every qpair is gone after the hosts closed (${left} left)`);
}

// The queue depth rule, on one poll group: an SRQ of DEPTH buffers takes
// the admin queue (32) + one I/O queue of QD 128 (160), refuses a second
// host's I/O queue (32 + 160 + 128 > 256), and takes it once the first
// host left.
async function depthRule() {
  const t = await Target.create({ reactors: 1, rdma: { srq: true, srqDepth: 256 } });
  await t.createBdev({ name: 'm', type: 'malloc', sizeBytes: 1 << 20 });
  const sub = await t.createSubsystem({ nqn: NQN, allowAnyHost: true });
  await sub.addNamespace({ bdev: 'm' });
  await t.listen({ transport: 'rdma', address, port: PORT + 1 });
  const o = { ...base, port: PORT + 1, ioQueues: 1, queueDepth: 128, timeoutMs: 20_000 };
  try {
    const a = await connect(o);
    const d = randomBytes(4096);
    await a.write(1, 0, d);
    ok((await a.read(1, 0, 8)).equals(d), 'SRQ of 256: a host with an I/O queue of 128 connects and does I/O');
    let err = null;
    const t0 = Date.now();
    try {
      const b = await connect(o);
      await b.close();
    } catch (e) {
      err = e;
    }
    ok(err !== null, `a second host whose I/O queue (128) does not fit in what is left (256 - 160 - 32) is refused in ${Date.now() - t0} ms: ${err ? `${err.code} ${err.message}` : 'it connected'}`);
    ok((await a.read(1, 0, 8)).equals(d), 'the first host still does I/O');
    await a.close();
    const left = await waitQpairs(t, 0);
    const b = await connect(o);
    await b.write(1, 8, d);
    ok(left === 0 && (await b.read(1, 8, 8)).equals(d), 'after the first host left, the second connects: its buffers were given back');
    await b.close();
  } finally {
    await t.destroy();
  }
  // An I/O queue larger than the whole SRQ is refused at the CM request.
  const s = await Target.create({ reactors: 1, rdma: { srq: true, srqDepth: 64 } });
  try {
    await s.createBdev({ name: 'm', type: 'malloc', sizeBytes: 1 << 20 });
    const sub2 = await s.createSubsystem({ nqn: NQN, allowAnyHost: true });
    await sub2.addNamespace({ bdev: 'm' });
    await s.listen({ transport: 'rdma', address, port: PORT + 3 });
    const big = await connect({ ...o, port: PORT + 3 }).then(async (h) => { await h.close(); return null; }, (e) => e);
    ok(big !== null, `SRQ of 64: an I/O queue of 128 is refused: ${big ? `${big.code} ${big.message}` : 'it connected'}`);
    const small = await connect({ ...o, port: PORT + 3, queueDepth: 32 });
    const d = randomBytes(4096);
    await small.write(1, 0, d);
    ok((await small.read(1, 0, 8)).equals(d), 'SRQ of 64: admin (32) + an I/O queue of 32 fill it exactly and do I/O');
    await small.close();
  } finally {
    await s.destroy();
  }
}

async function destroyUnderLoad() {
  const t = await newTarget({ srq: true, srqDepth: DEPTH }, PORT + 2, { pollMode: 'adaptive' });
  const hosts = await Promise.all(Array.from({ length: 4 }, () => connect({ ...base, port: PORT + 2, ioQueues: 2, queueDepth: 16 })));
  const stats = { done: 0 };
  const outcomes = {};
  const loops = hosts.flatMap((h) => Array.from({ length: 16 }, () => ioUntilError(h, { nsBlocks: NS_BLOCKS, stats, outcomes })));
  await sleep(1500);
  const before = stats.done;
  const t0 = Date.now();
  await t.destroy();
  const ms = Date.now() - t0;
  await Promise.all(loops);
  ok(before > 0 && t.state === 'destroyed', `destroy() while 4 hosts x 2 I/O queues run I/O over RDMA with the SRQ on resolves in ${ms} ms (${before} I/Os before)`);
  ok(Object.keys(outcomes).every((k) => k === 'ERR_CONNECTION' || k === 'ERR_NVME_STATUS:8'),
    `every I/O loop ended with ERR_CONNECTION (or an abort status) ${JSON.stringify(outcomes)}`);
  await Promise.all(hosts.map((h) => h.close()));
}

async function counters(what) {
  const pr = await settledResources(dist);
  ok(pr.targets === 0 && pr.qpairs === 0 && pr.controllers === 0 && pr.registeredBuffers === 0 && pr.requestBuffers === 0 &&
    pr.outstandingRequests === 0 && pr.leakedRequests === 0,
  `${what}: no target, qpair, controller, memory registration or request buffer left (${JSON.stringify(pr)})`);
}

(async () => {
  if (!address) {
    console.log('1..0 # SKIP no RDMA address (pass one, or set VM_RDMA_ADDR)');
    process.exit(0);
  }
  const steps = [
    ['soak', async () => {
      const t = await newTarget({ srq: true, srqDepth: DEPTH }, PORT);
      try {
        await soak(t);
      } finally {
        await t.destroy();
      }
      await counters('after the soak and destroy()');
    }],
    ['depth rule', () => depthRule()],
    ['destroy under load', async () => {
      await destroyUnderLoad();
      await counters('after destroy under load');
    }],
  ];
  for (const [name, fn] of steps) await step(name, fn);
  await counters('at the end');
  finish();
})().catch((e) => {
  ok(false, `unexpected: ${e.code ?? ''} ${String(e.stack).replace(/\n/g, ' | ')}`);
  finish();
});
