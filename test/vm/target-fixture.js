#!/usr/bin/env node
// A target for the VM scripts, driven through a FIFO of one-line commands.
//   node target-fixture.js <ctl-fifo> <listen-address> <scratch-dir>
// Prints "READY" when listening, then for each command line one reply line
// ("OK ..." or "ERR ..."). Commands:
//   add-ns <nqn> <bdev-name> <size-mib>   create a malloc bdev and add it
//   destroy                               target.destroy(), then exit 0
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const net = require('node:net');
const readline = require('node:readline');
const { Target } = require(path.resolve(__dirname, '../../dist'));

const [fifo, address, scratch] = process.argv.slice(2);
const MALLOC_NQN = 'nqn.2024-01.io.nvmf-target:vm-malloc';
const FILE_NQN = 'nqn.2024-01.io.nvmf-target:vm-file';

(async () => {
  // 32 KiB of in-capsule data (default 8): the kernel host then sends writes
  // up to 32 KiB inside the command capsule and larger ones by R2T, so fio's
  // 4k-128k mix crosses both paths.
  const target = await Target.create({ reactors: 2, pollMode: 'interrupt', inCapsuleDataSize: 32768 });
  target.ref();
  target.on('host-connect', (e) => console.error(`fixture: host-connect ${JSON.stringify(e)}`));
  target.on('host-disconnect', (e) => console.error(`fixture: host-disconnect ${JSON.stringify(e)}`));
  await target.createBdev({ name: 'm0', type: 'malloc', sizeBytes: 256 << 20, blockSize: 512 });
  await target.createBdev({ name: 'f0', type: 'uring', path: path.join(scratch, 'f0.img'), sizeBytes: 256 << 20, blockSize: 4096 });
  const a = await target.createSubsystem({ nqn: MALLOC_NQN, serial: 'VMMALLOC0001', model: 'nvmf-target-malloc', allowAnyHost: true });
  await a.addNamespace({ bdev: 'm0' });
  const b = await target.createSubsystem({ nqn: FILE_NQN, serial: 'VMFILE0001', model: 'nvmf-target-file', allowAnyHost: true });
  await b.addNamespace({ bdev: 'f0' });
  await target.listen({ transport: 'tcp', address, port: 4420 });
  console.log('READY');
  // A pipe handle, not fs.createReadStream: a threadpool read() blocked on
  // the FIFO would keep process.exit() from finishing (libuv joins the pool).
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  const input = new net.Socket({ fd, readable: true, writable: false });
  const rl = readline.createInterface({ input });
  for await (const line of rl) {
    const [cmd, ...args] = line.trim().split(/\s+/);
    try {
      if (cmd === 'add-ns') {
        const [nqn, name, mib] = args;
        await target.createBdev({ name, type: 'malloc', sizeBytes: Number(mib) << 20 });
        const nsid = await target.subsystem(nqn).addNamespace({ bdev: name });
        console.log(`OK ${nsid}`);
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
