import t from 'tap';
import { connect } from '../dist';
import { freePort } from './helpers/target';
import { runNode, startServe } from './helpers/child';

t.test('nvmf-target serve: prints how to connect, serves a RAM namespace, stops in order on SIGTERM', async (t) => {
  const port = await freePort();
  const nqn = 'nqn.2024-01.io.nvmf-target:cli-test';
  const { child, output, exited } = await startServe(['--port', String(port), '--size', '32M', '--nqn', nqn]);
  t.match(output(), `nvme discover -t tcp -a 127.0.0.1 -s ${port}`, 'prints the discover command');
  t.match(output(), `nvme connect -t tcp -a 127.0.0.1 -s ${port} -n ${nqn}`, 'prints the connect command');
  const h = await connect({ address: '127.0.0.1', port, subnqn: nqn });
  const ns = await h.namespaces();
  t.same(ns.map((n) => Number(n.nsze) * n.blockSize), [32 << 20], 'one 32 MiB namespace');
  await h.close();
  child.kill('SIGTERM');
  const r = await exited;
  t.same(r, { code: 0, signal: null }, 'exits 0 after SIGTERM');
  t.match(output(), /SIGTERM: shutting down in order/);
});

t.test('nvmf-target serve: a bad flag fails with a message, not a stack', async (t) => {
  const r = await runNode(['dist/cli.js', 'serve', '--size', 'lots']);
  t.equal(r.code, 1);
  t.match(r.stderr, /--size must be a number/);
});

t.test('nvmf-target serve --in-capsule-data: advertised to hosts; a bad size is refused by name', async (t) => {
  const port = await freePort();
  const nqn = 'nqn.2024-01.io.nvmf-target:cli-icd';
  const { child, exited } = await startServe(['--port', String(port), '--size', '8M', '--nqn', nqn, '--in-capsule-data', '64K']);
  const h = await connect({ address: '127.0.0.1', port, subnqn: nqn, maxInCapsuleBytes: 131072 });
  t.equal((await h.identify()).ioccsz, (64 + 65536) / 16, 'IOCCSZ says 64 KiB of in-capsule data');
  t.equal(h.info.inCapsuleBytes, 65536, 'the host sends up to 64 KiB in the capsule');
  await h.close();
  child.kill('SIGTERM');
  t.same(await exited, { code: 0, signal: null }, 'exits 0 after SIGTERM');

  const bad = await runNode(['dist/cli.js', 'serve', '--in-capsule-data', '1K']);
  t.equal(bad.code, 1, '--in-capsule-data 1K: exit 1');
  t.match(bad.stderr, /inCapsuleDataSize must be an integer from 4096 to 131072/, 'names the option and its range');
});
