/**
 * DH-HMAC-CHAP between this package's host library and its target over TCP
 * loopback: every hash × DH group × direction, wrong keys on either side,
 * re-authentication and key rotation under I/O.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { NvmfError, Target, connect, generateDhchapKey, type DhchapDhGroup, type DhchapDigest, type HostController, type Subsystem } from '../dist';
import { HOSTNQN, SUBNQN, freePort } from './helpers/target';

interface AuthEvent {
  hostnqn: string;
  subnqn: string;
  qid: number;
  digest: string | null;
  dhgroup: string | null;
  bidirectional: boolean;
  reauth: boolean;
  ms: number;
  reason?: string;
  reasonCode?: number | null;
  failure?: string;
  detail?: string;
}

interface Served {
  target: Target;
  sub: Subsystem;
  port: number;
  ok: AuthEvent[];
  bad: AuthEvent[];
}

async function serve(opts: { reactors?: number; auth?: { digests?: DhchapDigest[]; dhgroups?: DhchapDhGroup[]; timeoutMs?: number } } = {}): Promise<Served> {
  const target = await Target.create({ reactors: opts.reactors ?? 2, ...(opts.auth ? { auth: opts.auth } : {}) });
  const sub = await target.createSubsystem({ nqn: SUBNQN });
  await target.createBdev({ name: 'm', type: 'malloc', sizeBytes: 16 << 20 });
  await sub.addNamespace({ bdev: 'm' });
  const port = await freePort();
  await target.listen({ address: '127.0.0.1', port });
  const ok: AuthEvent[] = [];
  const bad: AuthEvent[] = [];
  target.on('auth-success', (e: AuthEvent) => ok.push(e));
  target.on('auth-failure', (e: AuthEvent) => bad.push(e));
  return { target, sub, port, ok, bad };
}

const until = async (cond: () => boolean, ms = 15000): Promise<boolean> => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return cond();
};

async function rw(h: HostController, lba: number): Promise<boolean> {
  const data = randomBytes(4096);
  await h.write(1, lba, data);
  return (await h.read(1, lba, 8)).equals(data);
}

t.test('every hash × DH group × {unidirectional, bidirectional}: connect and do I/O', async (t) => {
  const s = await serve();
  t.teardown(() => s.target.destroy());
  const key = generateDhchapKey({ hmac: 1 });
  const ctrlKey = generateDhchapKey({ hmac: 3 });
  await s.sub.addHost({ nqn: HOSTNQN, dhchapKey: key, dhchapCtrlKey: ctrlKey });
  const digests: DhchapDigest[] = ['sha256', 'sha384', 'sha512'];
  const groups: DhchapDhGroup[] = ['null', 'ffdhe2048', 'ffdhe3072', 'ffdhe4096', 'ffdhe6144', 'ffdhe8192'];
  const times: Record<string, number> = {};
  let lba = 0;
  for (const digest of digests) {
    for (const dhgroup of groups) {
      for (const bi of [false, true]) {
        const name = `${digest}/${dhgroup}/${bi ? 'bi' : 'uni'}`;
        // Half the cases force the choice on the target, half on the host.
        if ((lba / 8) % 2 === 0) {
          s.target.setAuthOptions({ digests: [digest], dhgroups: [dhgroup] });
        } else {
          s.target.setAuthOptions({ digests: ['sha512', 'sha384', 'sha256'], dhgroups: ['ffdhe8192', 'ffdhe6144', 'ffdhe4096', 'ffdhe3072', 'ffdhe2048', 'null'] });
        }
        const seen = s.ok.length;
        const t0 = process.hrtime.bigint();
        const h = await connect({
          address: '127.0.0.1', port: s.port, subnqn: SUBNQN, hostnqn: HOSTNQN, ioQueues: 1,
          dhchapKey: key, ...(bi ? { dhchapCtrlKey: ctrlKey } : {}),
          ...((lba / 8) % 2 === 1 ? { digest, dhgroup } : {}),
        });
        times[name] = Number(process.hrtime.bigint() - t0) / 1e6;
        try {
          t.ok(await rw(h, lba), `${name}: write + read back`);
        } finally {
          await h.close();
        }
        lba += 8;
        await until(() => s.ok.length >= seen + 2);
        const evs = s.ok.slice(seen);
        t.same(evs.map((e) => [e.qid, e.digest, e.dhgroup, e.bidirectional, e.reauth]).sort(),
          [[0, digest, dhgroup, bi, false], [1, digest, dhgroup, bi, false]], `${name}: auth-success on the admin and the I/O queue`);
      }
    }
  }
  t.equal(s.bad.length, 0, 'no auth-failure events');
  const slow = Object.entries(times).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${v.toFixed(1)} ms`);
  t.comment(`connect incl. 2 authentications: slowest ${slow.join(', ')}`);
  const per = (g: string) => s.ok.filter((e) => e.dhgroup === g).map((e) => e.ms);
  for (const g of groups) t.comment(`${g}: target-side transaction ${Math.min(...per(g)).toFixed(2)}..${Math.max(...per(g)).toFixed(2)} ms`);
});

t.test('a wrong host key: AUTH_Failure1 with reason "failed", 100 of 100 times', async (t) => {
  const s = await serve({ auth: { digests: ['sha256'], dhgroups: ['ffdhe2048', 'null'] } });
  t.teardown(() => s.target.destroy());
  const key = generateDhchapKey();
  await s.sub.addHost({ nqn: HOSTNQN, dhchapKey: key });
  const good = await connect({ address: '127.0.0.1', port: s.port, subnqn: SUBNQN, hostnqn: HOSTNQN, dhchapKey: key });
  t.teardown(() => good.close());
  const counts: Record<string, number> = {};
  for (let i = 0; i < 100; i++) {
    let got = 'connected';
    try {
      const h = await connect({
        address: '127.0.0.1', port: s.port, subnqn: SUBNQN, hostnqn: HOSTNQN,
        dhchapKey: generateDhchapKey({ hmac: ((i % 4) as 0 | 1 | 2 | 3) }),
        ...(i % 2 ? { dhgroup: 'null' as const } : {}),
      });
      await h.close();
    } catch (e) {
      const err = e as NvmfError;
      got = `${err.code}/${err.reason}/${/sent AUTH_Failure1 \(reason 0x01/.test(err.message) ? 'Failure1' : err.message}`;
    }
    counts[got] = (counts[got] ?? 0) + 1;
    // Other hosts keep being served meanwhile.
    if (i % 25 === 0) t.ok(await rw(good, i), `attempt ${i}: the authenticated host still does I/O`);
  }
  t.same(counts, { 'ERR_AUTH_FAILED/failed/Failure1': 100 }, 'every attempt: ERR_AUTH_FAILED, reason failed, from AUTH_Failure1 (not a timeout, not EOF)');
  t.ok(await until(() => s.bad.length === 100), 'the target reported 100 auth-failure events');
  t.same([...new Set(s.bad.map((e) => `${e.failure}/${e.reason}/${e.reasonCode}/${e.qid}`))], ['AUTH_Failure1/failed/1/0']);
  t.ok(await rw(good, 200), 'the authenticated host still does I/O afterwards');
});

t.test('a wrong controller key: the host sends AUTH_Failure2 and the target sees it', async (t) => {
  const s = await serve({ auth: { digests: ['sha384'], dhgroups: ['ffdhe3072'] } });
  t.teardown(() => s.target.destroy());
  const key = generateDhchapKey();
  const ctrlKey = generateDhchapKey({ hmac: 2 });
  await s.sub.addHost({ nqn: HOSTNQN, dhchapKey: key, dhchapCtrlKey: ctrlKey });
  for (let i = 0; i < 5; i++) {
    const e = await connect({ address: '127.0.0.1', port: s.port, subnqn: SUBNQN, hostnqn: HOSTNQN, dhchapKey: key, dhchapCtrlKey: generateDhchapKey({ hmac: 2 }) })
      .then(() => null, (x: NvmfError) => x);
    t.equal(e?.code, 'ERR_AUTH_FAILED', `attempt ${i}: ERR_AUTH_FAILED`);
    t.equal(e?.reason, 'failed', `attempt ${i}: reason failed`);
    t.match(e?.message, /controller's response does not match dhchapCtrlKey.*sent AUTH_Failure2/, `attempt ${i}: the host rejected the controller`);
  }
  t.ok(await until(() => s.bad.length === 5), 'five auth-failure events');
  t.same([...new Set(s.bad.map((e) => `${e.failure}/${e.reason}/${e.bidirectional}/${e.digest}/${e.dhgroup}`))], ['AUTH_Failure2/failed/true/sha384/ffdhe3072'],
    'the target saw AUTH_Failure2 with reason failed');
  // The right controller key works.
  const h = await connect({ address: '127.0.0.1', port: s.port, subnqn: SUBNQN, hostnqn: HOSTNQN, dhchapKey: key, dhchapCtrlKey: ctrlKey });
  t.ok(await rw(h, 0), 'the right controller key connects');
  await h.close();
});

t.test('what the host and target must refuse', async (t) => {
  const s = await serve({ auth: { digests: ['sha512'], dhgroups: ['ffdhe4096'] } });
  t.teardown(() => s.target.destroy());
  const key = generateDhchapKey();
  await s.sub.addHost({ nqn: HOSTNQN, dhchapKey: key });
  const base = { address: '127.0.0.1', port: s.port, subnqn: SUBNQN, hostnqn: HOSTNQN };
  await t.rejects(connect(base), { code: 'ERR_AUTH_FAILED', message: /requires DH-HMAC-CHAP authentication; pass dhchapKey/ }, 'no key: refused by the host');
  await t.rejects(connect({ ...base, dhchapKey: key, digest: 'sha256' }), { code: 'ERR_AUTH_FAILED', reason: 'hash-unusable' }, 'no hash in common');
  await t.rejects(connect({ ...base, dhchapKey: key, dhgroup: ['null', 'ffdhe2048'] }), { code: 'ERR_AUTH_FAILED', reason: 'dhgroup-unusable' }, 'no DH group in common');
  await t.rejects(connect({ ...base, dhchapKey: key, dhchapCtrlKey: generateDhchapKey() }), { code: 'ERR_AUTH_FAILED', reason: 'failed' },
    'bidirectional asked, but the target has no controller key for the host');
  // A host that is not in the list with keys: a controller key makes the
  // host authenticate unasked, and the target has nothing to check it with.
  await s.sub.setAllowAnyHost(true);
  const other = 'nqn.2014-08.org.nvmexpress:uuid:99999999-2222-3333-4444-555555555555';
  const h = await connect({ ...base, hostnqn: other, dhchapKey: key });
  t.ok(await rw(h, 0), 'a host without keys on the target: no authentication asked, I/O works');
  await h.close();
  await t.rejects(connect({ ...base, hostnqn: other, dhchapKey: key, dhchapCtrlKey: generateDhchapKey() }), { code: 'ERR_AUTH_FAILED', reason: 'failed' },
    'with a controller key the host insists on authenticating: Failure1');
  t.ok(await until(() => s.bad.length === 4), 'the target reported each refusal');
  t.same(s.bad.map((e) => e.reason), ['hash-unusable', 'dhgroup-unusable', 'failed', 'failed']);
});

t.test('re-authentication and key rotation while I/O runs', async (t) => {
  const s = await serve({ auth: { digests: ['sha256'], dhgroups: ['ffdhe2048'] } });
  t.teardown(() => s.target.destroy());
  const k1 = generateDhchapKey({ hmac: 1 });
  const c1 = generateDhchapKey();
  const k2 = generateDhchapKey({ hmac: 2 });
  const c2 = generateDhchapKey({ hmac: 3 });
  await s.sub.addHost({ nqn: HOSTNQN, dhchapKey: k1, dhchapCtrlKey: c1 });
  const base = { address: '127.0.0.1', port: s.port, subnqn: SUBNQN, hostnqn: HOSTNQN, ioQueues: 2 };
  const h = await connect({ ...base, dhchapKey: k1, dhchapCtrlKey: c1 });
  t.teardown(() => h.close());
  let ios = 0;
  let ioError: unknown;
  let stop = false;
  const loop = (async () => {
    for (let i = 0; !stop; i++) {
      try {
        if (!(await rw(h, (i % 512) * 8))) throw new Error('data mismatch');
        ios++;
      } catch (e) {
        ioError = e;
        return;
      }
    }
  })();
  const waitIos = async (n: number) => { const from = ios; await until(() => ios >= from + n || ioError !== undefined, 5000); };
  await waitIos(20);

  const before = s.ok.length;
  for (let i = 0; i < 3; i++) await h.reauthenticate();
  // Events travel from the reactors on their own; they may trail the host.
  await until(() => s.ok.length >= before + 9);
  const re = s.ok.slice(before);
  t.equal(re.length, 9, 'three re-authentications of 3 queues each');
  t.ok(re.every((e) => e.reauth && e.bidirectional), 'events say reauth, bidirectional');
  t.same([...new Set(re.map((e) => e.qid))].sort(), [0, 1, 2], 'admin and both I/O queues');
  await waitIos(20);

  // Rotation on the target: live queues keep running with the old keys.
  await s.sub.setHostKeys(HOSTNQN, { dhchapKey: k2, dhchapCtrlKey: c2 });
  await waitIos(50);
  t.equal(ioError, undefined, 'I/O keeps running across the rotation');
  await t.rejects(connect({ ...base, dhchapKey: k1, dhchapCtrlKey: c1 }), { code: 'ERR_AUTH_FAILED', reason: 'failed' }, 'a new connection with the old key fails');
  const n2 = await connect({ ...base, dhchapKey: k2, dhchapCtrlKey: c2 });
  t.ok(await rw(n2, 4096), 'a new connection with the new keys works');
  await n2.close();
  // The live host moves to the new keys by re-authenticating.
  await h.reauthenticate({ dhchapKey: k2, dhchapCtrlKey: c2 });
  await waitIos(50);
  t.equal(ioError, undefined, 'I/O keeps running across the re-authentication with new keys');

  // Rotating back without telling the host: its next re-authentication
  // fails with Failure1 and the controller goes away, with the reason.
  await s.sub.setHostKeys(HOSTNQN, { dhchapKey: k1 });
  await t.rejects(h.reauthenticate(), { code: 'ERR_AUTH_FAILED', reason: 'failed' }, 're-authentication with a rotated-away key fails');
  stop = true;
  await loop;
  t.ok(ios > 100, `${ios} verified 4 KiB write+read pairs during the test`);
});

t.test('several hosts authenticate concurrently on several reactors', async (t) => {
  const s = await serve({ reactors: 3, auth: { digests: ['sha384'], dhgroups: ['ffdhe2048'] } });
  t.teardown(() => s.target.destroy());
  const hosts = Array.from({ length: 6 }, (_, i) => ({ nqn: `nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-00000000000${i}`, key: generateDhchapKey() }));
  for (const x of hosts) await s.sub.addHost({ nqn: x.nqn, dhchapKey: x.key, dhchapCtrlKey: x.key });
  const conns = await Promise.all(hosts.map((x) => connect({ address: '127.0.0.1', port: s.port, subnqn: SUBNQN, hostnqn: x.nqn, dhchapKey: x.key, dhchapCtrlKey: x.key, ioQueues: 2 })));
  const okAll = await Promise.all(conns.map((h, i) => rw(h, i * 8)));
  t.same(okAll, conns.map(() => true), 'every host does I/O');
  await Promise.all(conns.map((h) => h.close()));
  await until(() => s.ok.length >= 18);
  t.equal(s.ok.length, 18, '6 hosts × 3 queues authenticated');
});
