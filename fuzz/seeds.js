#!/usr/bin/env node
// Writes the seed inputs of each harness into fuzz/corpus/<harness>/seed-*:
// well-formed protocol traffic the fuzzers mutate from. Deterministic (no
// randomness), so re-running it changes nothing. Regression inputs (crashes
// found and fixed) sit next to them under other names and are never touched.
//   node fuzz/seeds.js
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { createHash } = require('node:crypto');

const corpus = path.join(__dirname, 'corpus');
function write(harness, name, buf) {
  const d = path.join(corpus, harness);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, `seed-${name}`), buf);
}

// ---- NVMe/TCP PDUs (host to controller) ----

function crc32c(buf) {
  let crc = ~0 >>> 0;
  for (const b of buf) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}
function le32(v) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}
function icreq({ hdgst = false, ddgst = false, hpda = 0 } = {}) {
  const b = Buffer.alloc(128);
  b[2] = 128;
  b.writeUInt32LE(128, 4);
  b[10] = hpda;
  b[11] = (hdgst ? 1 : 0) | (ddgst ? 2 : 0);
  return b;
}
function sqe({ opc, fctype = 0, cid = 1, nsid = 1, sglLen = 0, inCapsule = false, cdw10 = 0, cdw12 = 0, qid = 0, sqsize = 31 }) {
  const s = Buffer.alloc(64);
  s[0] = opc;
  s[1] = 0x40;
  s.writeUInt16LE(cid, 2);
  if (opc === 0x7f) s[4] = fctype;
  else s.writeUInt32LE(nsid, 4);
  s.writeUInt32LE(sglLen, 32);
  s[39] = sglLen ? (inCapsule ? 0x01 : 0x5a) : 0;
  if (opc === 0x7f && fctype === 1) {
    s.writeUInt16LE(qid, 42);
    s.writeUInt16LE(sqsize, 44);
  } else {
    s.writeUInt32LE(cdw10, 40);
    s.writeUInt32LE(cdw12, 48);
  }
  return s;
}
function pdu(type, hdr, data, { hdgst = false, ddgst = false, flags = 0 } = {}) {
  const hlen = 8 + hdr.length;
  const hd = hdgst ? 4 : 0;
  const dd = ddgst && data.length ? 4 : 0;
  const pdo = data.length ? hlen + hd : 0;
  const plen = hlen + hd + data.length + dd;
  const ch = Buffer.alloc(8);
  ch[0] = type;
  ch[1] = flags | (hdgst ? 1 : 0) | (dd ? 2 : 0);
  ch[2] = hlen;
  ch[3] = pdo;
  ch.writeUInt32LE(plen, 4);
  const head = Buffer.concat([ch, hdr]);
  return Buffer.concat([head, hd ? le32(crc32c(head)) : Buffer.alloc(0), data, dd ? le32(crc32c(data)) : Buffer.alloc(0)]);
}
const capsule = (s, data = Buffer.alloc(0), o = {}) => pdu(0x04, s, data, o);
function h2c(cid, ttag, datao, data, o = {}) {
  const h = Buffer.alloc(16);
  h.writeUInt16LE(cid, 0);
  h.writeUInt16LE(ttag, 2);
  h.writeUInt32LE(datao, 4);
  h.writeUInt32LE(data.length, 8);
  return pdu(0x06, h, data, { ...o, flags: 0x04 });
}
function termReq() {
  const h = Buffer.alloc(16);
  h.writeUInt16LE(1, 0);
  return pdu(0x02, h, Buffer.alloc(0));
}
const SUBNQN = 'nqn.2024-01.io.nvmf-target:fuzz';
const HOSTNQN = 'nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555';
function connectData(cntlid = 0xffff) {
  const d = Buffer.alloc(1024);
  Buffer.from('0123456789abcdef0123456789abcdef', 'hex').copy(d, 0);
  d.writeUInt16LE(cntlid, 16);
  d.write(SUBNQN, 256, 'ascii');
  d.write(HOSTNQN, 512, 'ascii');
  return d;
}
const connect = (o = {}) => capsule(sqe({ opc: 0x7f, fctype: 1, sglLen: 1024, inCapsule: true, ...o }), connectData(), o);
const payload = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

// tcp_pdu: knobs byte + a connection's byte stream.
write('tcp_pdu', 'connect', Buffer.concat([Buffer.from([0x03]), icreq(), connect()]));
write('tcp_pdu', 'r2t-write', Buffer.concat([
  Buffer.from([0x83]), icreq(), connect(), capsule(sqe({ opc: 0x01, cid: 0, sglLen: 8192, cdw12: 15 })),
  h2c(0, 0, 0, payload(4096, 1)), h2c(0, 0, 4096, payload(4096, 2)), termReq(),
]));
write('tcp_pdu', 'digests', Buffer.concat([
  Buffer.from([0x83]), icreq({ hdgst: true, ddgst: true }), connect({ hdgst: true, ddgst: true }),
  capsule(sqe({ opc: 0x01, sglLen: 512, inCapsule: true }), payload(512, 3), { hdgst: true, ddgst: true }),
  h2c(0, 0, 0, payload(1024, 4), { hdgst: true, ddgst: true }),
]));
write('tcp_pdu', 'hpda', Buffer.concat([Buffer.from([0x01]), icreq({ hpda: 31 }), capsule(sqe({ opc: 0x06, sglLen: 4096, cdw10: 1 }))]));

// capsule_sgl: two limit bytes + one capsule PDU.
const limits = Buffer.from([3, 5]); // 8 KiB in-capsule, 128 KiB MDTS
write('capsule_sgl', 'connect', Buffer.concat([limits, connect()]));
write('capsule_sgl', 'write-incapsule', Buffer.concat([limits, capsule(sqe({ opc: 0x01, sglLen: 4096, inCapsule: true, cdw12: 7 }), payload(4096, 5))]));
write('capsule_sgl', 'write-r2t', Buffer.concat([limits, capsule(sqe({ opc: 0x01, sglLen: 65536, cdw12: 127 }))]));
write('capsule_sgl', 'read', Buffer.concat([limits, capsule(sqe({ opc: 0x02, sglLen: 131072, cdw10: 100, cdw12: 255 }))]));
write('capsule_sgl', 'identify', Buffer.concat([limits, capsule(sqe({ opc: 0x06, nsid: 0, sglLen: 4096, cdw10: 1 }))]));
write('capsule_sgl', 'get-log-page', Buffer.concat([limits, capsule(sqe({ opc: 0x02 | 0x00, nsid: 0xffffffff, sglLen: 512, cdw10: 0x007f0002 }))]));
write('capsule_sgl', 'dsm', Buffer.concat([limits, capsule(sqe({ opc: 0x09, sglLen: 32, inCapsule: true, cdw10: 1 }), payload(32, 6))]));

// target_tcp: byte 0 picks the harness's prologue ((b & 7) % 5: 0 none,
// 1 ICReq, 2 + admin Connect, 3 + CC.EN, 4 ICReq + I/O queue Connect; bit 3
// digests), then host PDUs.
function admin(opc, { cid, nsid = 0, cdw10 = 0, cdw11 = 0, len = 0, data } = {}) {
  const s = Buffer.alloc(64);
  s[0] = opc;
  s[1] = 0x40;
  s.writeUInt16LE(cid, 2);
  s.writeUInt32LE(nsid, 4);
  s.writeUInt32LE(data ? data.length : len, 32);
  s[39] = data ? 0x01 : 0x5a;
  s.writeUInt32LE(cdw10, 40);
  s.writeUInt32LE(cdw11, 44);
  return capsule(s, data ?? Buffer.alloc(0));
}
function io(opc, { cid, slba = 0, nlb = 1, data, len = 0, cdw10, cdw11 = 0 }) {
  const s = Buffer.alloc(64);
  s[0] = opc;
  s[1] = 0x40;
  s.writeUInt16LE(cid, 2);
  s.writeUInt32LE(1, 4);
  s.writeUInt32LE(data ? data.length : len, 32);
  s[39] = data ? 0x01 : 0x5a;
  s.writeBigUInt64LE(BigInt(slba), 40);
  if (cdw10 !== undefined) s.writeUInt32LE(cdw10, 40);
  s.writeUInt32LE(cdw11, 44);
  s.writeUInt32LE(nlb - 1, 48);
  return capsule(s, data ?? Buffer.alloc(0));
}
function property(cid, set, ofst, value = 0, wide = false) {
  const s = Buffer.alloc(64);
  s[0] = 0x7f;
  s[1] = 0x40;
  s.writeUInt16LE(cid, 2);
  s[4] = set ? 0x00 : 0x04;
  s[40] = wide ? 1 : 0;
  s.writeUInt32LE(ofst, 44);
  s.writeUInt32LE(value, 48);
  return capsule(s);
}
const seq = (b0, ...pdus) => Buffer.concat([Buffer.from([b0]), ...pdus]);
write('target_tcp', 'admin-identify', seq(3,
  admin(0x06, { cid: 10, cdw10: 1, len: 4096 }), admin(0x06, { cid: 11, nsid: 1, cdw10: 0, len: 4096 }),
  admin(0x06, { cid: 12, cdw10: 2, len: 4096 }), admin(0x06, { cid: 13, nsid: 1, cdw10: 3, len: 4096 })));
write('target_tcp', 'admin-logs', seq(3,
  admin(0x02, { cid: 20, nsid: 0xffffffff, cdw10: (127 << 16) | 0x01, len: 512 }),
  admin(0x02, { cid: 21, nsid: 0xffffffff, cdw10: (127 << 16) | 0x02, len: 512 }),
  admin(0x02, { cid: 22, nsid: 0xffffffff, cdw10: (1023 << 16) | 0x04, len: 4096 }),
  admin(0x02, { cid: 23, cdw10: (255 << 16) | 0x03, len: 1024 })));
write('target_tcp', 'admin-features', seq(3,
  admin(0x0a, { cid: 30, cdw10: 0x07 }), admin(0x0a, { cid: 31, cdw10: 0x0f }), admin(0x09, { cid: 32, cdw10: 0x0f, cdw11: 10000 }),
  admin(0x09, { cid: 33, cdw10: 0x0b, cdw11: 0x100 }), admin(0x18, { cid: 34 }), admin(0x0c, { cid: 35 }), admin(0x0c, { cid: 36 }),
  property(37, false, 0x00, 0, true), property(38, false, 0x08), property(39, true, 0x14, 0x00464001)));
write('target_tcp', 'admin-disconnect', seq(3, admin(0x0c, { cid: 40 }), (() => { const s2 = Buffer.alloc(64); s2[0] = 0x7f; s2[1] = 0x40; s2.writeUInt16LE(41, 2); s2[4] = 0x08; return capsule(s2); })()));
write('target_tcp', 'before-enable', seq(2, property(50, false, 0x1c), admin(0x06, { cid: 51, cdw10: 1, len: 4096 }), property(52, true, 0x14, 1)));
write('target_tcp', 'io-rw', seq(4,
  io(0x01, { cid: 60, slba: 0, nlb: 1, data: payload(512, 20) }), io(0x02, { cid: 61, slba: 0, nlb: 8, len: 4096 }),
  io(0x05, { cid: 62, slba: 0, nlb: 1, data: payload(512, 20) }), io(0x08, { cid: 63, slba: 8, nlb: 8 }),
  io(0x00, { cid: 64 }), io(0x09, { cid: 65, data: Buffer.concat([Buffer.alloc(4), le32(8), Buffer.from([16, 0, 0, 0, 0, 0, 0, 0])]), cdw10: 0, cdw11: 4 })));
write('target_tcp', 'io-r2t', seq(4 | 0x10, io(0x01, { cid: 70, slba: 16, nlb: 16, len: 8192 }), h2c(70, 0, 0, payload(8192, 21)), io(0x02, { cid: 71, slba: 16, nlb: 16, len: 8192 })));
write('target_tcp', 'digests', seq(3 | 8, capsule(sqe({ opc: 0x06, cid: 90, nsid: 0, sglLen: 4096, cdw10: 1 }), Buffer.alloc(0), { hdgst: true, ddgst: true })));
write('target_tcp', 'discovery', seq(1, (() => {
  const s2 = sqe({ opc: 0x7f, fctype: 1, sglLen: 1024, inCapsule: true });
  const d = connectData();
  d.fill(0, 256, 512);
  d.write('nqn.2014-08.org.nvmexpress.discovery', 256, 'ascii');
  return capsule(s2, d);
})(), property(79, true, 0x14, 0x00460001), admin(0x02, { cid: 80, cdw10: (1023 << 16) | 0x70, len: 4096 })));
write('target_tcp', 'raw', seq(0, icreq({ hdgst: true }), connect({ hdgst: true })));

// ---- DH-HMAC-CHAP messages ----

function negotiate({ tid = 1, hashes = [1, 2, 3], groups = [0, 1, 2, 3, 4, 5], scc = 0 } = {}) {
  const b = Buffer.alloc(8 + 64);
  b.writeUInt16LE(tid, 4);
  b[6] = scc;
  b[7] = 1;
  b[8] = 1;
  b[10] = hashes.length;
  b[11] = groups.length;
  hashes.forEach((h, i) => (b[12 + i] = h));
  groups.forEach((g, i) => (b[42 + i] = g));
  return b;
}
function challenge({ tid = 1, hash = 1, group = 0, dhv = Buffer.alloc(0), seqnum = 7 } = {}) {
  const hl = { 1: 32, 2: 48, 3: 64 }[hash];
  const b = Buffer.alloc(16 + hl + dhv.length);
  b[0] = 1;
  b[1] = 1;
  b.writeUInt16LE(tid, 4);
  b[6] = hl;
  b[8] = hash;
  b[9] = group;
  b.writeUInt16LE(dhv.length, 10);
  b.writeUInt32LE(seqnum, 12);
  payload(hl, 9).copy(b, 16);
  dhv.copy(b, 16 + hl);
  return b;
}
function reply({ tid = 1, hl = 32, cvalid = 0, seqnum = 0, dhv = Buffer.alloc(0) } = {}) {
  const b = Buffer.alloc(16 + 2 * hl + dhv.length);
  b[0] = 1;
  b[1] = 2;
  b.writeUInt16LE(tid, 4);
  b[6] = hl;
  b[8] = cvalid;
  b.writeUInt16LE(dhv.length, 10);
  b.writeUInt32LE(seqnum, 12);
  payload(hl, 10).copy(b, 16);
  if (cvalid) payload(hl, 11).copy(b, 16 + hl);
  dhv.copy(b, 16 + 2 * hl);
  return b;
}
function success1({ tid = 1, hl = 32, rvalid = 0 } = {}) {
  const b = Buffer.alloc(16 + (rvalid ? hl : 0));
  b[0] = 1;
  b[1] = 3;
  b.writeUInt16LE(tid, 4);
  b[6] = hl;
  b[8] = rvalid;
  if (rvalid) payload(hl, 12).copy(b, 16);
  return b;
}
function success2(tid = 1) {
  const b = Buffer.alloc(16);
  b[0] = 1;
  b[1] = 4;
  b.writeUInt16LE(tid, 4);
  return b;
}
function failure(id, tid = 1, reason = 1) {
  const b = Buffer.alloc(8);
  b[1] = id;
  b.writeUInt16LE(tid, 4);
  b[6] = 1;
  b[7] = reason;
  return b;
}
const dh256 = payload(256, 13);
const msgs = {
  negotiate: negotiate(),
  'negotiate-sha256-null': negotiate({ hashes: [1], groups: [0] }),
  challenge: challenge(),
  'challenge-ffdhe2048': challenge({ hash: 3, group: 1, dhv: dh256 }),
  reply: reply(),
  'reply-bidi': reply({ hl: 48, cvalid: 1, seqnum: 5 }),
  'reply-ffdhe2048': reply({ hl: 64, dhv: dh256 }),
  success1: success1(),
  'success1-rvalid': success1({ rvalid: 1 }),
  success2: success2(),
  failure1: failure(0xf1),
  failure2: failure(0xf0, 1, 6),
};
for (const [k, v] of Object.entries(msgs)) write('auth_messages', k, v);

// auth_session: flags byte, then [op][len16][payload] chunks (even op: Auth
// Send of the payload; odd op: Auth Receive of AL = len).
function script(flags, steps) {
  const parts = [Buffer.from([flags])];
  for (const s of steps) {
    const h = Buffer.alloc(3);
    if (Buffer.isBuffer(s)) {
      h[0] = 0;
      h.writeUInt16LE(s.length, 1);
      parts.push(h, s);
    } else {
      h[0] = 1;
      h.writeUInt16LE(s.recv, 1);
      parts.push(h);
    }
  }
  return Buffer.concat(parts);
}
write('auth_session', 'null-group', script(0, [negotiate({ hashes: [1], groups: [0] }), { recv: 4096 }, reply(), { recv: 4096 }]));
write('auth_session', 'bidirectional', script(2, [negotiate({ hashes: [2], groups: [0] }), { recv: 4096 }, reply({ hl: 48, cvalid: 1, seqnum: 3 }), { recv: 4096 }, success2()]));
write('auth_session', 'ffdhe2048', script(1, [negotiate({ hashes: [3], groups: [1] }), { recv: 4096 }, reply({ hl: 64, dhv: dh256 }), { recv: 4096 }]));
write('auth_session', 'host-failure', script(0, [negotiate(), { recv: 64 }, failure(0xf0, 1, 6), { recv: 16 }]));
write('auth_session', 'short-recv', script(0, [negotiate({ hashes: [1], groups: [0] }), { recv: 20 }, { recv: 8 }]));

// ---- DHHC-1 keys ----

function keyText(hmac, secret) {
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(zlib.crc32(secret) >>> 0);
  return `DHHC-1:${hmac.toString(16).padStart(2, '0')}:${Buffer.concat([secret, crc]).toString('base64')}:`;
}
const secret = (n, tag) => createHash('sha512').update(tag).digest().subarray(0, n);
write('dhchap_key', 'none-32', keyText(0, secret(32, 'a')));
write('dhchap_key', 'none-64', keyText(0, secret(64, 'b')));
write('dhchap_key', 'sha256', keyText(1, secret(32, 'c')));
write('dhchap_key', 'sha384', keyText(2, secret(48, 'd')));
write('dhchap_key', 'sha512', keyText(3, secret(64, 'e')));
write('dhchap_key', 'bad-crc', keyText(1, secret(32, 'f')).replace(/.:$/, 'A:'));
write('dhchap_key', 'no-terminator', keyText(0, secret(32, 'g')).slice(0, -1));

// ---- controller-to-host PDUs (host library) ----

// Byte 0 of each host_response input: bits 1:0 the digests the host asks
// for, bits 7:2 the feed chunk size ((b >> 2) * 4 + 1 bytes).
function hostStream(parts, knobs = 0xfc) {
  return Buffer.concat([Buffer.from([knobs]), ...parts]);
}
function icresp({ hdgst = false, ddgst = false, maxh2c = 131072 } = {}) {
  const b = Buffer.alloc(128);
  b[0] = 0x01;
  b[2] = 128;
  b.writeUInt32LE(128, 4);
  b[11] = (hdgst ? 1 : 0) | (ddgst ? 2 : 0);
  b.writeUInt32LE(maxh2c, 12);
  return b;
}
function cqe(cid, status = 0, o = {}) {
  const c = Buffer.alloc(16);
  c.writeUInt16LE(1, 8);
  c.writeUInt16LE(cid, 12);
  c.writeUInt16LE(status << 1, 14);
  return pdu(0x05, c, Buffer.alloc(0), o);
}
function c2h(cid, datao, data, last = true, success = false, o = {}) {
  const h = Buffer.alloc(16);
  h.writeUInt16LE(cid, 0);
  h.writeUInt32LE(datao, 4);
  h.writeUInt32LE(data.length, 8);
  return pdu(0x07, h, data, { ...o, flags: (last ? 0x04 : 0) | (success ? 0x08 : 0) });
}
function r2t(cid, ttag, off, len) {
  const h = Buffer.alloc(16);
  h.writeUInt16LE(cid, 0);
  h.writeUInt16LE(ttag, 2);
  h.writeUInt32LE(off, 4);
  h.writeUInt32LE(len, 8);
  return pdu(0x09, h, Buffer.alloc(0));
}
function c2hTerm() {
  const h = Buffer.alloc(16);
  h.writeUInt16LE(2, 0);
  return pdu(0x03, h, Buffer.alloc(0));
}
// The harness submits, on a fresh queue of depth 8: a 4 KiB read, an 8 KiB
// write (R2T), a command without data. Their CIDs are tag | generation << 3
// (host/cid_pool.h): 8, 9, 10.
write('host_response', 'read-write-none', hostStream([
  icresp(), c2h(8, 0, payload(4096, 14)), cqe(8), r2t(9, 3, 0, 8192), cqe(9), cqe(10),
]));
write('host_response', 'c2h-success', hostStream([icresp(), c2h(8, 0, payload(2048, 15), false), c2h(8, 2048, payload(2048, 16), true, true), cqe(10, 0x0b)], 0x1c));
write('host_response', 'digests', hostStream([icresp({ hdgst: true, ddgst: true }), c2h(8, 0, payload(4096, 17), true, false, { hdgst: true, ddgst: true }), cqe(8, 0, { hdgst: true }), cqe(10, 0, { hdgst: true }), cqe(9, 0x80, { hdgst: true })], 0x07));
write('host_response', 'term', hostStream([icresp(), c2hTerm()]));
console.log(`seeds written under ${path.relative(process.cwd(), corpus)}/`);
