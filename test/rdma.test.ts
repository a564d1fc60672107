/**
 * NVMe/RDMA: what must hold on every machine (the addon does not link
 * rdma-core; without libraries or devices RDMA fails with a clear
 * ERR_TRANSPORT_UNAVAILABLE and TCP keeps working), plus a loopback round
 * trip where an RDMA device exists (the VM harness: VM_RDMA_ADDR). The full
 * RDMA suite (kernel host, own host soak, AUTH_Failure1 x100) is
 * test/vm/rdma.sh: `bash scripts/test-vm.sh test/vm/rdma.sh`.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Target, connect, perf, type NvmfError } from '../dist';
import { ROOT, runNode } from './helpers/child';
import { HOSTNQN, SUBNQN, serveRam } from './helpers/target';

function addonPath(): string {
  if (process.env.NVMF_TARGET_NATIVE) return process.env.NVMF_TARGET_NATIVE;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('node-gyp-build') as { path(dir: string): string }).path(ROOT);
}

/** Why RDMA cannot work here (null when it can): no device, or no rdma-core. */
async function rdmaUnavailable(): Promise<{ code: string; message: string } | null> {
  const target = await Target.create({ reactors: 1 });
  try {
    // A port nobody uses; the address only matters once a device exists.
    await target.listen({ transport: 'rdma', address: process.env.VM_RDMA_ADDR ?? '127.0.0.1', port: 4499 });
    return null;
  } catch (e) {
    const err = e as NvmfError;
    return { code: err.code, message: err.message };
  } finally {
    await target.destroy();
  }
}

t.test('the addon does not link libibverbs or librdmacm (they are dlopen()ed)', async (t) => {
  const file = addonPath();
  t.ok(fs.existsSync(file), `addon at ${path.relative(ROOT, file)}`);
  const ldd = execFileSync('ldd', [file], { encoding: 'utf8' });
  t.notMatch(ldd, /libibverbs|librdmacm/, 'ldd lists neither library');
  let undef = '';
  try {
    undef = execFileSync('nm', ['-D', '--undefined-only', file], { encoding: 'utf8' });
  } catch {
    t.skip('nm is not installed: cannot list undefined symbols');
    return;
  }
  const rdmaSyms = undef.split('\n').filter((l) => /\b(ibv_|rdma_)\w+/.test(l));
  t.same(rdmaSyms, [], 'no undefined ibv_*/rdma_* symbol: every rdma-core call goes through the dlopen table');
});

t.test('listen({transport: "rdma"}) without RDMA fails clearly; TCP keeps working', async (t) => {
  const why = await rdmaUnavailable();
  if (why === null) {
    t.skip('this machine has an RDMA device: the unavailable path cannot be seen here');
    return;
  }
  t.equal(why.code, 'ERR_TRANSPORT_UNAVAILABLE', 'ERR_TRANSPORT_UNAVAILABLE');
  t.match(why.message, /^transport rdma: (no RDMA device found|cannot load lib\S+|cannot open the RDMA connection manager)/, `says what is missing: ${why.message}`);
  t.comment(`RDMA here: ${why.message}`);

  // The same target object still serves NVMe/TCP afterwards.
  const { target, port } = await serveRam({ sizes: [1 << 20], reactors: 1 });
  t.teardown(() => target.destroy());
  await t.rejects(target.listen({ transport: 'rdma', address: '127.0.0.1', port }), { code: 'ERR_TRANSPORT_UNAVAILABLE' }, 'a target already serving TCP refuses RDMA the same way');
  const h = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN });
  t.teardown(() => h.close());
  const d = randomBytes(4096);
  await h.write(1, 0, d);
  t.same(await h.read(1, 0, 8), d, 'TCP I/O works on that target');
  t.same(target.listenAddresses().map((l) => l.transport), ['tcp'], 'the failed RDMA listen left no listener behind');
  await t.rejects(perf({ transport: 'rdma', address: '127.0.0.1', port, subnqn: SUBNQN, durationSec: 0.1 }),
    { code: 'ERR_TRANSPORT_UNAVAILABLE', message: /^perf: transport 'rdma': (no RDMA device found|cannot load lib\S+)/ }, 'perf over RDMA: the same clear error');
});

t.test('without libibverbs: the package loads, RDMA names the missing library, TCP works', async (t) => {
  const script = `
    const { Target, connect, perf } = require(${JSON.stringify(path.join(ROOT, 'dist'))});
    (async () => {
      const out = {};
      const target = await Target.create({ reactors: 1 });
      try { await target.listen({ transport: 'rdma', address: '127.0.0.1', port: 4420 }); out.rdma = 'listened'; }
      catch (e) { out.rdma = e.code + ': ' + e.message; }
      try { await connect({ transport: 'rdma', address: '127.0.0.1', subnqn: 'nqn.x:y' }); out.host = 'connected'; }
      catch (e) { out.host = e.code + ': ' + e.message; }
      try { await perf({ transport: 'rdma', address: '127.0.0.1', subnqn: 'nqn.2024-01.io.test:nolib', durationSec: 0.1 }); out.perf = 'ran'; }
      catch (e) { out.perf = e.code + ': ' + e.message; }
      await target.createBdev({ name: 'm', type: 'malloc', sizeBytes: 1 << 20 });
      const s = await target.createSubsystem({ nqn: 'nqn.2024-01.io.test:nolib', allowAnyHost: true });
      await s.addNamespace({ bdev: 'm' });
      const l = await target.listen({ transport: 'tcp', address: '127.0.0.1', port: Number(process.argv[1]) });
      const h = await connect({ address: '127.0.0.1', port: l.port, subnqn: 'nqn.2024-01.io.test:nolib' });
      await h.write(1, 0, Buffer.alloc(512, 7));
      out.tcp = (await h.read(1, 0, 1)).equals(Buffer.alloc(512, 7)) ? 'ok' : 'mismatch';
      await h.close();
      await target.destroy();
      console.log(JSON.stringify(out));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const port = await (await import('./helpers/target')).freePort();
  const r = await runNode(['-e', script, String(port)], { env: { NVMF_RDMA_LIBIBVERBS: 'libibverbs-not-installed.so.1' } });
  t.equal(r.code, 0, `child exits 0${r.code ? `: ${r.stderr}` : ''}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
  t.match(out.rdma, /^ERR_TRANSPORT_UNAVAILABLE: transport rdma: cannot load libibverbs-not-installed\.so\.1 .*libibverbs1/, 'target: names the library and the package to install');
  t.match(out.host, /^ERR_TRANSPORT_UNAVAILABLE: transport 'rdma': cannot load libibverbs-not-installed\.so\.1/, 'host library: the same reason');
  t.match(out.perf, /^ERR_TRANSPORT_UNAVAILABLE: perf: transport 'rdma': cannot load libibverbs-not-installed\.so\.1/, 'perf: the same reason');
  t.equal(out.tcp, 'ok', 'NVMe/TCP target and host work in that process');
});

t.test('host options: RDMA has no digests; sglDescriptors is RDMA only', async (t) => {
  const base = { address: '127.0.0.1', port: 4420, subnqn: SUBNQN };
  await t.rejects(connect({ ...base, transport: 'rdma', hdgst: true }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.hdgst is NVMe\/TCP only/ });
  await t.rejects(connect({ ...base, transport: 'rdma', ddgst: true }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.ddgst/ });
  await t.rejects(connect({ ...base, sglDescriptors: 2 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.sglDescriptors is NVMe\/RDMA only/ });
  await t.rejects(connect({ ...base, transport: 'rdma', sglDescriptors: 17 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.sglDescriptors/ });
  await t.rejects(connect({ ...base, transport: 'udp' as 'tcp' }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.transport/ });
  // perf (and the fio engine, on the same client) over RDMA: the same rules.
  await t.rejects(perf({ ...base, transport: 'rdma', hdgst: true, durationSec: 0.1 }), { code: 'ERR_INVALID_ARGUMENT', message: /hdgst is NVMe\/TCP only/ });
  await t.rejects(perf({ ...base, transport: 'udp' as 'tcp', durationSec: 0.1 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.transport/ });
  await t.rejects(perf({ address: '127.0.0.1', transport: 'rdma', durationSec: 0.1 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.subnqn/ });
});

t.test('RDMA loopback I/O (needs an RDMA device: the VM harness)', async (t) => {
  const addr = process.env.VM_RDMA_ADDR;
  const why = await rdmaUnavailable();
  if (why !== null || !addr) {
    const reason = why ? why.message : 'VM_RDMA_ADDR is not set (the address of the RDMA device to use)';
    t.comment(`SKIP RDMA I/O: ${reason}`);
    t.skip(`no RDMA here (${reason}); the RDMA suite runs in the VM: bash scripts/test-vm.sh test/vm/rdma.sh`);
    return;
  }
  const target = await Target.create({ reactors: 2 });
  t.teardown(() => target.destroy());
  await target.createBdev({ name: 'm', type: 'malloc', sizeBytes: 8 << 20 });
  const sub = await target.createSubsystem({ nqn: SUBNQN, allowAnyHost: true });
  await sub.addNamespace({ bdev: 'm' });
  const l = await target.listen({ transport: 'rdma', address: addr, port: 4498 });
  t.equal(l.transport, 'rdma', 'listening on rdma');
  const h = await connect({ transport: 'rdma', address: addr, port: 4498, subnqn: SUBNQN, hostnqn: HOSTNQN, ioQueues: 2 });
  t.teardown(() => h.close());
  for (const len of [512, 8192, 65536]) {
    const d = randomBytes(len);
    await h.write(1, 8, d);
    t.same(await h.read(1, 8, len / 512), d, `${len} B round trip`);
  }
  const [g] = await target.stats();
  t.ok(g !== undefined, 'stats readable');
});

