/**
 * The NVMe/TCP host library (lib/host.ts + src-native/host/) against a
 * scripted fake target written here in JS: the connect sequence, I/O paths
 * (in-capsule, R2T/H2C split by MAXH2CDATA, C2H with and without the
 * SUCCESS flag), digests, keep alive, timeouts, discovery, raw commands,
 * and a target that misbehaves on purpose (every length and ID it sends is
 * suspect). No real target is needed.
 */
import t from 'tap';
import * as net from 'node:net';
import { connect, discover, DISCOVERY_NQN, NvmfError, type HostController } from '../dist';

// ---------------------------------------------------------------------------
// CRC32C (the NVMe/TCP digest), bitwise table.

const CRC_TABLE = (() => {
  const tbl = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    tbl[i] = c >>> 0;
  }
  return tbl;
})();

function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------
// Fake target.

const SUBNQN = 'nqn.2024-01.io.nvmf-target:fake';
const BS = 512;
const NSZE = 4096; // blocks

interface Cmd {
  qid: number;
  sqe: Buffer;
  opc: number;
  cid: number;
  data: Buffer; // host-to-controller data (in-capsule or from H2CData)
  incapsule: boolean;
}

interface Reply {
  status?: number; // (SCT << 8) | SC
  dw0?: number;
  dw1?: number;
  data?: Buffer; // controller-to-host data
}

interface FakeOptions {
  host?: string;
  maxh2cdata?: number;
  cpda?: number;
  ioccsz?: number;
  mdts?: number;
  /** Answer the ICReq (return a Buffer to send instead, or null for silence). */
  icresp?: (icreq: Buffer) => Buffer | null | undefined;
  /** Override a command: return a Reply, 'silent' (never answer), or undefined (default handling). */
  command?: (c: Cmd, conn: FakeConn) => Reply | 'silent' | undefined;
  /** C2H data: send read data with the SUCCESS flag instead of a CapsuleResp. */
  successFlag?: boolean;
  /** Bytes per C2HData PDU. */
  c2hChunk?: number;
  /** Corrupt the data digest of C2H PDUs on I/O queues. */
  badDdgst?: boolean;
  discoveryLog?: () => Buffer;
}

function status16(st: number): number {
  return ((st & 0xff) << 1) | (((st >> 8) & 0x7) << 9);
}

class FakeConn {
  qid = -1;
  hdgst = false;
  ddgst = false;
  #buf = Buffer.alloc(0);
  #pendingR2t = new Map<number, { cmd: Cmd; got: Buffer[]; len: number; ttag: number }>();
  #ttag = 1;

  constructor(readonly fake: FakeTarget, readonly sock: net.Socket) {
    sock.on('data', (d) => this.#onData(d));
    sock.on('error', () => undefined);
  }

  #onData(d: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, d]);
    while (this.#buf.length >= 8) {
      const plen = this.#buf.readUInt32LE(4);
      if (plen < 8 || plen > 1 << 24) {
        this.sock.destroy();
        return;
      }
      if (this.#buf.length < plen) return;
      const pdu = this.#buf.subarray(0, plen);
      this.#buf = this.#buf.subarray(plen);
      this.#onPdu(Buffer.from(pdu));
    }
  }

  #onPdu(p: Buffer): void {
    const type = p[0]!;
    const flags = p[1]!;
    const hlen = p[2]!;
    const pdo = p[3]!;
    this.fake.pdus.push({ type, flags, len: p.length, pdo });
    if (type === 0x00) {
      const want = p[11]!;
      this.hdgst = (want & 1) !== 0;
      this.ddgst = (want & 2) !== 0;
      const custom = this.fake.opts.icresp?.(p);
      if (custom === null) return;
      const r = custom ?? this.fake.icresp(want);
      this.sock.write(r);
      return;
    }
    if (this.hdgst) {
      if (!(flags & 1) || p.readUInt32LE(hlen) !== crc32c(p.subarray(0, hlen))) {
        this.fake.errors.push(`bad header digest on PDU type ${type}`);
        this.sock.destroy();
        return;
      }
    }
    const dd = flags & 2 ? 4 : 0;
    const data = pdo ? p.subarray(pdo, p.length - dd) : Buffer.alloc(0);
    if (dd && p.readUInt32LE(p.length - 4) !== crc32c(data)) {
      this.fake.errors.push(`bad data digest on PDU type ${type}`);
    }
    if (type === 0x04) {
      const sqe = Buffer.from(p.subarray(8, 72));
      const cmd: Cmd = { qid: this.qid, sqe, opc: sqe[0]!, cid: sqe.readUInt16LE(2), data: Buffer.from(data), incapsule: data.length > 0 };
      const sglId = sqe[39]!;
      const sglLen = sqe.readUInt32LE(32);
      const h2c = sqe[0] === 0x7f ? (sqe[4]! & 1) === 1 : (sqe[0]! & 3) === 1;
      if (sglId === 0x5a && h2c && sglLen > 0) {
        const ttag = this.#ttag++;
        this.#pendingR2t.set(cmd.cid, { cmd, got: [], len: sglLen, ttag });
        this.fake.r2ts++;
        this.#send(0x09, this.#r2t(cmd.cid, ttag, 0, sglLen));
        return;
      }
      this.#exec(cmd);
      return;
    }
    if (type === 0x06) {
      const cccid = p.readUInt16LE(8);
      const datao = p.readUInt32LE(12);
      const datal = p.readUInt32LE(16);
      const st = this.#pendingR2t.get(cccid);
      if (!st || datal !== data.length) {
        this.fake.errors.push(`unexpected H2CData cid ${cccid}`);
        return;
      }
      this.fake.h2cPdus.push({ datao, datal, last: (flags & 4) !== 0 });
      st.got.push(Buffer.from(data));
      const total = st.got.reduce((a, b) => a + b.length, 0);
      if (total === st.len) {
        this.#pendingR2t.delete(cccid);
        st.cmd.data = Buffer.concat(st.got);
        this.#exec(st.cmd);
      }
      return;
    }
    this.fake.errors.push(`unexpected PDU type ${type}`);
  }

  #r2t(cid: number, ttag: number, off: number, len: number): Buffer {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(cid, 0);
    b.writeUInt16LE(ttag, 2);
    b.writeUInt32LE(off, 4);
    b.writeUInt32LE(len, 8);
    return b;
  }

  /** Sends a PDU whose specific header (after the 8-byte common header) is `psh`. */
  #send(type: number, psh: Buffer, data?: Buffer, extraFlags = 0): void {
    const hlen = 8 + psh.length;
    const hd = this.hdgst ? 4 : 0;
    const dd = data && this.ddgst ? 4 : 0;
    const pdo = data ? hlen + hd : 0;
    const plen = hlen + hd + (data ? data.length + dd : 0);
    const h = Buffer.alloc(hlen + hd);
    h[0] = type;
    h[1] = (this.hdgst ? 1 : 0) | (dd ? 2 : 0) | extraFlags;
    h[2] = hlen;
    h[3] = pdo;
    h.writeUInt32LE(plen, 4);
    psh.copy(h, 8);
    if (hd) h.writeUInt32LE(crc32c(h.subarray(0, hlen)), hlen);
    const parts = [h];
    if (data) {
      parts.push(data);
      if (dd) {
        const d = Buffer.alloc(4);
        d.writeUInt32LE(this.fake.opts.badDdgst && this.qid > 0 ? (crc32c(data) ^ 1) >>> 0 : crc32c(data));
        parts.push(d);
      }
    }
    this.sock.write(Buffer.concat(parts));
  }

  sendRaw(b: Buffer): void {
    this.sock.write(b);
  }

  respond(cid: number, r: Reply): void {
    const cqe = Buffer.alloc(16);
    cqe.writeUInt32LE((r.dw0 ?? 0) >>> 0, 0);
    cqe.writeUInt32LE((r.dw1 ?? 0) >>> 0, 4);
    cqe.writeUInt16LE(Math.max(this.qid, 0), 10);
    cqe.writeUInt16LE(cid, 12);
    cqe.writeUInt16LE(status16(r.status ?? 0), 14);
    const data = r.data;
    const success = this.fake.opts.successFlag && data && data.length > 0 && !r.status;
    if (data && data.length > 0) {
      const chunk = this.fake.opts.c2hChunk ?? 8192;
      for (let off = 0; off < data.length; off += chunk) {
        const n = Math.min(chunk, data.length - off);
        const last = off + n === data.length;
        const psh = Buffer.alloc(16);
        psh.writeUInt16LE(cid, 0);
        psh.writeUInt32LE(off, 4);
        psh.writeUInt32LE(n, 8);
        this.#send(0x07, psh, data.subarray(off, off + n), (last ? 4 : 0) | (last && success ? 8 : 0));
      }
    }
    if (!success) this.#send(0x05, cqe);
  }

  #exec(c: Cmd): void {
    this.fake.commands.push(c);
    const custom = this.fake.opts.command?.(c, this);
    if (custom === 'silent') return;
    const r = custom ?? this.fake.defaultReply(c, this);
    this.respond(c.cid, r);
  }
}

class FakeTarget {
  server: net.Server;
  port = 0;
  conns: FakeConn[] = [];
  commands: Cmd[] = [];
  pdus: Array<{ type: number; flags: number; len: number; pdo: number }> = [];
  h2cPdus: Array<{ datao: number; datal: number; last: boolean }> = [];
  errors: string[] = [];
  r2ts = 0;
  cc = 0;
  ram = Buffer.alloc(NSZE * BS);

  constructor(readonly opts: FakeOptions = {}) {
    this.server = net.createServer((s) => this.conns.push(new FakeConn(this, s)));
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, this.opts.host ?? '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.sock.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  icresp(dgst: number): Buffer {
    const b = Buffer.alloc(128);
    b[0] = 0x01;
    b[2] = 128;
    b.writeUInt32LE(128, 4);
    b.writeUInt16LE(0, 8); // pfv
    b[10] = this.opts.cpda ?? 0;
    b[11] = dgst;
    b.writeUInt32LE(this.opts.maxh2cdata ?? 131072, 12);
    return b;
  }

  defaultReply(c: Cmd, conn: FakeConn): Reply {
    const s = c.sqe;
    if (c.opc === 0x7f) {
      const fctype = s[4]!;
      if (fctype === 0x01) {
        conn.qid = s.readUInt16LE(42);
        return { dw0: 1 };
      }
      if (fctype === 0x04) {
        const ofst = s.readUInt32LE(44);
        if (ofst === 0) return { dw0: 127 | (2 << 24), dw1: 1 << 5 }; // MQES 127, TO 1 s, CSS NVM
        if (ofst === 0x08) return { dw0: 0x00010400 };
        if (ofst === 0x14) return { dw0: this.cc };
        if (ofst === 0x1c) return { dw0: this.cc & 1 ? 1 | (((this.cc >> 14) & 3) === 1 ? 2 << 2 : 0) : 0 };
        return { status: 0x002 };
      }
      if (fctype === 0x00) {
        if (s.readUInt32LE(44) === 0x14) this.cc = s.readUInt32LE(48);
        return {};
      }
      return { status: 0x001 };
    }
    if (conn.qid === 0) {
      switch (c.opc) {
        case 0x06: {
          const cns = s[40]!;
          const nsid = s.readUInt32LE(4);
          const d = Buffer.alloc(4096);
          if (cns === 1) {
            d.writeUInt16LE(0x1b36, 0);
            d.write('FAKE0001'.padEnd(20), 4, 'ascii');
            d.write('fake-model'.padEnd(40), 24, 'ascii');
            d.write('1.0'.padEnd(8), 64, 'ascii');
            d[77] = this.opts.mdts ?? 5;
            d.writeUInt16LE(1, 78);
            d.writeUInt32LE(0x00010400, 80);
            d.writeUInt32LE(1, 516); // nn
            d.writeUInt16LE(0x0d, 520); // oncs: compare, dsm, write zeroes
            d.write(SUBNQN, 768, 'ascii');
            d.writeUInt32LE(this.opts.ioccsz ?? (8192 + 64) / 16, 1792);
            d.writeUInt32LE(1, 1796);
            return { data: d };
          }
          if (cns === 0) {
            if (nsid !== 1) return { data: d };
            d.writeBigUInt64LE(BigInt(NSZE), 0);
            d.writeBigUInt64LE(BigInt(NSZE), 8);
            d.writeBigUInt64LE(BigInt(NSZE), 16);
            d[130] = 9; // lbaf[0].lbads: 512
            d.fill(0xab, 104, 120); // nguid
            return { data: d };
          }
          if (cns === 2) {
            d.writeUInt32LE(1, 0);
            return { data: d };
          }
          if (cns === 3) {
            d[0] = 3;
            d[1] = 16;
            Buffer.from('00112233445566778899aabbccddeeff', 'hex').copy(d, 4);
            return { data: d };
          }
          return { status: 0x002 };
        }
        case 0x09: {
          const nq = s.readUInt32LE(44) & 0xffff;
          return { dw0: nq | (nq << 16) };
        }
        case 0x18:
          return {};
        case 0x02: {
          const lid = s[40]!;
          const numd = ((s.readUInt32LE(40) >>> 16) | ((s.readUInt32LE(44) & 0xffff) << 16)) + 1;
          const lpo = Number(s.readBigUInt64LE(48));
          let page: Buffer;
          if (lid === 0x70 && this.opts.discoveryLog) page = this.opts.discoveryLog();
          else if (lid === 0x02) page = Buffer.alloc(512, 0x5a);
          else return { status: 0x109 };
          const out = Buffer.alloc(numd * 4);
          page.subarray(lpo, lpo + out.length).copy(out);
          return { data: out };
        }
        default:
          return { status: 0x001 };
      }
    }
    const nsid = s.readUInt32LE(4);
    const slba = Number(s.readBigUInt64LE(40));
    const nlb = (s.readUInt32LE(48) & 0xffff) + 1;
    if (c.opc !== 0x00 && nsid !== 1) return { status: 0x00b };
    if ((c.opc === 0x01 || c.opc === 0x02 || c.opc === 0x05 || c.opc === 0x08) && slba + nlb > NSZE) return { status: 0x080 };
    switch (c.opc) {
      case 0x00:
        return {};
      case 0x01:
        c.data.copy(this.ram, slba * BS);
        return {};
      case 0x02:
        return { data: Buffer.from(this.ram.subarray(slba * BS, (slba + nlb) * BS)) };
      case 0x05:
        return c.data.equals(this.ram.subarray(slba * BS, (slba + nlb) * BS)) ? {} : { status: 0x285 };
      case 0x08:
        this.ram.fill(0, slba * BS, (slba + nlb) * BS);
        return {};
      case 0x09:
        return {};
      default:
        return { status: 0x001 };
    }
  }
}

async function fake(t: Tap.Test, opts: FakeOptions = {}): Promise<FakeTarget> {
  const f = await new FakeTarget(opts).start();
  t.teardown(() => f.stop());
  return f;
}

async function host(t: Tap.Test, f: FakeTarget, extra: Record<string, unknown> = {}): Promise<HostController> {
  const h = await connect({ address: '127.0.0.1', port: f.port, subnqn: SUBNQN, ...extra });
  t.teardown(() => h.close());
  return h;
}

function nextEvent<T>(h: HostController, name: string, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    h.once(name, (v: T) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

declare namespace Tap {
  type Test = Parameters<Parameters<typeof t.test>[1]>[0];
}

// ---------------------------------------------------------------------------

t.test('options are validated, naming the field', async (t) => {
  const base = { address: '127.0.0.1', subnqn: SUBNQN };
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ subnqn: SUBNQN }, /options\.address/],
    [{ ...base, port: 0 }, /options\.port/],
    [{ ...base, port: 70000 }, /options\.port/],
    [{ ...base, subnqn: '' }, /options\.subnqn/],
    [{ ...base, subnqn: 'x'.repeat(224) }, /options\.subnqn/],
    [{ ...base, hostid: 'not-a-uuid' }, /options\.hostid/],
    [{ ...base, queueDepth: 1 }, /options\.queueDepth/],
    [{ ...base, ioQueues: -1 }, /options\.ioQueues/],
    [{ ...base, kato: 1.5 }, /options\.kato/],
    [{ ...base, hdgst: 'yes' }, /options\.hdgst/],
    [{ ...base, timeoutMs: 0 }, /options\.timeoutMs/],
    [{ ...base, bogus: 1 }, /options\.bogus/],
  ];
  for (const [o, re] of bad) {
    await t.rejects(connect(o as never), { code: 'ERR_INVALID_ARGUMENT', message: re }, JSON.stringify(o));
  }
  await t.rejects(connect({ ...base, transport: 'rdma' } as never), { code: 'ERR_TRANSPORT_UNAVAILABLE' });
});

t.test('connection refused and unresolvable names are ERR_CONNECTION', async (t) => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  await t.rejects(connect({ address: '127.0.0.1', port, subnqn: SUBNQN }), { code: 'ERR_CONNECTION', errno: 111, message: /refused/i });
  await t.rejects(connect({ address: 'no-such-host.invalid', subnqn: SUBNQN }), { code: 'ERR_CONNECTION', message: /resolve/ });
});

t.test('a silent target times out the connect', async (t) => {
  const f = await fake(t, { icresp: () => null });
  const t0 = Date.now();
  await t.rejects(connect({ address: '127.0.0.1', port: f.port, subnqn: SUBNQN, timeoutMs: 300 }), {
    code: 'ERR_TIMEOUT',
    message: /timed out after 300 ms/,
  });
  t.ok(Date.now() - t0 < 3000, 'gave up in time');
});

t.test('connect sequence, identify, namespaces', async (t) => {
  const f = await fake(t);
  const h = await host(t, f, { ioQueues: 2, queueDepth: 16, hostid: '11111111-2222-3333-4444-555555555555' });
  t.match(h.info, { cntlid: 1, ioQueues: 2, queueDepth: 16, maxTransferBytes: 131072, inCapsuleBytes: 8192, discovery: false });
  // The order of the admin sequence.
  const admin = f.commands.filter((c) => c.qid === 0 || c.opc === 0x7f).map((c) => (c.opc === 0x7f ? `f${c.sqe[4]}` : `a${c.opc}`));
  t.same(admin.slice(0, 4), ['f1', 'f4', 'f0', 'f4'], 'Connect, CAP, CC, CSTS');
  t.ok(admin.includes('a6') && admin.includes('a9'), 'Identify and Set Features');
  const conn0 = f.commands[0]!;
  t.equal(conn0.sqe.readUInt16LE(42), 0, 'admin Connect qid 0');
  t.equal(conn0.sqe.readUInt16LE(44), 31, 'admin sqsize 31');
  t.equal(conn0.sqe.readUInt32LE(48), 5000, 'kato 5000 ms');
  t.equal(conn0.data.length, 1024, 'connect data in the capsule');
  t.equal(conn0.data.readUInt16LE(16), 0xffff, 'dynamic cntlid');
  t.equal(conn0.data.subarray(0, 16).toString('hex'), '11111111222233334444555555555555', 'hostid');
  t.match(conn0.data.toString('ascii', 256, 256 + SUBNQN.length), SUBNQN);
  t.match(conn0.data.toString('ascii', 512, 600), /^nqn\.2014-08\.org\.nvmexpress:uuid:11111111-2222/);
  t.equal(f.cc & 1, 1, 'CC.EN set');
  t.equal((f.cc >> 16) & 0xf, 6, 'IOSQES 6');
  t.equal((f.cc >> 20) & 0xf, 4, 'IOCQES 4');
  const ioConnects = f.commands.filter((c) => c.opc === 0x7f && c.sqe[4] === 1 && c.sqe.readUInt16LE(42) > 0);
  t.same(ioConnects.map((c) => c.sqe.readUInt16LE(42)).sort(), [1, 2], 'two I/O queues connected');
  t.ok(ioConnects.every((c) => c.sqe.readUInt16LE(44) === 15 && c.data.readUInt16LE(16) === 1), 'sqsize 15, cntlid 1');

  const id = await h.identify();
  t.match(id, { vid: 0x1b36, sn: 'FAKE0001', mn: 'fake-model', fr: '1.0', cntlid: 1, nn: 1, subnqn: SUBNQN, ioccsz: 516, version: '1.4.0' });
  t.equal(id.raw.length, 4096);
  const ns = await h.namespaces();
  t.equal(ns.length, 1);
  t.match(ns[0], { nsid: 1, nsze: NSZE, blockSize: 512, uuid: '00112233-4455-6677-8899-aabbccddeeff', nguid: 'ab'.repeat(16) });
  t.same(await h.activeNamespaceIds(), [1]);
});

for (const [hdgst, ddgst] of [[false, false], [true, false], [false, true], [true, true]] as const) {
  t.test(`I/O paths, hdgst=${hdgst} ddgst=${ddgst}`, async (t) => {
    const f = await fake(t, { maxh2cdata: 4096, c2hChunk: 3000 });
    const h = await host(t, f, { hdgst, ddgst, queueDepth: 4 });
    // In-capsule (<= 8 KiB).
    const small = Buffer.alloc(2048, 0x11);
    await h.write(1, 0, small);
    const w0 = f.commands.find((c) => c.qid === 1 && c.opc === 0x01)!;
    t.ok(w0.incapsule, 'small write travels in the capsule');
    t.equal(f.r2ts, 0, 'no R2T for it');
    // R2T: 64 KiB with MAXH2CDATA 4096 -> 16 H2CData PDUs, LAST on the final one.
    const big = Buffer.alloc(65536);
    for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
    await h.write(1, 100, big);
    t.equal(f.r2ts, 1, 'one R2T');
    t.equal(f.h2cPdus.length, 16, 'split at MAXH2CDATA');
    t.ok(f.h2cPdus.every((p, i) => p.datal === 4096 && p.datao === i * 4096 && p.last === (i === 15)), 'offsets and LAST flag');
    t.ok(f.ram.subarray(100 * BS, 100 * BS + big.length).equals(big), 'target has the data');
    // C2H in odd-sized PDUs.
    t.ok((await h.read(1, 100, big.length / BS)).equals(big), 'read back');
    t.ok((await h.read(1, 0, 4)).equals(small), 'read back small');
    // Many more commands than the queue depth wait for free slots.
    const reads = await Promise.all(Array.from({ length: 64 }, (_, i) => h.read(1, 100 + (i % 100), 1)));
    t.ok(reads.every((r, i) => r.equals(big.subarray(((i % 100)) * BS, ((i % 100) + 1) * BS))), '64 reads through depth 4');
    t.same(f.errors, [], 'the fake target saw no digest or framing errors');
    if (hdgst) t.ok(f.pdus.filter((p) => p.type !== 0).every((p) => p.flags & 1), 'every PDU carried a header digest');
  });
}

t.test('IPv6 and host names', async (t) => {
  const f6 = await new FakeTarget({ host: '::1' }).start().catch(() => undefined);
  if (!f6) {
    t.skip('no IPv6 loopback on this machine');
  } else {
    t.teardown(() => f6.stop());
    const h = await connect({ address: '::1', port: f6.port, subnqn: SUBNQN });
    t.equal(h.info.cntlid, 1, 'connected over IPv6');
    await h.close();
  }
  const f = await fake(t);
  const h = await connect({ address: 'localhost', port: f.port, subnqn: SUBNQN }).catch((e: NvmfError) => e);
  // localhost may resolve to ::1 first where only 127.0.0.1 listens.
  t.ok(!(h instanceof NvmfError) || h.code === 'ERR_CONNECTION', 'a host name is resolved');
  if (!(h instanceof NvmfError)) await h.close();
});

t.test('CPDA: data in capsules and H2CData PDUs starts at the controller alignment', async (t) => {
  const f = await fake(t, { cpda: 3, maxh2cdata: 4096 }); // 16-byte units
  const h = await host(t, f, { hdgst: true });
  await h.write(1, 0, Buffer.alloc(1024, 1)); // in the capsule
  await h.write(1, 8, Buffer.alloc(16384, 2)); // R2T + H2CData
  const withData = f.pdus.filter((p) => (p.type === 0x04 || p.type === 0x06) && p.pdo !== 0);
  t.ok(withData.length >= 5, `${withData.length} PDUs with data`);
  t.ok(withData.every((p) => p.pdo % 16 === 0), 'every data offset is 16-byte aligned');
  t.same(f.errors, []);
  t.ok(f.ram.subarray(0, 1024).every((b) => b === 1) && f.ram.subarray(8 * BS, 8 * BS + 16384).every((b) => b === 2));
});

t.test('C2HData with the SUCCESS flag completes without a response capsule', async (t) => {
  const f = await fake(t, { successFlag: true });
  const h = await host(t, f);
  f.ram.fill(0x77, 0, 8 * BS);
  const r = await h.read(1, 0, 8);
  t.ok(r.every((b) => b === 0x77));
  // And the queue keeps working afterwards.
  t.ok((await h.read(1, 0, 1)).every((b) => b === 0x77));
});

t.test('errors: NVMe status, compare, MDTS splitting, out of range', async (t) => {
  const f = await fake(t, { mdts: 1 }); // 8 KiB per command
  const h = await host(t, f);
  t.equal(h.info.maxTransferBytes, 8192);
  const data = Buffer.alloc(64 * BS, 0x42);
  await h.write(1, 0, data);
  const writes = f.commands.filter((c) => c.qid === 1 && c.opc === 0x01);
  t.equal(writes.length, 4, '32 KiB split into 8 KiB commands');
  t.equal(await h.compare(1, 0, data.subarray(0, BS)), true);
  t.equal(await h.compare(1, 0, Buffer.alloc(BS, 1)), false, 'Compare Failure is false');
  try {
    await h.read(1, NSZE, 1);
    t.fail('should reject');
  } catch (e) {
    t.type(e, NvmfError);
    t.match(e, { code: 'ERR_NVME_STATUS', nvmeStatus: 0x080, message: /Read failed: NVMe status 0x080 \(LBA Out of Range\)/ });
  }
  await t.rejects(h.read(2, 0, 1), { code: 'ERR_NOT_FOUND', message: /namespace 2 is not active/ });
  const rd = Buffer.alloc(64);
  rd[0] = 0x02;
  rd.writeUInt32LE(2, 4);
  t.match(await h.ioRaw(1, rd, Buffer.alloc(BS)), { status: 0x00b }, 'raw read of namespace 2: Invalid Namespace');
  await t.rejects(h.write(1, 0, Buffer.alloc(100)), { code: 'ERR_INVALID_ARGUMENT', message: /data/ });
  await h.writeZeroes(1, 0, 4);
  t.ok(f.ram.subarray(0, 4 * BS).every((b) => b === 0), 'write zeroes');
  await h.deallocate(1, [{ lba: 0, blocks: 8 }, { lba: 100, blocks: 1 }]);
  const dsm = f.commands.find((c) => c.opc === 0x09 && c.qid === 1)!;
  t.equal(dsm.sqe.readUInt32LE(40), 1, 'NR 0-based: 2 ranges');
  t.equal(dsm.sqe.readUInt32LE(44), 4, 'AD attribute');
  t.equal(dsm.data.length, 32);
  t.equal(dsm.data.readUInt32LE(4), 8);
  t.equal(Number(dsm.data.readBigUInt64LE(24)), 100);
  await h.flush(1);
  const smart = await h.getLogPage({ lid: 2, length: 510 });
  t.equal(smart.length, 510);
  t.ok(smart.every((b) => b === 0x5a));
  await t.rejects(h.getLogPage({ lid: 0x33, length: 64 }), { code: 'ERR_NVME_STATUS', nvmeStatus: 0x109, message: /Get Log Page/ });
});

t.test('raw commands resolve with the completion whatever its status', async (t) => {
  const f = await fake(t, {
    command: (c) => (c.opc === 0xc1 ? { status: 0x002, dw0: 0xdead } : c.opc === 0xc2 ? { data: Buffer.from('hello raw') } : undefined),
  });
  const h = await host(t, f);
  const sqe = Buffer.alloc(64);
  sqe[0] = 0xc1;
  const r = await h.adminRaw(sqe);
  t.match(r, { status: 0x002, cqe: { dw0: 0xdead } });
  const sqe2 = Buffer.alloc(64);
  sqe2[0] = 0xc2; // bits 1:0 = 10b: controller to host
  const buf = Buffer.alloc(9);
  const r2 = await h.adminRaw(sqe2, buf);
  t.equal(r2.status, 0);
  t.equal(buf.toString(), 'hello raw');
  const io = Buffer.alloc(64);
  io[0] = 0x99;
  io.writeUInt32LE(1, 4);
  t.match(await h.ioRaw(1, io), { status: 0x001 });
  // keepDptr: the SGL goes out exactly as given (to test a target's checks).
  const odd = Buffer.alloc(64);
  odd[0] = 0xc1;
  odd[1] = 0x80; // PSDT 10b
  odd.fill(0xaa, 24, 40);
  await h.adminRaw(odd, undefined, { keepDptr: true });
  const sent = f.commands.filter((c) => c.opc === 0xc1).pop()!;
  t.equal(sent.sqe[1], 0x80, 'flags kept');
  t.ok(sent.sqe.subarray(24, 40).every((b) => b === 0xaa), 'SGL kept');
  const plain = f.commands.find((c) => c.opc === 0xc1)!;
  t.equal(plain.sqe[1], 0x40, 'without keepDptr: PSDT SGL');
  t.equal(plain.sqe[39], 0x5a, 'without keepDptr: transport SGL descriptor');
  await t.rejects(h.adminRaw(Buffer.alloc(10)), { code: 'ERR_INVALID_ARGUMENT', message: /64 bytes/ });
  await t.rejects(h.ioRaw(5, io), { code: 'ERR_INVALID_ARGUMENT', message: /queue 5/ });
});

t.test('keep alive is sent every kato/2', async (t) => {
  const f = await fake(t);
  await host(t, f, { kato: 200 });
  await new Promise((r) => setTimeout(r, 550));
  const ka = f.commands.filter((c) => c.qid === 0 && c.opc === 0x18).length;
  t.ok(ka >= 3 && ka <= 7, `keep alives: ${ka}`);
});

t.test('a command timeout fails the connection (ERR_TIMEOUT, disconnected event)', async (t) => {
  const f = await fake(t, { command: (c) => (c.qid === 1 && c.opc === 0x02 ? 'silent' : undefined) });
  const h = await host(t, f, { commandTimeoutMs: 300 });
  const ev = nextEvent<NvmfError>(h, 'disconnected', 3000);
  const t0 = Date.now();
  await t.rejects(h.read(1, 0, 1), { code: 'ERR_TIMEOUT', message: /timed out after 300 ms/ });
  t.ok(Date.now() - t0 < 2500);
  t.match(await ev, { code: 'ERR_TIMEOUT' });
  await t.rejects(h.read(1, 0, 1), { code: 'ERR_CONNECTION' }, 'dead afterwards');
});

t.test('connect failures: NVMe status, authentication required, bad ICResp, C2HTermReq', async (t) => {
  {
    const f = await fake(t, { command: (c) => (c.opc === 0x7f && c.sqe[4] === 1 ? { status: 0x184 } : undefined) });
    await t.rejects(connect({ address: '127.0.0.1', port: f.port, subnqn: SUBNQN }), {
      code: 'ERR_NVME_STATUS',
      nvmeStatus: 0x184,
      message: /Fabrics Connect failed.*Connect Invalid Host.*subsystem nqn\.2024-01\.io\.nvmf-target:fake/,
    });
  }
  {
    const f = await fake(t, { command: (c) => (c.opc === 0x7f && c.sqe[4] === 1 ? { status: 0x182, dw0: 256 | (1 << 16) } : undefined) });
    await t.rejects(connect({ address: '127.0.0.1', port: f.port, subnqn: SUBNQN }), { message: /byte 256 of the connect data/ });
  }
  {
    const f = await fake(t, { command: (c) => (c.opc === 0x7f && c.sqe[4] === 1 ? { dw0: 1 | (2 << 16) } : undefined) });
    await t.rejects(connect({ address: '127.0.0.1', port: f.port, subnqn: SUBNQN }), { code: 'ERR_AUTH_FAILED', message: /DH-HMAC-CHAP/ });
  }
  const badIc: Array<[string, (b: Buffer) => void, RegExp]> = [
    ['MAXH2CDATA below 4096', (b) => b.writeUInt32LE(1024, 12), /MAXH2CDATA 1024/],
    ['PDU format version 1', (b) => b.writeUInt16LE(1, 8), /format version 1/],
    ['digest the host did not ask for', (b) => (b[11] = 1), /header digest on/],
    ['wrong PDU length', (b) => b.writeUInt32LE(132, 4), /ICResp with PDU length 132/],
    ['CPDA out of range', (b) => (b[10] = 40), /CPDA 40/],
  ];
  for (const [name, mutate, re] of badIc) {
    const f = await fake(t, {
      icresp: () => {
        const b = new FakeTarget().icresp(0);
        mutate(b);
        return b;
      },
    });
    await t.rejects(connect({ address: '127.0.0.1', port: f.port, subnqn: SUBNQN }), { code: 'ERR_CONNECTION', errno: 71, message: re }, name);
  }
  {
    const f = await fake(t, {
      icresp: () => {
        const b = Buffer.alloc(24);
        b[0] = 0x03;
        b[2] = 24;
        b.writeUInt32LE(24, 4);
        b.writeUInt16LE(0x06, 8);
        return b;
      },
    });
    await t.rejects(connect({ address: '127.0.0.1', port: f.port, subnqn: SUBNQN }), {
      code: 'ERR_CONNECTION',
      message: /C2HTermReq: Unsupported Parameter/,
    });
  }
});

t.test('a hostile target fails the connection, never the process', async (t) => {
  // Each case answers the first I/O read with something invalid.
  const evil: Array<[string, (c: Cmd, conn: FakeConn) => void, RegExp]> = [
    ['CapsuleResp for an unknown CID', (c, conn) => conn.respond(c.cid ^ 0x40, {}), /not outstanding/],
    ['C2HData beyond the buffer', (c, conn) => {
      const psh = Buffer.alloc(16);
      psh.writeUInt16LE(c.cid, 0);
      psh.writeUInt32LE(0, 4);
      psh.writeUInt32LE(4096, 8);
      const h = Buffer.alloc(24);
      h[0] = 0x07; h[2] = 24; h[3] = 24; h.writeUInt32LE(24 + 4096, 4);
      psh.copy(h, 8);
      conn.sendRaw(Buffer.concat([h, Buffer.alloc(4096)]));
    }, /exceed its 512 bytes/],
    ['C2HData out of order', (c, conn) => {
      const h = Buffer.alloc(24);
      h[0] = 0x07; h[2] = 24; h[3] = 24; h.writeUInt32LE(24 + 8, 4);
      h.writeUInt16LE(c.cid, 8); h.writeUInt32LE(8, 12); h.writeUInt32LE(8, 16);
      conn.sendRaw(Buffer.concat([h, Buffer.alloc(8)]));
    }, /offset 8, expected 0/],
    ['C2HData with lengths that disagree', (c, conn) => {
      const h = Buffer.alloc(24);
      h[0] = 0x07; h[2] = 24; h[3] = 24; h.writeUInt32LE(24 + 8, 4);
      h.writeUInt16LE(c.cid, 8); h.writeUInt32LE(0, 12); h.writeUInt32LE(16, 16);
      conn.sendRaw(Buffer.concat([h, Buffer.alloc(8)]));
    }, /length fields disagree/],
    ['SUCCESS flag without LAST', (c, conn) => {
      const h = Buffer.alloc(24);
      h[0] = 0x07; h[1] = 0x08; h[2] = 24; h[3] = 24; h.writeUInt32LE(24 + 512, 4);
      h.writeUInt16LE(c.cid, 8); h.writeUInt32LE(0, 12); h.writeUInt32LE(512, 16);
      conn.sendRaw(Buffer.concat([h, Buffer.alloc(512)]));
    }, /SUCCESS flag/],
    ['R2T for a read', (c, conn) => {
      const h = Buffer.alloc(24);
      h[0] = 0x09; h[2] = 24; h.writeUInt32LE(24, 4);
      h.writeUInt16LE(c.cid, 8); h.writeUInt32LE(0, 12); h.writeUInt32LE(512, 16);
      conn.sendRaw(h);
    }, /R2T for command id .* sends no data/],
    ['a header length that lies', (c, conn) => {
      const h = Buffer.alloc(32);
      h[0] = 0x05; h[2] = 32; h.writeUInt32LE(32, 4);
      conn.sendRaw(h);
    }, /header length 32, expected 24/],
    ['an ICResp after the handshake', (_c, conn) => conn.sendRaw(new FakeTarget().icresp(0)), /unexpected PDU type 0x01/],
    ['an unknown PDU type', (_c, conn) => {
      const h = Buffer.alloc(24);
      h[0] = 0x42; h[2] = 24; h.writeUInt32LE(24, 4);
      conn.sendRaw(h);
    }, /unexpected PDU type 0x42/],
    ['a closed connection', (_c, conn) => conn.sock.destroy(), /connection closed by the target/],
  ];
  for (const [name, act, re] of evil) {
    const f = await fake(t, {
      command: (c, conn) => {
        if (c.qid === 1 && c.opc === 0x02) {
          act(c, conn);
          return 'silent';
        }
        return undefined;
      },
    });
    const h = await host(t, f);
    const ev = nextEvent<NvmfError>(h, 'disconnected', 3000);
    await t.rejects(h.read(1, 0, 1), { code: 'ERR_CONNECTION', message: re }, name);
    t.match(await ev, { code: 'ERR_CONNECTION' }, `${name}: disconnected event`);
    await t.rejects(h.identify(), { code: 'ERR_CONNECTION' }, `${name}: later commands fail`);
  }
});

t.test('random bytes from the target never crash the host', async (t) => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 30; i++) {
    const f = await fake(t, {
      command: (c, conn) => {
        if (c.qid !== 1) return undefined;
        // A plausible common header (a known type, sometimes the right hlen) + noise.
        const types = [0x01, 0x03, 0x05, 0x07, 0x09, rnd(256)];
        const len = 8 + rnd(200);
        const b = Buffer.alloc(len);
        for (let k = 0; k < len; k++) b[k] = rnd(256);
        b[0] = types[rnd(types.length)]!;
        if (rnd(2)) b[2] = 24;
        if (rnd(2)) b.writeUInt32LE(rnd(2) ? len : rnd(1 << 20), 4);
        if (rnd(2)) b.writeUInt16LE(c.cid, 8);
        conn.sendRaw(b);
        if (rnd(2)) conn.sock.end();
        return 'silent';
      },
    });
    const h = await host(t, f, { commandTimeoutMs: 500 });
    const r = await h.read(1, 0, 1).then(() => 'ok', (e: NvmfError) => e.code);
    t.ok(['ok', 'ERR_CONNECTION', 'ERR_TIMEOUT', 'ERR_NVME_STATUS'].includes(r), `round ${i}: ${r}`);
    await h.close();
  }
});

t.test('a data digest error fails only that command', async (t) => {
  const f = await fake(t, { badDdgst: true });
  const h = await host(t, f, { ddgst: true });
  await t.rejects(h.read(1, 0, 1), { code: 'ERR_NVME_STATUS', nvmeStatus: 0x004, message: /Data Transfer Error/ });
  await h.write(1, 0, Buffer.alloc(BS, 3));
  t.ok(f.ram.subarray(0, BS).every((b) => b === 3), 'the connection still works');
});

t.test('discovery', async (t) => {
  let reads = 0;
  const entry = (subnqn: string, port: string): Buffer => {
    const e = Buffer.alloc(1024);
    e[0] = 3; // tcp
    e[1] = 1; // ipv4
    e[2] = 2; // nvme
    e.writeUInt16LE(0xffff, 6);
    e.writeUInt16LE(32, 8);
    e.write(port, 32, 'ascii');
    e.write(subnqn, 256, 'ascii');
    e.write('127.0.0.1', 512, 'ascii');
    return e;
  };
  const f = await fake(t, {
    discoveryLog: () => {
      reads++;
      const hdr = Buffer.alloc(1024);
      // The generation changes once (during the first full read): the host must re-read.
      hdr.writeBigUInt64LE(reads <= 2 ? 1n : 2n, 0);
      hdr.writeBigUInt64LE(2n, 8);
      return Buffer.concat([hdr, entry(SUBNQN, '4420'), entry('nqn.2024-01.io.example:other', '4421')]);
    },
  });
  const entries = await discover({ address: '127.0.0.1', port: f.port });
  t.equal(entries.length, 2);
  t.match(entries[0], { trtype: 'tcp', adrfam: 'ipv4', subtype: 'nvme', traddr: '127.0.0.1', trsvcid: '4420', subnqn: SUBNQN, cntlid: 0xffff, asqsz: 32 });
  t.equal(entries[1]!.subnqn, 'nqn.2024-01.io.example:other');
  t.ok(reads >= 6, `re-read after the generation changed (${reads} log reads)`);
  const c0 = f.commands.find((c) => c.opc === 0x7f && c.sqe[4] === 1)!;
  t.match(c0.data.toString('ascii', 256, 256 + DISCOVERY_NQN.length), DISCOVERY_NQN);
  t.equal(c0.sqe.readUInt32LE(48), 0, 'no keep alive for discovery');
  t.notOk(f.commands.some((c) => c.opc === 0x09 && c.qid === 0), 'no Set Features Number of Queues');
});

t.test('close: shutdown notification, in-flight commands rejected, idempotent', async (t) => {
  const f = await fake(t, { command: (c) => (c.qid === 1 && c.opc === 0x02 ? 'silent' : undefined) });
  const h = await connect({ address: '127.0.0.1', port: f.port, subnqn: SUBNQN });
  const pending = h.read(1, 0, 1).then(() => 'ok', (e: NvmfError) => e.code);
  await new Promise((r) => setTimeout(r, 50));
  const p1 = h.close();
  const p2 = h.close();
  t.equal(p1, p2, 'one close');
  await p1;
  t.equal(await pending, 'ERR_CONNECTION', 'in-flight read rejected');
  t.equal((f.cc >> 14) & 3, 1, 'CC.SHN normal shutdown written');
  await t.rejects(h.read(1, 0, 1), { code: 'ERR_CONNECTION', message: /closed/ });
  await h.close();
  t.ok(h.closed);
});

t.test('await using closes the host', async (t) => {
  const f = await fake(t);
  let ref: HostController | undefined;
  {
    await using h = await connect({ address: '127.0.0.1', port: f.port, subnqn: SUBNQN });
    ref = h;
    t.equal(h.closed, false);
  }
  t.equal(ref!.closed, true);
});
