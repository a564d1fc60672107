/**
 * DH-HMAC-CHAP keys at the API edge: validation errors that name the field,
 * key files and their permissions, the gen-key CLI, and the places keys
 * enter the target (addHost, setHostKeys) and the options that govern them.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NvmfError, Target, connect, generateDhchapKey, parseDhchapKey, readDhchapKeyFile } from '../dist';
import { keyText } from './helpers/raw-auth';
import { HOSTNQN, SUBNQN, freePort } from './helpers/target';
import { startServe } from './helpers/child';

function invalidKey(t: Test, fn: () => unknown, re: RegExp, what: string): void {
  try {
    fn();
    t.fail(`${what}: accepted`);
  } catch (e) {
    t.ok(e instanceof NvmfError, `${what}: NvmfError`);
    t.equal((e as NvmfError).code, 'ERR_INVALID_KEY', `${what}: ERR_INVALID_KEY`);
    t.match((e as Error).message, re, `${what}: the message says what is wrong`);
  }
}

t.test('parseDhchapKey names what is wrong', async (t) => {
  const secret = randomBytes(32);
  const good = keyText(1, secret);
  t.same(parseDhchapKey(good), { hmac: 1, length: 32 });
  invalidKey(t, () => parseDhchapKey('DHHC-2:01:' + good.slice(10)), /DHHC-1/, 'wrong prefix');
  invalidKey(t, () => parseDhchapKey(good.replace('DHHC-1:01:', 'DHHC-1:04:')), /hash identifier/, 'hash id 04');
  invalidKey(t, () => parseDhchapKey(good.replace('DHHC-1:01:', 'DHHC-1:1:')), /hash identifier/, 'one-digit hash id');
  invalidKey(t, () => parseDhchapKey(good.replace(/:([A-Za-z0-9+/]{4})/, ':!!!!')), /base64/, 'bad base64');
  invalidKey(t, () => parseDhchapKey(keyText(0, randomBytes(16))), /32, 48 or 64/, '16-byte secret');
  const raw = Buffer.from(good.split(':')[2]!, 'base64');
  raw[raw.length - 1] ^= 0xff;
  invalidKey(t, () => parseDhchapKey(`DHHC-1:01:${raw.toString('base64')}:`), /CRC/, 'bad CRC');
  invalidKey(t, () => parseDhchapKey(good.slice(0, -1)), /terminating/, 'no terminating colon');
  invalidKey(t, () => parseDhchapKey(good + 'x'), /after the key/, 'trailing garbage');
  invalidKey(t, () => parseDhchapKey(42 as unknown as string), /string/, 'not a string');
});

t.test('generateDhchapKey follows nvme gen-dhchap-key', async (t) => {
  t.same(parseDhchapKey(generateDhchapKey()), { hmac: 0, length: 32 }, 'default: no transform, 32 bytes');
  t.same(parseDhchapKey(generateDhchapKey({ length: 64 })), { hmac: 0, length: 64 });
  t.same(parseDhchapKey(generateDhchapKey({ hmac: 3 })), { hmac: 3, length: 64 }, 'hmac 3 defaults to 64 bytes');
  t.not(generateDhchapKey(), generateDhchapKey(), 'random');
  t.throws(() => generateDhchapKey({ hmac: 1, length: 48 }), { code: 'ERR_INVALID_ARGUMENT', message: /must be 32 for hmac 1/ });
  t.throws(() => generateDhchapKey({ hmac: 5 as 1 }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => generateDhchapKey({ length: 16 as 32 }), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('key files: read, trimmed, and refused when group/others may read them', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-keys-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const key = generateDhchapKey({ hmac: 2 });
  const f = path.join(dir, 'host.key');
  fs.writeFileSync(f, key + '\n', { mode: 0o600 });
  fs.chmodSync(f, 0o600);
  t.equal(readDhchapKeyFile(f), key, 'mode 0600: read, newline trimmed');
  fs.chmodSync(f, 0o644);
  invalidKey(t, () => readDhchapKeyFile(f), /accessible by group or others \(mode 0644\)/, 'mode 0644');
  fs.chmodSync(f, 0o640);
  invalidKey(t, () => readDhchapKeyFile(f), /mode 0640/, 'mode 0640');
  t.equal(readDhchapKeyFile(f, { allowInsecure: true }), key, 'allowInsecure opts in');
  invalidKey(t, () => readDhchapKeyFile(path.join(dir, 'missing')), /cannot read key file/, 'missing file');
  const bad = path.join(dir, 'bad.key');
  fs.writeFileSync(bad, 'DHHC-1:01:nope:\n', { mode: 0o600 });
  invalidKey(t, () => readDhchapKeyFile(bad), /bad\.key.*base64|bad\.key.*32, 48 or 64/, 'a file with a broken key');

  // Keys given as { file } to the target.
  fs.chmodSync(f, 0o600);
  const target = await Target.create();
  t.teardown(() => target.destroy());
  const s = await target.createSubsystem({ nqn: SUBNQN });
  await s.addHost({ nqn: HOSTNQN, dhchapKey: { file: f } });
  t.same(s.info().hostAuth, [{ nqn: HOSTNQN, dhchapKey: true, dhchapCtrlKey: false }], 'info() says a key is set');
  t.notMatch(JSON.stringify(s.info()), key.split(':')[2]!, 'info() never shows the key');
  fs.chmodSync(f, 0o604);
  await t.rejects(s.setHostKeys(HOSTNQN, { dhchapKey: { file: f } }), { code: 'ERR_INVALID_KEY', message: /mode 0604/ });
  await s.setHostKeys(HOSTNQN, { dhchapKey: { file: f, allowInsecure: true }, dhchapCtrlKey: generateDhchapKey() });
  t.same(s.info().hostAuth, [{ nqn: HOSTNQN, dhchapKey: true, dhchapCtrlKey: true }]);
  await s.setHostKeys(HOSTNQN, {});
  t.same(s.info().hostAuth, [{ nqn: HOSTNQN, dhchapKey: false, dhchapCtrlKey: false }], 'no keys: no authentication');
});

t.test('target options and host entries validate keys and policy', async (t) => {
  await t.rejects(Target.create({ auth: { digests: ['md5' as 'sha256'] } }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.auth\.digests/ });
  await t.rejects(Target.create({ auth: { dhgroups: [] } }), { code: 'ERR_INVALID_ARGUMENT', message: /dhgroups must not be empty/ });
  await t.rejects(Target.create({ auth: { digests: ['sha256', 'sha256'] } }), { code: 'ERR_INVALID_ARGUMENT', message: /twice/ });
  const target = await Target.create({ auth: { digests: ['sha384'], dhgroups: ['ffdhe3072', 'null'], timeoutMs: 5000 } });
  t.teardown(() => target.destroy());
  t.same(target.authOptions, { digests: ['sha384'], dhgroups: ['ffdhe3072', 'null'], timeoutMs: 5000 });
  target.setAuthOptions({ digests: ['sha512', 'sha256'] });
  t.same(target.authOptions, { digests: ['sha512', 'sha256'], dhgroups: ['ffdhe3072', 'null'], timeoutMs: 5000 }, 'setAuthOptions keeps what it is not given');
  t.throws(() => target.setAuthOptions({ timeoutMs: 5 }), { code: 'ERR_INVALID_ARGUMENT' });
  const s = await target.createSubsystem({ nqn: SUBNQN });
  await t.rejects(s.addHost({ nqn: HOSTNQN, dhchapKey: 'DHHC-1:01:x:' }), { code: 'ERR_INVALID_KEY', message: /options\.dhchapKey/ });
  await t.rejects(s.addHost({ nqn: HOSTNQN, dhchapCtrlKey: generateDhchapKey() }), { code: 'ERR_INVALID_ARGUMENT', message: /needs a dhchapKey/ });
  await t.rejects(s.setHostKeys(HOSTNQN, { dhchapKey: generateDhchapKey() }), { code: 'ERR_NOT_FOUND' });
  await s.addHost({ nqn: HOSTNQN, dhchapKey: generateDhchapKey(), dhchapCtrlKey: generateDhchapKey({ hmac: 3 }) });
  t.same(s.info().hostAuth, [{ nqn: HOSTNQN, dhchapKey: true, dhchapCtrlKey: true }]);
});

t.test('npx nvmf-target gen-key', async (t) => {
  const cli = path.resolve(__dirname, '..', 'dist', 'cli.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'gen-key', ...args], { encoding: 'utf8', env: process.env });
  for (const [args, want] of [[[], { hmac: 0, length: 32 }], [['--hmac', '1'], { hmac: 1, length: 32 }], [['--hmac', '2'], { hmac: 2, length: 48 }],
    [['--hmac', '3', '--nqn', HOSTNQN], { hmac: 3, length: 64 }], [['--length', '48'], { hmac: 0, length: 48 }]] as const) {
    const r = run(...args);
    t.equal(r.status, 0, `gen-key ${args.join(' ')}: exit 0`);
    t.same(parseDhchapKey(r.stdout.trim()), want, `gen-key ${args.join(' ')}: ${JSON.stringify(want)}`);
  }
  const bad = run('--hmac', '1', '--length', '64');
  t.not(bad.status, 0, 'hmac 1 with 64 bytes is refused');
  t.match(bad.stderr, /must be 32 for hmac 1/);
  const help = spawnSync(process.execPath, [cli, 'help'], { encoding: 'utf8' });
  t.match(help.stdout, /gen-key/, 'help lists gen-key');
  t.match(help.stdout, /serve /, 'help still lists serve');
});

t.test('nvmf-target serve --host --dhchap-key', async (t) => {
  const cli = path.resolve(__dirname, '..', 'dist', 'cli.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-serve-keys-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const key = generateDhchapKey({ hmac: 1 });
  const ctrlKey = generateDhchapKey();
  const file = path.join(dir, 'ctrl.key');
  fs.writeFileSync(file, ctrlKey + '\n', { mode: 0o644 });
  fs.chmodSync(file, 0o644);

  const noHost = spawnSync(process.execPath, [cli, 'serve', '--dhchap-key', key], { encoding: 'utf8' });
  t.equal(noHost.status, 1, 'a key without --host is refused');
  t.match(noHost.stderr, /need --host/);
  const open = spawnSync(process.execPath, [cli, 'serve', '--host', HOSTNQN, '--dhchap-key', key, '--dhchap-ctrl-key', file], { encoding: 'utf8' });
  t.equal(open.status, 1, 'a key file others can read is refused');
  t.match(open.stderr, /accessible by group or others/);
  fs.chmodSync(file, 0o600);

  const port = await freePort();
  const nqn = 'nqn.2024-01.io.nvmf-target:cli-auth';
  const { child, output, exited } = await startServe(['--port', String(port), '--size', '8M', '--nqn', nqn, '--host', HOSTNQN, '--dhchap-key', key, '--dhchap-ctrl-key', file]);
  const out = output();
  t.match(out, /--dhchap-secret=<key> --dhchap-ctrl-secret=<ctrl key>/, 'the printed connect command asks for the secrets');
  t.notMatch(out, key.split(':')[2]!, 'the key is never printed');
  await t.rejects(connect({ address: '127.0.0.1', port, subnqn: nqn, hostnqn: HOSTNQN }), { code: 'ERR_AUTH_FAILED' }, 'no key: refused');
  const h = await connect({ address: '127.0.0.1', port, subnqn: nqn, hostnqn: HOSTNQN, dhchapKey: key, dhchapCtrlKey: ctrlKey });
  t.equal((await h.namespaces()).length, 1, 'authenticated both ways, namespace visible');
  await h.close();
  child.kill('SIGTERM');
  t.same(await exited, { code: 0, signal: null }, 'exits 0');
});
