#!/usr/bin/env node
// A target listening on NVMe/RDMA (and TCP, for comparison) for test/vm/rdma.sh,
// driven through a FIFO of one-line commands.
//   node rdma-fixture.js <ctl-fifo> <rdma-address> <scratch-dir> [poll-mode]
// Prints "READY" when listening, then for each command line one reply line
// ("OK ..." or "ERR ..."). Commands:
//   host <hostnqn> <key> [<ctrl-key>]   allow a host on the auth subsystem
//                                        with DH-HMAC-CHAP keys (replaces them)
//   stats      qpairs per poll group (JSON)
//   destroy    target.destroy(), then exit 0
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const net = require('node:net');
const readline = require('node:readline');
const { Target } = require(path.resolve(__dirname, '../../dist'));

const [fifo, address, scratch, pollMode = 'interrupt'] = process.argv.slice(2);
const MALLOC_NQN = 'nqn.2024-01.io.nvmf-target:rdma-malloc';
const FILE_NQN = 'nqn.2024-01.io.nvmf-target:rdma-file';
const AUTH_NQN = 'nqn.2024-01.io.nvmf-target:rdma-auth';

(async () => {
  // ffdhe2048 at most: under TCG an ffdhe8192 exchange takes seconds on
  // each side, and the controller's keep-alive timer (armed at Connect)
  // can expire before the kernel host finishes authenticating.
  const target = await Target.create({ reactors: 2, pollMode, auth: { dhgroups: ['ffdhe2048', 'null'] } });
  target.ref();
  target.on('host-connect', (e) => console.error(`fixture: host-connect ${JSON.stringify(e)}`));
  target.on('host-disconnect', (e) => console.error(`fixture: host-disconnect ${JSON.stringify(e)}`));
  await target.createBdev({ name: 'm0', type: 'malloc', sizeBytes: 256 << 20, blockSize: 512 });
  await target.createBdev({ name: 'f0', type: 'uring', path: path.join(scratch, 'rdma-f0.img'), sizeBytes: 128 << 20, blockSize: 4096 });
  const a = await target.createSubsystem({ nqn: MALLOC_NQN, serial: 'RDMAMALLOC01', model: 'nvmf-target-malloc', allowAnyHost: true });
  await a.addNamespace({ bdev: 'm0' });
  const b = await target.createSubsystem({ nqn: FILE_NQN, serial: 'RDMAFILE0001', model: 'nvmf-target-file', allowAnyHost: true });
  await b.addNamespace({ bdev: 'f0' });
  await target.createBdev({ name: 'a0', type: 'malloc', sizeBytes: 32 << 20 });
  const auth = await target.createSubsystem({ nqn: AUTH_NQN, serial: 'RDMAAUTH0001', model: 'nvmf-target-auth' });
  await auth.addNamespace({ bdev: 'a0' });
  target.on('auth-success', (e) => console.error(`fixture: auth-success ${JSON.stringify(e)}`));
  target.on('auth-failure', (e) => console.error(`fixture: auth-failure ${JSON.stringify(e)}`));
  await target.listen({ transport: 'rdma', address, port: 4420 });
  console.log('READY');
  // A pipe handle, not fs.createReadStream: a threadpool read() blocked on
  // the FIFO would keep process.exit() from finishing.
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  const input = new net.Socket({ fd, readable: true, writable: false });
  const rl = readline.createInterface({ input });
  for await (const line of rl) {
    const [cmd, ...args] = line.trim().split(/\s+/);
    try {
      if (cmd === 'host') {
        const [nqn, dhchapKey, dhchapCtrlKey] = args;
        const keys = { dhchapKey, ...(dhchapCtrlKey ? { dhchapCtrlKey } : {}) };
        try {
          await auth.addHost({ nqn, ...keys });
        } catch (e) {
          if (e.code !== 'ERR_ALREADY_EXISTS') throw e;
          await auth.setHostKeys(nqn, keys);
        }
        console.log('OK host');
      } else if (cmd === 'stats') {
        const st = await target.stats();
        console.log(`OK ${JSON.stringify(st.map((g) => g.qpairs.length))}`);
      } else if (cmd === 'destroy') {
        const t0 = Date.now();
        await target.destroy();
        console.log(`OK destroyed in ${Date.now() - t0} ms`);
        process.exit(0);
      } else if (cmd) {
        console.log(`ERR unknown command ${cmd}`);
      }
    } catch (e) {
      console.log(`ERR ${e.code} ${e.message}`);
    }
  }
})().catch((e) => {
  console.error('fixture:', e);
  process.exit(1);
});
