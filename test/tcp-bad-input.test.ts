import t from 'tap';
import { PDU, RawConn, capsule, icreq } from './helpers/raw-tcp';
import { HOSTNQN, SUBNQN, serveRam } from './helpers/target';

/** Property Get CSTS on an admin queue: proves the connection still serves. */
async function alive(c: RawConn, cid: number): Promise<boolean> {
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x7f;
  sqe[1] = 0x40;
  sqe.writeUInt16LE(cid, 2);
  sqe[4] = 0x04; // property get
  sqe[40] = 0; // 4 bytes
  sqe.writeUInt32LE(0x1c, 44); // CSTS
  c.write(capsule(sqe));
  const r = await c.next(PDU.CapsuleResp, 3000);
  return r !== null && r.raw.readUInt16LE(8 + 12) === cid;
}

t.test('malformed PDUs close only their own connection', async (t) => {
  const { target, port } = await serveRam();
  t.teardown(() => target.destroy());
  const good = await RawConn.connect(port);
  t.ok(await good.handshake(), 'good connection: ICResp');
  const cr = await good.connectAdmin(SUBNQN, HOSTNQN);
  t.equal(cr?.status, 0, 'good connection: admin Connect succeeds');
  let cid = 10;

  const cases: Array<[string, (c: RawConn) => Promise<void> | void]> = [
    ['a capsule before ICReq', (c) => c.write(capsule(Buffer.alloc(64)))],
    ['ICReq with an unknown PDU format version', (c) => c.write(icreq({ pfv: 7 }))],
    ['ICReq with hpda > 31', (c) => c.write(icreq({ hpda: 40 }))],
    ['ICReq with a wrong hlen', (c) => { const b = icreq(); b[2] = 64; c.write(b); }],
    ['plen smaller than hlen', (c) => { const b = icreq(); b.writeUInt32LE(16, 4); c.write(b); }],
    ['an unknown PDU type', (c) => { const b = icreq(); b[0] = 0x7e; c.write(b); }],
    ['a second ICReq', async (c) => { await c.handshake(); c.write(icreq()); }],
    ['a 4 GiB plen', async (c) => { await c.handshake(); const b = capsule(Buffer.alloc(64)); b.writeUInt32LE(0xffffffff, 4); c.write(b); }],
    ['H2CData that matches no R2T', async (c) => {
      await c.handshake();
      const b = Buffer.alloc(24 + 16);
      b[0] = PDU.H2CData; b[2] = 24; b[3] = 24; b.writeUInt32LE(40, 4);
      b.writeUInt16LE(5, 8); b.writeUInt16LE(77, 10); b.writeUInt32LE(0, 12); b.writeUInt32LE(16, 16);
      c.write(b);
    }],
    ['a capsule with a bad header digest', async (c) => {
      await c.handshake({ hdgst: true });
      const b = capsule(Buffer.alloc(64));
      const d = Buffer.alloc(b.length + 4);
      b.copy(d); d[1] = 0x01; d.writeUInt32LE(b.length + 4, 4); d.writeUInt32LE(0xdeadbeef, b.length);
      c.write(d);
    }],
    ['a C2H-only PDU type sent by the host', async (c) => {
      await c.handshake();
      const b = Buffer.alloc(24); b[0] = PDU.R2T; b[2] = 24; b.writeUInt32LE(24, 4); c.write(b);
    }],
  ];
  for (const [name, act] of cases) {
    const c = await RawConn.connect(port);
    await act(c);
    t.ok(await c.waitClosed(5000), `${name}: connection closed`);
    c.close();
    t.ok(await alive(good, cid++), `${name}: other connection still serves`);
  }
  good.close();
});

t.test('a host that connects and goes silent is dropped by keep-alive', async (t) => {
  const { target, port } = await serveRam();
  t.teardown(() => target.destroy());
  const c = await RawConn.connect(port);
  await c.handshake();
  const r = await c.connectAdmin(SUBNQN, HOSTNQN, 1000);
  t.equal(r?.status, 0, 'connected with kato 1 s');
  const t0 = Date.now();
  t.ok(await c.waitClosed(10_000), 'dropped');
  const took = Date.now() - t0;
  t.ok(took >= 900, `not before the timeout (${took} ms)`);
  t.comment(`dropped after ${took} ms`);
  c.close();
});

t.test('Connect to an unknown subsystem fails with Connect Invalid Parameters', async (t) => {
  const { target, port } = await serveRam();
  t.teardown(() => target.destroy());
  const c = await RawConn.connect(port);
  await c.handshake();
  const r = await c.connectAdmin('nqn.2024-01.io.nvmf-target:nope', HOSTNQN);
  t.equal(r?.status, (1 << 8) | 0x82, 'SCT 1 / SC 0x82');
  c.close();
});
