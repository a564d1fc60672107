import t from 'tap';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { connect } from '../dist';
import { freePort } from './helpers/target';

t.test('nvmf-target serve: prints how to connect, serves a RAM namespace, stops in order on SIGTERM', async (t) => {
  const port = await freePort();
  const nqn = 'nqn.2024-01.io.nvmf-target:cli-test';
  const child = spawn(process.execPath, [path.resolve(__dirname, '../dist/cli.js'), 'serve', '--port', String(port), '--size', '32M', '--nqn', nqn], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const deadline = Date.now() + 20_000;
  while (!out.includes('Ctrl-C') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.match(out, `nvme discover -t tcp -a 127.0.0.1 -s ${port}`, 'prints the discover command');
  t.match(out, `nvme connect -t tcp -a 127.0.0.1 -s ${port} -n ${nqn}`, 'prints the connect command');
  const h = await connect({ address: '127.0.0.1', port, subnqn: nqn });
  const ns = await h.namespaces();
  t.same(ns.map((n) => Number(n.nsze) * n.blockSize), [32 << 20], 'one 32 MiB namespace');
  await h.close();
  child.kill('SIGTERM');
  const r = await exited;
  t.same(r, { code: 0, signal: null }, 'exits 0 after SIGTERM');
  t.match(out, /SIGTERM: shutting down in order/);
});

t.test('nvmf-target serve: a bad flag fails with a message, not a stack', async (t) => {
  const child = spawn(process.execPath, [path.resolve(__dirname, '../dist/cli.js'), 'serve', '--size', 'lots'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 1);
  t.match(err, /--size must be a number/);
});

t.test('nvmf-target serve --in-capsule-data: advertised to hosts; a bad size is refused by name', async (t) => {
  const port = await freePort();
  const nqn = 'nqn.2024-01.io.nvmf-target:cli-icd';
  const child = spawn(process.execPath, [path.resolve(__dirname, '../dist/cli.js'), 'serve', '--port', String(port), '--size', '8M', '--nqn', nqn, '--in-capsule-data', '64K'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const deadline = Date.now() + 20_000;
  while (!out.includes('Ctrl-C') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const h = await connect({ address: '127.0.0.1', port, subnqn: nqn, maxInCapsuleBytes: 131072 });
  t.equal((await h.identify()).ioccsz, (64 + 65536) / 16, 'IOCCSZ says 64 KiB of in-capsule data');
  t.equal(h.info.inCapsuleBytes, 65536, 'the host sends up to 64 KiB in the capsule');
  await h.close();
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 after SIGTERM');

  const bad = spawn(process.execPath, [path.resolve(__dirname, '../dist/cli.js'), 'serve', '--in-capsule-data', '1K'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  bad.stderr.on('data', (d) => (err += d));
  t.equal(await new Promise<number | null>((r) => bad.on('exit', (c) => r(c))), 1, '--in-capsule-data 1K: exit 1');
  t.match(err, /inCapsuleDataSize must be an integer from 4096 to 131072/, 'names the option and its range');
});
