import t from 'tap';
import { Target, connect, discover, NvmfError } from '../dist';
import { HOSTNQN, SUBNQN, freePort, serveRam } from './helpers/target';

const OTHER_HOST = 'nqn.2014-08.org.nvmexpress:uuid:99999999-2222-3333-4444-555555555555';

t.test('host-connect / host-disconnect events', async (t) => {
  const { target, port } = await serveRam();
  t.teardown(() => target.destroy());
  const events: Array<[string, { hostnqn: string; qid: number; subnqn: string; cntlid: number }]> = [];
  target.on('host-connect', (e) => events.push(['connect', e]));
  target.on('host-disconnect', (e) => events.push(['disconnect', e]));
  const h = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN, ioQueues: 2 });
  await h.close();
  for (let i = 0; i < 100 && !events.some(([k]) => k === 'disconnect'); i++) await new Promise((r) => setTimeout(r, 20));
  const connects = events.filter(([k]) => k === 'connect').map(([, e]) => e);
  t.same(connects.map((e) => e.qid).sort(), [0, 1, 2], 'one event per queue');
  t.ok(connects.every((e) => e.hostnqn === HOSTNQN && e.subnqn === SUBNQN && e.cntlid > 0), 'events name host, subsystem, controller');
  t.equal(events.filter(([k]) => k === 'disconnect').length, 1, 'one host-disconnect for the controller');
});

t.test('IPv6 loopback listener', async (t) => {
  const { target, port } = await serveRam({ address: '::1' });
  t.teardown(() => target.destroy());
  const h = await connect({ address: '::1', port, subnqn: SUBNQN, hostnqn: HOSTNQN });
  const data = Buffer.alloc(512, 0x5a);
  await h.write(1, 3, data);
  t.same(await h.read(1, 3, 1), data, 'I/O over ::1');
  await h.close();
});

t.test('host allow list and per-subsystem listeners, seen through discovery', async (t) => {
  const target = await Target.create();
  t.teardown(() => target.destroy());
  await target.createBdev({ name: 'r', type: 'malloc', sizeBytes: 1 << 20 });
  const open = await target.createSubsystem({ nqn: 'nqn.2024-01.io.test:open', allowAnyHost: true });
  const closed = await target.createSubsystem({ nqn: 'nqn.2024-01.io.test:closed' });
  await closed.addNamespace({ bdev: 'r' });
  await closed.addHost({ nqn: HOSTNQN });
  const [p1, p2] = [await freePort(), await freePort()];
  await target.listen({ transport: 'tcp', address: '127.0.0.1', port: p1 });
  await target.listen({ transport: 'tcp', address: '127.0.0.1', port: p2 });
  await open.addListener({ transport: 'tcp', address: '127.0.0.1', port: p2 });
  t.same(target.listenAddresses().map((l) => l.port).sort(), [p1, p2].sort());

  const mine = await discover({ address: '127.0.0.1', port: p1, hostnqn: HOSTNQN });
  const seen = mine.map((e) => `${e.subnqn}@${e.trsvcid}`).sort();
  t.same(seen, [`nqn.2024-01.io.test:closed@${p1}`, `nqn.2024-01.io.test:closed@${p2}`, `nqn.2024-01.io.test:open@${p2}`].sort(),
    'allowed host: every (subsystem, listener) it may use');
  t.ok(mine.every((e) => e.trtype === 'tcp' && e.adrfam === 'ipv4' && e.traddr === '127.0.0.1'), 'entry fields');
  const other = await discover({ address: '127.0.0.1', port: p1, hostnqn: OTHER_HOST });
  t.same(other.map((e) => e.subnqn), ['nqn.2024-01.io.test:open'], 'other host: only the open subsystem');

  await t.rejects(connect({ address: '127.0.0.1', port: p1, subnqn: 'nqn.2024-01.io.test:closed', hostnqn: OTHER_HOST }),
    { code: 'ERR_NVME_STATUS' }, 'a host not in the list cannot connect');
  const h = await connect({ address: '127.0.0.1', port: p1, subnqn: 'nqn.2024-01.io.test:closed', hostnqn: HOSTNQN });
  await h.close();
  await t.rejects(connect({ address: '127.0.0.1', port: p1, subnqn: 'nqn.2024-01.io.test:open', hostnqn: HOSTNQN }),
    { code: 'ERR_NVME_STATUS' }, 'a subsystem restricted to another listener refuses this one');
  const h2 = await connect({ address: '127.0.0.1', port: p2, subnqn: 'nqn.2024-01.io.test:open', hostnqn: HOSTNQN, ioQueues: 0 });
  await h2.close();
  await closed.removeHost(HOSTNQN);
  await t.rejects(connect({ address: '127.0.0.1', port: p1, subnqn: 'nqn.2024-01.io.test:closed', hostnqn: HOSTNQN }),
    { code: 'ERR_NVME_STATUS' }, 'a removed host cannot connect');
});

t.test('namespace add/remove while connected: changed-namespace log', async (t) => {
  const { target, subsystem, port } = await serveRam();
  t.teardown(() => target.destroy());
  const h = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN });
  t.teardown(() => h.close());
  t.same(await h.activeNamespaceIds(), [1]);
  await target.createBdev({ name: 'extra', type: 'malloc', sizeBytes: 2 << 20 });
  const nsid = await subsystem.addNamespace({ bdev: 'extra', nsid: 5 });
  t.equal(nsid, 5);
  t.same(await h.activeNamespaceIds(), [1, 5], 'the new namespace is active');
  const log = await h.getLogPage({ lid: 0x04, length: 4096 });
  t.equal(log.readUInt32LE(0), 5, 'changed namespace list names nsid 5');
  await subsystem.removeNamespace(5);
  t.same(await h.activeNamespaceIds(), [1], 'removed');
  await t.rejects(target.deleteBdev('ram0'), { code: 'ERR_BUSY' }, 'a bdev in use cannot be deleted');
  await target.deleteBdev('extra');
});

t.test('deleteSubsystem disconnects its hosts', async (t) => {
  const { target, port } = await serveRam();
  t.teardown(() => target.destroy());
  const h = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN });
  const gone = new Promise((r) => h.once('disconnected', r));
  await target.deleteSubsystem(SUBNQN);
  await gone;
  await t.rejects(h.read(1, 0, 1), { code: 'ERR_CONNECTION' });
  t.same(target.bdevs().map((b) => b.name), ['ram0'], 'bdev stays');
  await target.deleteBdev('ram0');
  await h.close();
});

t.test('control-plane validation names the field or object', async (t) => {
  const target = await Target.create();
  t.teardown(() => target.destroy());
  const bad: Array<[() => Promise<unknown>, string, RegExp]> = [
    [() => target.createBdev({ name: 'x', type: 'malloc' }), 'ERR_INVALID_ARGUMENT', /options\.sizeBytes/],
    [() => target.createBdev({ name: 'x', type: 'malloc', sizeBytes: 1000 }), 'ERR_INVALID_ARGUMENT', /multiple of blockSize/],
    [() => target.createBdev({ name: 'x y', type: 'malloc', sizeBytes: 4096 }), 'ERR_INVALID_ARGUMENT', /options\.name/],
    [() => target.createBdev({ name: 'x', type: 'disk' as never, sizeBytes: 4096 }), 'ERR_INVALID_ARGUMENT', /options\.type/],
    [() => target.createBdev({ name: 'x', type: 'uring' }), 'ERR_INVALID_ARGUMENT', /options\.path/],
    [() => target.createBdev({ name: 'x', type: 'uring', path: '/nonexistent/dir/f.img' }), 'ERR_INVALID_ARGUMENT', /\/nonexistent\/dir\/f\.img/],
    [() => target.createSubsystem({ nqn: 'not-an-nqn' }), 'ERR_INVALID_ARGUMENT', /options\.nqn/],
    [() => target.createSubsystem({ nqn: 'nqn.2014-08.org.nvmexpress.discovery' }), 'ERR_INVALID_ARGUMENT', /discovery/],
    [() => target.createSubsystem({ nqn: SUBNQN, serial: 'x'.repeat(21) }), 'ERR_INVALID_ARGUMENT', /options\.serial/],
    [() => target.listen({ address: 'localhost', port: 4420 } as never), 'ERR_INVALID_ARGUMENT', /address\.address/],
    [() => target.listen({ address: '127.0.0.1', port: 0 }), 'ERR_INVALID_ARGUMENT', /address\.port/],
    [() => target.deleteSubsystem('nqn.2024-01.io.test:none'), 'ERR_NOT_FOUND', /nqn\.2024-01\.io\.test:none/],
    [() => target.deleteBdev('none'), 'ERR_NOT_FOUND', /bdev none/],
  ];
  for (const [p, code, msg] of bad) await t.rejects(p(), { code, message: msg });
  await target.createBdev({ name: 'x', type: 'malloc', sizeBytes: 4096 });
  await t.rejects(target.createBdev({ name: 'x', type: 'malloc', sizeBytes: 4096 }), { code: 'ERR_ALREADY_EXISTS', message: /bdev x/ });
  const s = await target.createSubsystem({ nqn: SUBNQN });
  await t.rejects(target.createSubsystem({ nqn: SUBNQN }), { code: 'ERR_ALREADY_EXISTS' });
  await t.rejects(s.addNamespace({ bdev: 'nope' }), { code: 'ERR_NOT_FOUND', message: /bdev nope/ });
  await s.addNamespace({ bdev: 'x', nsid: 2 });
  await t.rejects(s.addNamespace({ bdev: 'x', nsid: 2 }), { code: 'ERR_ALREADY_EXISTS', message: /namespace 2/ });
  await t.rejects(s.addNamespace({ bdev: 'x', nsid: 33 }), { code: 'ERR_INVALID_ARGUMENT', message: /nsid 33/ });
  await t.rejects(s.removeNamespace(9), { code: 'ERR_NOT_FOUND', message: /namespace 9/ });
  await t.rejects(s.addHost({ nqn: 'bad' }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.nqn/ });
  const p = await freePort();
  await target.listen({ address: '127.0.0.1', port: p });
  await t.rejects(target.listen({ address: '127.0.0.1', port: p }), { code: 'ERR_ALREADY_EXISTS' });
  const other = await Target.create();
  await t.rejects(other.listen({ address: '127.0.0.1', port: p }), { code: 'ERR_BUSY', message: new RegExp(String(p)) });
  await other.destroy();
  await target.destroy();
  await t.rejects(target.createBdev({ name: 'y', type: 'malloc', sizeBytes: 4096 }), { code: 'ERR_DESTROYED' });
  await t.rejects(s.addHost({ nqn: HOSTNQN }), { code: 'ERR_DESTROYED' });
  t.type(new NvmfError('ERR_IO', 'x'), Error);
});

t.test('options.rdma (shared receive queue): validated, off by default, no effect on TCP', async (t) => {
  for (const [rdma, msg] of [
    [{ srq: 'yes' }, /options\.rdma\.srq must be a boolean/],
    [{ srq: true, srqDepth: 63 }, /options\.rdma\.srqDepth must be an integer from 64 to 65536/],
    [{ srq: true, srqDepth: 65537 }, /options\.rdma\.srqDepth/],
    [{ srq: true, srqDepth: 1.5 }, /options\.rdma\.srqDepth/],
    [{ srqSize: 1 }, /options\.rdma\.srqSize is not a known option/],
    [[], /options\.rdma must be an object/],
    [1, /options\.rdma must be an object/],
  ] as const) {
    await t.rejects(Target.create({ rdma } as never), { code: 'ERR_INVALID_ARGUMENT', message: msg });
  }
  const d = await Target.create();
  t.same(d.options.rdma, { srq: false, srqDepth: 4096 }, 'default: a receive queue per queue pair');
  await d.destroy();
  const dd = await Target.create({ rdma: { srq: true } });
  t.same(dd.options.rdma, { srq: true, srqDepth: 4096 }, 'rdma.srq alone: srqDepth 4096');
  await dd.destroy();
  const target = await Target.create({ rdma: { srq: true, srqDepth: 256 } });
  t.teardown(() => target.destroy());
  t.same(target.options.rdma, { srq: true, srqDepth: 256 });
  await target.createBdev({ name: 'r', type: 'malloc', sizeBytes: 1 << 20 });
  const s = await target.createSubsystem({ nqn: SUBNQN, allowAnyHost: true });
  await s.addNamespace({ bdev: 'r' });
  const port = await freePort();
  await target.listen({ address: '127.0.0.1', port });
  const h = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN });
  const data = Buffer.alloc(4096, 7);
  await h.write(1, 0, data);
  t.ok((await h.read(1, 0, 8)).equals(data), 'TCP serves as usual with rdma.srq on');
  await h.close();
});
