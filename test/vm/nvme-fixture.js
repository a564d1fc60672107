#!/usr/bin/env node
// A target exporting an NVMe namespace through the 'nvme' bdev, for
// test/vm/nvme-passthrough.sh. Driven through a FIFO of one-line commands.
//   node nvme-fixture.js <ctl-fifo> <listen-address> <generic-char-device>
// Prints "READY <blockSize> <numBlocks>" when listening, "EVENT <name> <json>"
// for target events, and one reply line per command ("OK ..." / "ERR ...").
// Commands:
//   bdevs      the bdev names, comma separated ("-" when none)
//   destroy    target.destroy(), then exit 0
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const { Target } = require(path.resolve(__dirname, '../../dist'));

const [fifo, address, ng] = process.argv.slice(2);
const NQN = 'nqn.2024-01.io.nvmf-target:vm-nvme';

(async () => {
  const target = await Target.create({ reactors: 2, pollMode: 'interrupt' });
  target.ref();
  for (const ev of ['device-removed', 'host-connect', 'host-disconnect']) {
    target.on(ev, (e) => console.log(`EVENT ${ev} ${JSON.stringify(e)}`));
  }
  const info = await target.createBdev({ name: 'nv0', type: 'nvme', path: ng });
  const sub = await target.createSubsystem({ nqn: NQN, serial: 'VMNVME0001', model: 'nvmf-target-nvme', allowAnyHost: true });
  await sub.addNamespace({ bdev: 'nv0' });
  await target.listen({ transport: 'tcp', address, port: 4420 });
  console.log(`READY ${info.blockSize} ${info.numBlocks}`);
  // A pipe handle, not fs.createReadStream (see target-fixture.js).
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  const rl = readline.createInterface({ input: new net.Socket({ fd, readable: true, writable: false }) });
  for await (const line of rl) {
    const [cmd] = line.trim().split(/\s+/);
    try {
      if (cmd === 'bdevs') {
        console.log(`OK ${target.bdevs().map((b) => b.name).join(',') || '-'}`);
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
  console.log(`FAILED ${e.code} ${e.message}`);
  process.exit(1);
});
