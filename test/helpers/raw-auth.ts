/**
 * DH-HMAC-CHAP by hand over a RawConn (test/helpers/raw-tcp.ts): the
 * Authentication Send/Receive capsules, the protocol messages, and the
 * formulas of the protocol computed with Node's crypto, independently of
 * the native code under test.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { PDU, RawConn, capsule, connectCmd } from './raw-tcp';

export const HASH = { sha256: 1, sha384: 2, sha512: 3 } as const;
export const HASH_NAME: Record<number, 'sha256' | 'sha384' | 'sha512'> = { 1: 'sha256', 2: 'sha384', 3: 'sha512' };
export const HASH_LEN: Record<number, number> = { 1: 32, 2: 48, 3: 64 };
export const REASON = {
  failed: 1,
  protocolUnusable: 2,
  concatMismatch: 3,
  hashUnusable: 4,
  dhgroupUnusable: 5,
  incorrectPayload: 6,
  incorrectMessage: 7,
} as const;

/** RFC 7919 ffdhe2048 prime (generator 2), as OpenSSL prints it. */
export const FFDHE2048_P = Buffer.from(
  'FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695A9E13641146433FBCC939DCE249B3EF9' +
    '7D2FE363630C75D8F681B202AEC4617AD3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935' +
    '984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797ABC0AB182B324FB61D108A94BB2C8E3FB' +
    'B96ADAB760D7F4681D4F42A3DE394DF4AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61' +
    '9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005C58EF1837D1683B2C6F34A26C1B2EFFA' +
    '886B423861285C97FFFFFFFFFFFFFFFF',
  'hex',
);

// ---- keys ----

/** The DHHC-1 text of `secret` with transform hash `hmac`, built here. */
export function keyText(hmac: number, secret: Buffer): string {
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(zlib.crc32(secret) >>> 0);
  return `DHHC-1:${hmac.toString(16).padStart(2, '0')}:${Buffer.concat([secret, crc]).toString('base64')}:`;
}

/** The transformed key: the secret as is (hmac 0) or HMAC-H(secret, NQN || "NVMe-over-Fabrics"). */
export function transform(hmac: number, secret: Buffer, nqn: string): Buffer {
  if (hmac === 0) return Buffer.from(secret);
  return createHmac(HASH_NAME[hmac]!, secret).update(nqn).update('NVMe-over-Fabrics').digest();
}

export function augment(hash: number, sessionKey: Buffer, challenge: Buffer): Buffer {
  const h = HASH_NAME[hash]!;
  return createHmac(h, createHash(h).update(sessionKey).digest()).update(challenge).digest();
}

function le32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

function le16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}

export interface ResponseArgs {
  hash: number;
  key: Buffer; // transformed
  challenge: Buffer;
  sessionKey?: Buffer;
  seqnum: number;
  tid: number;
  scc?: number;
  hostnqn: string;
  subnqn: string;
}

function response(role: string, a: ResponseArgs, first: string, second: string): Buffer {
  const ca = a.sessionKey && a.sessionKey.length ? augment(a.hash, a.sessionKey, a.challenge) : a.challenge;
  return createHmac(HASH_NAME[a.hash]!, a.key)
    .update(ca)
    .update(le32(a.seqnum))
    .update(le16(a.tid))
    .update(Buffer.from([a.scc ?? 0]))
    .update(role)
    .update(first)
    .update(Buffer.from([0]))
    .update(second)
    .digest();
}

/** R1 = HMAC(Kh', Ca1 || S1 || T_ID || SC_C || "HostHost" || NQNh || 0 || NQNc). */
export const hostResponse = (a: ResponseArgs): Buffer => response('HostHost', a, a.hostnqn, a.subnqn);
/** R2 = HMAC(Kc', Ca2 || S2 || T_ID || SC_C || "Controller" || NQNc || 0 || NQNh). */
export const controllerResponse = (a: ResponseArgs): Buffer => response('Controller', a, a.subnqn, a.hostnqn);

// ---- messages ----

export function negotiate(o: { tid: number; hashes?: number[]; groups?: number[]; scc?: number; napd?: number; authid?: number; halen?: number } = { tid: 0 }): Buffer {
  const hashes = o.hashes ?? [1, 2, 3];
  const groups = o.groups ?? [0, 1, 2, 3, 4, 5];
  const napd = o.napd ?? 1;
  const b = Buffer.alloc(8 + 64 * Math.max(napd, 0));
  b[0] = 0x00;
  b[1] = 0x00;
  b.writeUInt16LE(o.tid, 4);
  b[6] = o.scc ?? 0;
  b[7] = napd;
  if (napd > 0) {
    b[8] = o.authid ?? 0x01;
    b[10] = o.halen ?? hashes.length;
    b[11] = groups.length;
    hashes.forEach((h, i) => (b[12 + i] = h));
    groups.forEach((g, i) => (b[12 + 30 + i] = g));
  }
  return b;
}

export function reply(o: { tid: number; hl: number; r1: Buffer; c2?: Buffer; seqnum?: number; cvalid?: number; dhv?: Buffer }): Buffer {
  const dhv = o.dhv ?? Buffer.alloc(0);
  const b = Buffer.alloc(16 + 2 * o.hl + dhv.length);
  b[0] = 0x01;
  b[1] = 0x02;
  b.writeUInt16LE(o.tid, 4);
  b[6] = o.hl;
  b[8] = o.cvalid ?? 0;
  b.writeUInt16LE(dhv.length, 10);
  b.writeUInt32LE(o.seqnum ?? 0, 12);
  o.r1.copy(b, 16, 0, Math.min(o.r1.length, o.hl));
  if (o.c2) o.c2.copy(b, 16 + o.hl);
  dhv.copy(b, 16 + 2 * o.hl);
  return b;
}

export function success2(tid: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 0x01;
  b[1] = 0x04;
  b.writeUInt16LE(tid, 4);
  return b;
}

export function failure2(tid: number, reason: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 0x00;
  b[1] = 0xf0;
  b.writeUInt16LE(tid, 4);
  b[6] = 0x01;
  b[7] = reason;
  return b;
}

export interface Challenge {
  tid: number;
  hl: number;
  hash: number;
  dhgid: number;
  seqnum: number;
  c1: Buffer;
  dhv: Buffer;
}

export function parseChallenge(d: Buffer): Challenge | null {
  if (d.length < 16 || d[0] !== 0x01 || d[1] !== 0x01) return null;
  const hl = d[6]!;
  const dhvlen = d.readUInt16LE(10);
  return {
    tid: d.readUInt16LE(4),
    hl,
    hash: d[8]!,
    dhgid: d[9]!,
    seqnum: d.readUInt32LE(12),
    c1: d.subarray(16, 16 + hl),
    dhv: d.subarray(16 + hl, 16 + hl + dhvlen),
  };
}

/** An AUTH_Failure1, or null when `d` is not one. */
export function parseFailure1(d: Buffer): { tid: number; rescode: number; reason: number } | null {
  if (d.length < 8 || d[0] !== 0x00 || d[1] !== 0xf1) return null;
  return { tid: d.readUInt16LE(4), rescode: d[6]!, reason: d[7]! };
}

// ---- commands ----

let nextCid = 100;

function authSqe(fctype: number, cid: number, len: number, o: { secp?: number; spsp0?: number; spsp1?: number; tl?: number }, inCapsule: boolean): Buffer {
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x7f;
  sqe[1] = 0x40; // SGL
  sqe.writeUInt16LE(cid, 2);
  sqe[4] = fctype;
  sqe.writeBigUInt64LE(0n, 24);
  sqe.writeUInt32LE(len, 32);
  sqe[39] = inCapsule ? 0x01 : 0x5a; // data block/offset (in capsule) or transport data block
  sqe[41] = o.spsp0 ?? 0x01;
  sqe[42] = o.spsp1 ?? 0x01;
  sqe[43] = o.secp ?? 0xe9;
  sqe.writeUInt32LE(o.tl ?? len, 44);
  return sqe;
}

function statusOf(resp: Buffer): number {
  // SCT << 8 | SC, without DNR/More.
  return (resp.readUInt16LE(8 + 14) >> 1) & 0x7ff;
}

/** Authentication Send with `msg` in the capsule; resolves with the status (or null: connection gone). */
export async function authSend(c: RawConn, msg: Buffer, o: { secp?: number; spsp0?: number; spsp1?: number; tl?: number } = {}): Promise<number | null> {
  const cid = nextCid++ & 0xffff;
  c.write(capsule(authSqe(0x05, cid, msg.length, o, true), msg));
  const r = await c.next(PDU.CapsuleResp);
  return r ? statusOf(r.raw) : null;
}

/** Authentication Receive of `al` bytes: the status and the data (null: connection gone). */
export async function authRecv(c: RawConn, al = 4096, o: { secp?: number; spsp0?: number; spsp1?: number; tl?: number } = {}): Promise<{ status: number; data: Buffer } | null> {
  const cid = nextCid++ & 0xffff;
  c.write(capsule(authSqe(0x06, cid, al, o, false)));
  const parts: Buffer[] = [];
  for (;;) {
    const p = await c.next();
    if (!p) return null;
    if (p.type === PDU.C2HData) {
      const pdo = p.pdo;
      const datal = p.raw.readUInt32LE(16);
      parts.push(p.raw.subarray(pdo, pdo + datal));
      if (p.flags & 0x08) return { status: 0, data: Buffer.concat(parts) }; // SUCCESS: no response follows
      continue;
    }
    if (p.type === PDU.CapsuleResp) return { status: statusOf(p.raw), data: Buffer.concat(parts) };
  }
}

/** Admin Connect; the status and the response's dw0 (CNTLID | AUTHREQ << 16). */
export async function connectAdminRaw(c: RawConn, subnqn: string, hostnqn: string, kato = 0): Promise<{ status: number; dw0: number } | null> {
  const { sqe, data } = connectCmd({ cid: 1, qid: 0, sqsize: 32, subnqn, hostnqn, kato });
  c.write(capsule(sqe, data));
  const r = await c.next(PDU.CapsuleResp);
  if (!r) return null;
  return { status: statusOf(r.raw), dw0: r.raw.readUInt32LE(8) };
}

/** Property Get CSTS: the status (0x191 = AUTH_REQUIRED), or null when the connection is gone. */
export async function propertyGet(c: RawConn): Promise<number | null> {
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x7f;
  sqe[1] = 0x40;
  sqe.writeUInt16LE(nextCid++ & 0xffff, 2);
  sqe[4] = 0x04;
  sqe.writeUInt32LE(0x1c, 44);
  c.write(capsule(sqe));
  const r = await c.next(PDU.CapsuleResp, 3000);
  return r ? statusOf(r.raw) : null;
}

/** Identify Controller (admin opcode 06h, CNS 1) with a transport SGL: the status. */
export async function identify(c: RawConn): Promise<number | null> {
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x06;
  sqe[1] = 0x40;
  sqe.writeUInt16LE(nextCid++ & 0xffff, 2);
  sqe.writeUInt32LE(4096, 32);
  sqe[39] = 0x5a;
  sqe[40] = 0x01;
  c.write(capsule(sqe));
  for (;;) {
    const p = await c.next(undefined, 3000);
    if (!p) return null;
    if (p.type === PDU.CapsuleResp) return statusOf(p.raw);
    if (p.type === PDU.C2HData && p.flags & 0x08) return 0;
  }
}

/**
 * A whole unidirectional (or bidirectional, with ctrlKey) transaction with
 * the null DH group, computed with Node's crypto. Resolves with what the
 * controller answered to the Reply (its Success1 data or Failure1).
 */
export async function authenticateNull(
  c: RawConn,
  o: { tid: number; hmac: number; secret: Buffer; hostnqn: string; subnqn: string; hash?: number; ctrl?: { hmac: number; secret: Buffer } },
): Promise<{ challenge: Challenge; success1: Buffer; expectR2?: Buffer }> {
  const hash = o.hash ?? 1;
  if ((await authSend(c, negotiate({ tid: o.tid, hashes: [hash], groups: [0] }))) !== 0) throw new Error('negotiate failed');
  const rc = await authRecv(c);
  const ch = rc ? parseChallenge(rc.data) : null;
  if (!ch) throw new Error(`no challenge: ${rc?.data.subarray(0, 8).toString('hex')}`);
  const r1 = hostResponse({ hash, key: transform(o.hmac, o.secret, o.hostnqn), challenge: ch.c1, seqnum: ch.seqnum, tid: o.tid, hostnqn: o.hostnqn, subnqn: o.subnqn });
  let c2: Buffer | undefined;
  let expectR2: Buffer | undefined;
  const seqnum = 0x1234;
  if (o.ctrl) {
    c2 = randomBytes(HASH_LEN[hash]!);
    expectR2 = controllerResponse({ hash, key: transform(o.ctrl.hmac, o.ctrl.secret, o.subnqn), challenge: c2, seqnum, tid: o.tid, hostnqn: o.hostnqn, subnqn: o.subnqn });
  }
  if ((await authSend(c, reply({ tid: o.tid, hl: HASH_LEN[hash]!, r1, ...(c2 ? { c2, cvalid: 1, seqnum } : {}) }))) !== 0) throw new Error('reply send failed');
  const s1 = await authRecv(c);
  if (!s1) throw new Error('no success1');
  return { challenge: ch, success1: s1.data, ...(expectR2 ? { expectR2 } : {}) };
}
