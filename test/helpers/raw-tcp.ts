/**
 * A minimal NVMe/TCP host written directly on node:net, independent of the
 * native host library: for protocol and bad-input tests that must send
 * exactly the bytes they want (malformed PDUs, half PDUs, silence).
 */
import * as net from 'node:net';

export const PDU = {
  ICReq: 0x00,
  ICResp: 0x01,
  H2CTermReq: 0x02,
  C2HTermReq: 0x03,
  CapsuleCmd: 0x04,
  CapsuleResp: 0x05,
  H2CData: 0x06,
  C2HData: 0x07,
  R2T: 0x09,
} as const;

export function icreq(opts: { hdgst?: boolean; ddgst?: boolean; pfv?: number; hpda?: number } = {}): Buffer {
  const b = Buffer.alloc(128);
  b[0] = PDU.ICReq;
  b[1] = 0;
  b[2] = 128; // hlen
  b[3] = 0; // pdo
  b.writeUInt32LE(128, 4); // plen
  b.writeUInt16LE(opts.pfv ?? 0, 8);
  b[10] = opts.hpda ?? 0;
  b[11] = (opts.hdgst ? 1 : 0) | (opts.ddgst ? 2 : 0);
  b.writeUInt32LE(0, 12); // maxr2t (0-based)
  return b;
}

/** A CapsuleCmd PDU with an SQE and optional in-capsule data. */
export function capsule(sqe: Buffer, data?: Buffer): Buffer {
  const hlen = 72;
  const dlen = data?.length ?? 0;
  const b = Buffer.alloc(hlen + dlen);
  b[0] = PDU.CapsuleCmd;
  b[1] = 0;
  b[2] = hlen;
  b[3] = dlen ? hlen : 0;
  b.writeUInt32LE(hlen + dlen, 4);
  sqe.copy(b, 8);
  if (data) data.copy(b, hlen);
  return b;
}

/** Fabrics Connect SQE + 1024-byte data for the given queue. */
export function connectCmd(opts: { cid: number; qid: number; sqsize: number; cntlid?: number; subnqn: string; hostnqn: string; kato?: number }): { sqe: Buffer; data: Buffer } {
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x7f; // fabrics
  sqe[1] = 0x40; // PSDT: SGL
  sqe.writeUInt16LE(opts.cid, 2);
  sqe[4] = 0x01; // fctype connect
  // SGL: data block, offset subtype (in-capsule), length 1024
  sqe.writeBigUInt64LE(0n, 24);
  sqe.writeUInt32LE(1024, 32);
  sqe[39] = 0x01; // type 0 (data block) << 4 | subtype 1 (offset)
  sqe.writeUInt16LE(0, 40); // recfmt
  sqe.writeUInt16LE(opts.qid, 42);
  sqe.writeUInt16LE(opts.sqsize - 1, 44);
  sqe[46] = 0; // cattr
  sqe.writeUInt32LE(opts.kato ?? 0, 48);
  const data = Buffer.alloc(1024);
  Buffer.from('0123456789abcdef0123456789abcdef', 'hex').copy(data, 0); // hostid
  data.writeUInt16LE(opts.cntlid ?? 0xffff, 16);
  data.write(opts.subnqn, 256, 'ascii');
  data.write(opts.hostnqn, 512, 'ascii');
  return { sqe, data };
}

export interface Pdu {
  type: number;
  flags: number;
  hlen: number;
  pdo: number;
  plen: number;
  raw: Buffer;
}

/** A raw NVMe/TCP connection that collects PDUs as they arrive. */
export class RawConn {
  readonly sock: net.Socket;
  #buf = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  readonly pdus: Pdu[] = [];
  closed = false;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      while (this.#buf.length >= 8) {
        const plen = this.#buf.readUInt32LE(4);
        if (plen < 8 || this.#buf.length < plen) break;
        const raw = this.#buf.subarray(0, plen);
        this.pdus.push({ type: raw[0]!, flags: raw[1]!, hlen: raw[2]!, pdo: raw[3]!, plen, raw: Buffer.from(raw) });
        this.#buf = this.#buf.subarray(plen);
      }
      this.#wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    sock.on('error', () => {});
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }

  write(b: Buffer): void {
    this.sock.write(b);
  }

  /** Waits for the next PDU (of `type`, if given), or null on close/timeout. */
  async next(type?: number, timeoutMs = 5000): Promise<Pdu | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.pdus.findIndex((p) => type === undefined || p.type === type);
      if (i >= 0) return this.pdus.splice(i, 1)[0]!;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Resolves true when the target closes the connection within timeoutMs. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.closed;
  }

  /** ICReq → ICResp; returns the ICResp PDU. */
  async handshake(opts: Parameters<typeof icreq>[0] = {}): Promise<Pdu | null> {
    this.write(icreq(opts));
    return this.next(PDU.ICResp);
  }

  /** Connects an admin queue; returns the completion status and cntlid. */
  async connectAdmin(subnqn: string, hostnqn: string, kato = 0): Promise<{ status: number; cntlid: number } | null> {
    const { sqe, data } = connectCmd({ cid: 1, qid: 0, sqsize: 32, subnqn, hostnqn, kato });
    this.write(capsule(sqe, data));
    const r = await this.next(PDU.CapsuleResp);
    if (!r) return null;
    const cqe = r.raw.subarray(8, 24);
    // SCT << 8 | SC (without the DNR/More bits).
    return { status: (cqe.readUInt16LE(14) >> 1) & 0x7ff, cntlid: cqe.readUInt16LE(0) };
  }

  close(): void {
    this.sock.destroy();
  }
}
