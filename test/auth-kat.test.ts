/**
 * Known-answer tests of the DH-HMAC-CHAP formulas: the native key transform,
 * challenge augmentation, host and controller responses and FFDHE key
 * agreement, each checked against values computed here from the formulas
 * with Node's crypto (never by the code under test).
 */
import t from 'tap';
import { createDiffieHellman, createHash, createHmac, randomBytes } from 'node:crypto';
import { NvmfError, generateDhchapKey, parseDhchapKey } from '../dist';
import { native } from '../dist/native';
import { FFDHE2048_P, HASH_LEN, HASH_NAME, augment, controllerResponse, hostResponse, keyText, transform } from './helpers/raw-auth';

const at = native().authTest;
const HOST = 'nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100';
const SUB = 'nqn.2024-01.io.nvmf-target:kat';

t.test('key transform: HMAC-H(secret, NQN || "NVMe-over-Fabrics") with the key\'s own hash', async (t) => {
  for (const hmac of [0, 1, 2, 3]) {
    for (const len of [32, 48, 64]) {
      const secret = randomBytes(len);
      const got = at.transformKey(hmac, secret, HOST);
      const want = hmac === 0 ? secret : createHmac(HASH_NAME[hmac]!, secret).update(HOST + 'NVMe-over-Fabrics').digest();
      t.same(got, want, `hmac ${hmac}, ${len}-byte secret`);
    }
  }
  // A fixed vector, so a change of formula on both sides cannot go unseen.
  const fixed = at.transformKey(1, Buffer.alloc(32, 0x11), 'nqn.test');
  t.equal(fixed.toString('hex'), createHmac('sha256', Buffer.alloc(32, 0x11)).update('nqn.testNVMe-over-Fabrics').digest('hex'));
});

t.test('challenge augmentation: Ca = HMAC-H(H(g^xy mod p), C)', async (t) => {
  for (const hash of [1, 2, 3]) {
    const sk = randomBytes(256);
    const c = randomBytes(HASH_LEN[hash]!);
    const h = HASH_NAME[hash]!;
    const want = createHmac(h, createHash(h).update(sk).digest()).update(c).digest();
    t.same(at.augmentChallenge(hash, sk, c), want, h);
    t.same(augment(hash, sk, c), want, `${h}: the test helper agrees`);
  }
});

t.test('host and controller responses, with and without a session key', async (t) => {
  for (const hash of [1, 2, 3]) {
    const hl = HASH_LEN[hash]!;
    for (const withDh of [false, true]) {
      const a = {
        hash,
        key: randomBytes(hl),
        challenge: randomBytes(hl),
        seqnum: 0x89abcdef,
        tid: 0x1234,
        hostnqn: HOST,
        subnqn: SUB,
        ...(withDh ? { sessionKey: randomBytes(384) } : {}),
      };
      // Written out from the specification here, not with the helpers.
      const ca = withDh ? createHmac(HASH_NAME[hash]!, createHash(HASH_NAME[hash]!).update(a.sessionKey!).digest()).update(a.challenge).digest() : a.challenge;
      const tr = (role: string, n1: string, n2: string) =>
        createHmac(HASH_NAME[hash]!, a.key)
          .update(Buffer.concat([ca, Buffer.from([0xef, 0xcd, 0xab, 0x89, 0x34, 0x12, 0x00]), Buffer.from(role), Buffer.from(n1), Buffer.from([0]), Buffer.from(n2)]))
          .digest();
      t.same(at.hostResponse(a), tr('HostHost', HOST, SUB), `R1 ${HASH_NAME[hash]}${withDh ? ' + DH' : ''} (little-endian S and T_ID)`);
      t.same(at.controllerResponse(a), tr('Controller', SUB, HOST), `R2 ${HASH_NAME[hash]}${withDh ? ' + DH' : ''} (NQNs swapped)`);
      t.same(hostResponse(a), tr('HostHost', HOST, SUB), 'the raw-test helper computes R1 the same way');
      t.same(controllerResponse(a), tr('Controller', SUB, HOST), 'the raw-test helper computes R2 the same way');
    }
  }
});

t.test('FFDHE key agreement against Node (RFC 7919 ffdhe2048 prime)', async (t) => {
  for (let i = 0; i < 4; i++) {
    const node = createDiffieHellman(FFDHE2048_P, Buffer.from([2]));
    const nodePub = node.generateKeys();
    const padded = Buffer.concat([Buffer.alloc(256 - nodePub.length), nodePub]);
    const r = at.dhExchange(1, padded);
    t.equal(r.publicValue.length, 256, 'public value padded to the group size');
    t.equal(r.sharedSecret.length, 256, 'shared secret padded to the group size');
    const nodeSecret = node.computeSecret(r.publicValue);
    t.same(r.sharedSecret, Buffer.concat([Buffer.alloc(256 - nodeSecret.length), nodeSecret]), `round ${i}: g^xy mod p agrees with Node`);
  }
  // Values outside [2, p-2] are refused (small-subgroup confinement).
  const p1 = Buffer.from(FFDHE2048_P);
  p1[255] -= 1; // p - 1
  for (const [what, v] of [['0', Buffer.alloc(256)], ['1', Buffer.concat([Buffer.alloc(255), Buffer.from([1])])], ['p-1', p1]] as const) {
    t.throws(() => at.dhExchange(1, v), /rejected/, `peer value ${what} is rejected`);
  }
  t.throws(() => at.dhExchange(1, randomBytes(255)), /rejected/, 'a value of the wrong size is rejected');
});

t.test('key text: what the test builds, the native parser reads back', async (t) => {
  for (const [hmac, len] of [[0, 32], [0, 48], [0, 64], [1, 32], [2, 48], [3, 64]] as const) {
    const secret = randomBytes(len);
    const text = keyText(hmac, secret);
    t.same(parseDhchapKey(text), { hmac, length: len }, `${text.slice(0, 10)} ${len} bytes`);
    const back = at.keySecret(text);
    t.equal(back.hmac, hmac);
    t.same(back.secret, secret, 'secret decoded');
  }
  // generateDhchapKey output parses, and its CRC-32 is zlib's.
  for (const hmac of [0, 1, 2, 3] as const) {
    const k = generateDhchapKey({ hmac });
    const m = /^DHHC-1:0([0-3]):([A-Za-z0-9+/=]+):$/.exec(k);
    t.ok(m, `generated key has the DHHC-1 form: ${k.slice(0, 12)}...`);
    const raw = Buffer.from(m![2]!, 'base64');
    t.equal(raw.length, (hmac === 0 ? 32 : HASH_LEN[hmac]!) + 4);
    t.equal(keyText(hmac, raw.subarray(0, raw.length - 4)), k, 'the test rebuilds the same text (CRC-32 little-endian)');
  }
  // With an NQN and a transform hash, the stored secret is a digest of it
  // (nvme-cli's --nqn); it still parses.
  t.same(parseDhchapKey(generateDhchapKey({ hmac: 2, hostNqn: HOST })), { hmac: 2, length: 48 });
  t.ok(transform(0, Buffer.alloc(32, 1), HOST).equals(Buffer.alloc(32, 1)));
  t.type(NvmfError, 'function');
});
