/**
 * DH-HMAC-CHAP at the wire level, with a host written here on node:net and
 * Node's crypto: nothing but Connect and Authentication Send/Receive before
 * success (AUTH_REQUIRED), every malformed or out-of-order message answered
 * with the reason code the protocol defines (AUTH_Failure1 delivered, then
 * the connection closed), the other hosts served meanwhile, and the
 * authentication timeout.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Target, connect, generateDhchapKey, type Subsystem } from '../dist';
import { RawConn } from './helpers/raw-tcp';
import {
  REASON, authRecv, authSend, authenticateNull, connectAdminRaw, failure2, identify, keyText, negotiate,
  parseChallenge, parseFailure1, propertyGet, reply, success2,
} from './helpers/raw-auth';
import { HOSTNQN, SUBNQN, freePort } from './helpers/target';

const AUTH_REQUIRED = (1 << 8) | 0x91; // SCT 1 (command specific), SC 91h
const INVALID_FIELD = 0x0002;
const ATR = 1 << 1;

interface Env {
  target: Target;
  sub: Subsystem;
  port: number;
  secret: Buffer;
  failures: Array<{ reason: string; reasonCode: number | null; failure: string; detail: string }>;
}

async function setup(t: Tap.Test): Promise<Env> {
  const target = await Target.create({ reactors: 2, auth: { digests: ['sha256', 'sha512'], dhgroups: ['null', 'ffdhe2048'] } });
  t.teardown(() => target.destroy());
  const sub = await target.createSubsystem({ nqn: SUBNQN });
  await target.createBdev({ name: 'm', type: 'malloc', sizeBytes: 4 << 20 });
  await sub.addNamespace({ bdev: 'm' });
  const secret = randomBytes(32);
  await sub.addHost({ nqn: HOSTNQN, dhchapKey: keyText(1, secret) });
  const port = await freePort();
  await target.listen({ address: '127.0.0.1', port });
  const failures: Env['failures'] = [];
  target.on('auth-failure', (e) => failures.push(e));
  return { target, sub, port, secret, failures };
}

async function events(env: Env, n: number): Promise<void> {
  const end = Date.now() + 3000;
  while (env.failures.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
}

async function authenticating(env: Env, kato = 0): Promise<RawConn> {
  const c = await RawConn.connect(env.port);
  await c.handshake();
  const r = await connectAdminRaw(c, SUBNQN, HOSTNQN, kato);
  if (!r || r.status !== 0 || !((r.dw0 >>> 16) & ATR)) throw new Error(`connect: ${JSON.stringify(r)}`);
  return c;
}

t.test('nothing but authentication before success: AUTH_REQUIRED (SCT 1, SC 91h)', async (t) => {
  const env = await setup(t);
  const c = await authenticating(env);
  t.teardown(() => c.close());
  t.equal(await propertyGet(c), AUTH_REQUIRED, 'Property Get before authenticating');
  t.equal(await identify(c), AUTH_REQUIRED, 'Identify before authenticating');
  // Half way (negotiated, challenge read) is still not authenticated.
  t.equal(await authSend(c, negotiate({ tid: 9, hashes: [1], groups: [0] })), 0, 'Negotiate');
  const ch = await authRecv(c);
  t.ok(ch && parseChallenge(ch.data), 'Challenge');
  t.equal(await propertyGet(c), AUTH_REQUIRED, 'Property Get half way through');
  c.close();

  // A whole transaction computed with Node's crypto, then the queue works.
  const d = await authenticating(env);
  t.teardown(() => d.close());
  const r = await authenticateNull(d, { tid: 3, hmac: 1, secret: env.secret, hostnqn: HOSTNQN, subnqn: SUBNQN });
  t.equal(r.success1[0], 0x01, 'Success1: AUTH-Type DH-HMAC-CHAP');
  t.equal(r.success1[1], 0x03, 'Success1: AUTH-Id');
  t.equal(r.success1.readUInt16LE(4), 3, 'Success1: T_ID');
  t.equal(r.success1[6], 32, 'Success1: HL set even without a response');
  t.equal(r.success1[8], 0, 'Success1: RVALID 0 (unidirectional)');
  t.equal(await propertyGet(d), 0, 'Property Get after success');
  // CC.EN is still 0: the controller answers like any controller that is
  // not enabled yet, no longer with AUTH_REQUIRED.
  t.equal(await identify(d), 0x000c, 'Identify after success: Command Sequence Error (not enabled), not AUTH_REQUIRED');

  // Command-level errors are command errors, not protocol failures.
  t.equal(await authSend(d, negotiate({ tid: 4 }), { secp: 0xea }), INVALID_FIELD, 'SECP other than E9h: Invalid Field');
  t.equal(await authSend(d, negotiate({ tid: 4 }), { spsp0: 2 }), INVALID_FIELD, 'SPSP0 other than 01h: Invalid Field');
  t.equal(await authSend(d, negotiate({ tid: 4 }), { tl: 10 }), INVALID_FIELD, 'TL different from the data length: Invalid Field');
  t.equal(await propertyGet(d), 0, 'the queue is still fine');
});

t.test('host-initiated re-authentication on an enabled queue, by hand', async (t) => {
  const env = await setup(t);
  const c = await authenticating(env);
  t.teardown(() => c.close());
  await authenticateNull(c, { tid: 1, hmac: 1, secret: env.secret, hostnqn: HOSTNQN, subnqn: SUBNQN });
  t.equal(await propertyGet(c), 0, 'enabled');
  const r = await authenticateNull(c, { tid: 2, hmac: 1, secret: env.secret, hostnqn: HOSTNQN, subnqn: SUBNQN, hash: 3 });
  t.equal(r.challenge.hash, 3, 're-authentication negotiated SHA-512');
  t.equal(r.success1[1], 0x03, 're-authentication: Success1');
  // During a re-authentication the queue keeps serving commands.
  t.equal(await authSend(c, negotiate({ tid: 5, hashes: [1], groups: [0] })), 0);
  t.equal(await propertyGet(c), 0, 'commands flow during a re-authentication');
  const bad = await authenticateNull(c, { tid: 6, hmac: 1, secret: randomBytes(32), hostnqn: HOSTNQN, subnqn: SUBNQN }).catch((e) => e as Error);
  t.ok(bad instanceof Error, 'a Negotiate in the middle of a transaction is refused');
});

// Each case: what to send on a fresh authenticating connection, and the
// reason code explanation the AUTH_Failure1 must carry.
type Step = (c: RawConn, env: Env) => Promise<void>;
const send = (m: Buffer): Step => async (c) => { await authSend(c, m); };
const negotiated: Step = async (c) => {
  await authSend(c, negotiate({ tid: 7, hashes: [1], groups: [0] }));
  await authRecv(c); // the Challenge
};
const then = (...steps: Step[]): Step => async (c, env) => { for (const s of steps) await s(c, env); };

const CASES: Array<[string, Step, number, number?]> = [
  ['Auth Receive before any message (out of order)', async () => {}, REASON.incorrectMessage],
  ['Negotiate with 4 bytes too many (wrong length)', send(Buffer.concat([negotiate({ tid: 7 }), Buffer.alloc(4)])), REASON.incorrectPayload],
  ['Negotiate cut short (wrong length)', send(negotiate({ tid: 7 }).subarray(0, 40)), REASON.incorrectPayload],
  ['Negotiate with HALEN 31', send(negotiate({ tid: 7, halen: 31 })), REASON.incorrectPayload],
  ['Negotiate with no protocol descriptor (NAPD 0)', send(negotiate({ tid: 7, napd: 0 })), REASON.protocolUnusable],
  ['Negotiate without a DH-HMAC-CHAP descriptor', send(negotiate({ tid: 7, authid: 0x02 })), REASON.protocolUnusable],
  ['Negotiate asking for secure channel concatenation', send(negotiate({ tid: 7, scc: 1 })), REASON.concatMismatch],
  ['Negotiate with only SHA-384 (not allowed here)', send(negotiate({ tid: 7, hashes: [2] })), REASON.hashUnusable],
  ['Negotiate with unknown hash ids only', send(negotiate({ tid: 7, hashes: [0, 9] })), REASON.hashUnusable],
  ['Negotiate with only ffdhe8192 (not allowed here)', send(negotiate({ tid: 7, groups: [5] })), REASON.dhgroupUnusable],
  ['Negotiate with unknown DH group ids only', send(negotiate({ tid: 7, groups: [6, 0xff] })), REASON.dhgroupUnusable],
  ['unknown AUTH-Type', send(Buffer.from([0x05, 0x00, 0, 0, 7, 0, 0, 0])), REASON.incorrectMessage],
  ['unknown common AUTH-Id', send(Buffer.from([0x00, 0x03, 0, 0, 7, 0, 0, 0])), REASON.incorrectMessage],
  ['unknown DH-HMAC-CHAP AUTH-Id', send(Buffer.from([0x01, 0x09, 0, 0, 7, 0, 0, 0])), REASON.incorrectMessage],
  ['a message shorter than any header', send(Buffer.from([0x00, 0x00, 0])), REASON.incorrectPayload],
  ['a Challenge from the host', send(Buffer.concat([Buffer.from([0x01, 0x01, 0, 0, 7, 0, 32, 0, 1, 0, 0, 0, 1, 0, 0, 0]), Buffer.alloc(32)])), REASON.incorrectMessage],
  ['a Reply before Negotiate (out of order)', send(reply({ tid: 7, hl: 32, r1: Buffer.alloc(32) })), REASON.incorrectMessage],
  ['Success2 before Negotiate (out of order)', send(success2(7)), REASON.incorrectMessage],
  ['Failure2 before Negotiate (out of order)', send(failure2(7, 1)), REASON.incorrectMessage],
  ['a second Negotiate after the Challenge (out of order)', then(negotiated, send(negotiate({ tid: 7 }))), REASON.incorrectMessage],
  ['a Reply with another T_ID', then(negotiated, send(reply({ tid: 8, hl: 32, r1: Buffer.alloc(32) }))), REASON.incorrectPayload],
  ['a Reply with SEQNUM 0 and CVALID 1', then(negotiated, send(reply({ tid: 7, hl: 32, r1: Buffer.alloc(32), c2: randomBytes(32), cvalid: 1, seqnum: 0 }))), REASON.incorrectPayload],
  ['a Reply with CVALID 2', then(negotiated, send(reply({ tid: 7, hl: 32, r1: Buffer.alloc(32), cvalid: 2, seqnum: 1 }))), REASON.incorrectPayload],
  ['a Reply with the HL of another hash', then(negotiated, send(reply({ tid: 7, hl: 64, r1: Buffer.alloc(64) }))), REASON.incorrectPayload],
  ['a Reply with HL 33', then(negotiated, send(reply({ tid: 7, hl: 33, r1: Buffer.alloc(33) }))), REASON.incorrectPayload],
  ['a Reply one byte short (wrong length)', then(negotiated, send(reply({ tid: 7, hl: 32, r1: Buffer.alloc(32) }).subarray(0, 79))), REASON.incorrectPayload],
  ['a Reply with a DH value in the null group', then(negotiated, send(reply({ tid: 7, hl: 32, r1: Buffer.alloc(32), dhv: Buffer.alloc(256, 1) }))), REASON.incorrectPayload],
  ['a Reply with a wrong response', then(negotiated, send(reply({ tid: 7, hl: 32, r1: randomBytes(32) }))), REASON.failed],
  ['a Reply asking for bidirectional without a controller key', then(negotiated, send(reply({ tid: 7, hl: 32, r1: randomBytes(32), c2: randomBytes(32), cvalid: 1, seqnum: 5 }))), REASON.failed],
  ['Success2 after the Challenge (out of order)', then(negotiated, send(success2(7))), REASON.incorrectMessage],
  ['a Failure2 with another T_ID', then(negotiated, send(failure2(9, 1))), REASON.incorrectPayload],
  ['an ffdhe2048 Reply with a DH value of 1', then(async (c) => {
    await authSend(c, negotiate({ tid: 7, hashes: [1], groups: [1] }));
    await authRecv(c);
  }, send(reply({ tid: 7, hl: 32, r1: Buffer.alloc(32), dhv: Buffer.concat([Buffer.alloc(255), Buffer.from([1])]) }))), REASON.failed],
  ['an ffdhe2048 Reply with a 128-byte DH value', then(async (c) => {
    await authSend(c, negotiate({ tid: 7, hashes: [1], groups: [1] }));
    await authRecv(c);
  }, send(reply({ tid: 7, hl: 32, r1: Buffer.alloc(32), dhv: randomBytes(128) }))), REASON.incorrectPayload],
  ['an Auth Receive too small for the Challenge (AL 20)', async (c) => {
    await authSend(c, negotiate({ tid: 7, hashes: [1], groups: [0] }));
  }, REASON.incorrectPayload, 20],
];

t.test('malformed and out-of-order messages: AUTH_Failure1 with the right reason, then the connection closes', async (t) => {
  const env = await setup(t);
  // Another host that must be served all along.
  const key = generateDhchapKey();
  const other = 'nqn.2014-08.org.nvmexpress:uuid:abababab-2222-3333-4444-555555555555';
  await env.sub.addHost({ nqn: other, dhchapKey: key });
  const good = await connect({ address: '127.0.0.1', port: env.port, subnqn: SUBNQN, hostnqn: other, dhchapKey: key });
  t.teardown(() => good.close());
  let n = 0;
  for (const [name, steps, reason, al] of CASES) {
    const c = await authenticating(env);
    try {
      await steps(c, env);
      const r = await authRecv(c, al ?? 4096);
      const f = r ? parseFailure1(r.data) : null;
      t.ok(r && r.status === 0, `${name}: the Auth Receive completes`);
      t.ok(f, `${name}: it carries AUTH_Failure1`);
      t.equal(f?.rescode, 1, `${name}: reason code 01h`);
      t.equal(f?.reason, reason, `${name}: reason code explanation ${reason}`);
      t.ok(await c.waitClosed(3000), `${name}: then the target closes the connection`);
    } finally {
      c.close();
    }
    n++;
    const data = randomBytes(512);
    await good.write(1, n, data);
    t.same(await good.read(1, n, 1), data, `${name}: the other host is still served`);
  }
  const until = Date.now() + 3000;
  while (env.failures.length < CASES.length && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  t.equal(env.failures.length, CASES.length, 'one auth-failure event per case');
  t.same(env.failures.map((e) => e.reasonCode), CASES.map((c) => c[2]), 'events carry the same reason codes');
  t.ok(env.failures.every((e) => e.failure === 'AUTH_Failure1' && e.detail.length > 0), 'events say AUTH_Failure1 and why');
});

t.test('a Failure2 from the host ends the queue and is reported', async (t) => {
  const env = await setup(t);
  const c = await authenticating(env);
  t.teardown(() => c.close());
  await authSend(c, negotiate({ tid: 11, hashes: [1], groups: [0] }));
  await authRecv(c);
  t.equal(await authSend(c, failure2(11, REASON.hashUnusable)), 0, 'the Auth Send carrying Failure2 completes successfully');
  t.ok(await c.waitClosed(3000), 'then the target closes the connection');
  await events(env, 1);
  t.same(env.failures.map((e) => [e.failure, e.reason]), [['AUTH_Failure2', 'hash-unusable']], 'auth-failure: the host\'s Failure2 and its reason');
});

t.test('the authentication timeout ends a silent queue', async (t) => {
  const env = await setup(t);
  env.target.setAuthOptions({ timeoutMs: 300 });
  const c = await authenticating(env);
  t.teardown(() => c.close());
  const t0 = Date.now();
  t.ok(await c.waitClosed(5000), 'the target closes a queue that never authenticates');
  const ms = Date.now() - t0;
  t.ok(ms >= 250 && ms < 3000, `after the timeout (${ms} ms)`);
  await events(env, 1);
  t.same(env.failures.map((e) => e.reason), ['timeout'], 'auth-failure: timeout');
  // A queue that authenticated survives an abandoned re-authentication.
  const d = await authenticating(env);
  t.teardown(() => d.close());
  await authenticateNull(d, { tid: 1, hmac: 1, secret: env.secret, hostnqn: HOSTNQN, subnqn: SUBNQN });
  await authSend(d, negotiate({ tid: 2, hashes: [1], groups: [0] }));
  await new Promise((r) => setTimeout(r, 600));
  t.equal(await propertyGet(d), 0, 'an abandoned re-authentication times out without ending the queue');
  await events(env, 2);
  t.equal(env.failures.length, 2, 'and is reported');
});

t.test('destroy() with authentications in progress resolves and frees everything', async (t) => {
  const env = await setup(t);
  env.target.setAuthOptions({ dhgroups: ['ffdhe2048'] });
  const c = await authenticating(env);
  t.teardown(() => c.close());
  await authSend(c, negotiate({ tid: 1, hashes: [1], groups: [1] }));
  const ch = await authRecv(c);
  t.ok(ch && parseChallenge(ch.data)?.dhv.length === 256, 'a transaction waits for the Reply (ffdhe2048 key pair held)');
  const d = await authenticating(env);
  t.teardown(() => d.close());
  await authSend(d, negotiate({ tid: 2, hashes: [9] }));
  // and a third connection that connected but never started
  const e = await authenticating(env);
  t.teardown(() => e.close());
  const t0 = Date.now();
  await env.target.destroy();
  t.ok(Date.now() - t0 < 3000, `destroy() resolved in ${Date.now() - t0} ms`);
  t.ok(await c.waitClosed(2000) && await d.waitClosed(2000) && await e.waitClosed(2000), 'every connection closed');
});

t.test('the keep-alive timeout does not run while the admin queue authenticates', async (t) => {
  const env = await setup(t);
  const c = await authenticating(env, 300); // KATO 300 ms
  t.teardown(() => c.close());
  await new Promise((r) => setTimeout(r, 900)); // a slow host's DH computation
  t.notOk(c.closed, 'still connected after 3 × KATO spent authenticating');
  await authenticateNull(c, { tid: 1, hmac: 1, secret: env.secret, hostnqn: HOSTNQN, subnqn: SUBNQN });
  t.equal(await propertyGet(c), 0, 'authenticated and enabled');
  // From success on, KATO applies: no Keep Alive arrives, the controller ends.
  t.ok(await c.waitClosed(3000), 'the keep-alive timeout ends it once authenticated');
});
