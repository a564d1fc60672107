/**
 * Raw NVMe/TCP I/O queues on top of helpers/raw-tcp.ts: enough of the
 * controller bring-up (Property Set CC.EN, I/O queue Connect) to send write
 * commands whose data the test then delivers -- or does not.
 */
import { PDU, RawConn, capsule, connectCmd } from './raw-tcp';

function propertySet(cid: number, ofst: number, value: number): Buffer {
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x7f;
  sqe[1] = 0x40;
  sqe.writeUInt16LE(cid, 2);
  sqe[4] = 0x00; // property set
  sqe[40] = 0; // 4 bytes
  sqe.writeUInt32LE(ofst, 44);
  sqe.writeUInt32LE(value, 48);
  return capsule(sqe);
}

function propertyGet(cid: number, ofst: number): Buffer {
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x7f;
  sqe[1] = 0x40;
  sqe.writeUInt16LE(cid, 2);
  sqe[4] = 0x04; // property get
  sqe[40] = 0;
  sqe.writeUInt32LE(ofst, 44);
  return capsule(sqe);
}

function cqeStatus(raw: Buffer): number {
  return (raw.readUInt16LE(8 + 14) >> 1) & 0x7ff;
}

export interface RawController {
  admin: RawConn;
  io: RawConn;
  cntlid: number;
}

/** Admin queue connected and enabled, plus I/O queue 1 of ioEntries entries; null if any step failed. */
export async function rawController(port: number, subnqn: string, hostnqn: string, kato = 0, ioEntries = 32): Promise<RawController | null> {
  const admin = await RawConn.connect(port);
  if (!(await admin.handshake())) return null;
  const c = await admin.connectAdmin(subnqn, hostnqn, kato);
  if (!c || c.status !== 0) return null;
  admin.write(propertySet(2, 0x14, 0x00460001)); // CC: IOCQES 4, IOSQES 6, EN
  const set = await admin.next(PDU.CapsuleResp);
  if (!set || cqeStatus(set.raw) !== 0) return null;
  for (let i = 0; i < 100; i++) {
    admin.write(propertyGet(3, 0x1c));
    const r = await admin.next(PDU.CapsuleResp);
    if (!r) return null;
    if (r.raw.readUInt32LE(8) & 1) break; // CSTS.RDY
    await new Promise((res) => setTimeout(res, 5));
  }
  const io = await RawConn.connect(port);
  if (!(await io.handshake())) return null;
  const { sqe, data } = connectCmd({ cid: 1, qid: 1, sqsize: ioEntries, cntlid: c.cntlid, subnqn, hostnqn });
  io.write(capsule(sqe, data));
  const r = await io.next(PDU.CapsuleResp);
  if (!r || cqeStatus(r.raw) !== 0) return null;
  return { admin, io, cntlid: c.cntlid };
}

/** A Write of `blocks` 512-byte blocks whose data is to be fetched by R2T (transport data block SGL). */
export function writeByR2T(cid: number, nsid: number, slba: number, blocks: number, sglLength = blocks * 512): Buffer {
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x01;
  sqe[1] = 0x40;
  sqe.writeUInt16LE(cid, 2);
  sqe.writeUInt32LE(nsid, 4);
  sqe.writeUInt32LE(sglLength, 32);
  sqe[39] = 0x5a; // transport SGL data block, transport specific
  sqe.writeBigUInt64LE(BigInt(slba), 40);
  sqe.writeUInt16LE(blocks - 1, 48);
  return capsule(sqe);
}

/** A Read of `blocks` 512-byte blocks (the data comes back in C2HData). */
export function readCmd(cid: number, nsid: number, slba: number, blocks: number): Buffer {
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x02;
  sqe[1] = 0x40;
  sqe.writeUInt16LE(cid, 2);
  sqe.writeUInt32LE(nsid, 4);
  sqe.writeUInt32LE(blocks * 512, 32);
  sqe[39] = 0x5a;
  sqe.writeBigUInt64LE(BigInt(slba), 40);
  sqe.writeUInt16LE(blocks - 1, 48);
  return capsule(sqe);
}

/** An H2CData PDU answering an R2T. */
export function h2cData(cccid: number, ttag: number, datao: number, data: Buffer, last = true): Buffer {
  const b = Buffer.alloc(24 + data.length);
  b[0] = PDU.H2CData;
  b[1] = last ? 0x04 : 0;
  b[2] = 24;
  b[3] = 24;
  b.writeUInt32LE(24 + data.length, 4);
  b.writeUInt16LE(cccid, 8);
  b.writeUInt16LE(ttag, 10);
  b.writeUInt32LE(datao, 12);
  b.writeUInt32LE(data.length, 16);
  data.copy(b, 24);
  return b;
}

export { cqeStatus };
