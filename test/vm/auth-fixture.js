#!/usr/bin/env node
// A DH-HMAC-CHAP target for test/vm/kernel-host-auth.sh, driven through a
// FIFO of one-line commands.
//   node auth-fixture.js <ctl-fifo> <listen-address>
// Prints "READY" when listening, then one reply line per command ("OK ..."
// or "ERR ..."). auth-success / auth-failure events go to stderr as
// "fixture: auth-success {json}". Commands:
//   policy <digests,...> <dhgroups,...>     target.setAuthOptions()
//   host <hostnqn> <key|-> <ctrl-key|->     add the host, or set its keys
//   gen-key <hmac> [nqn]                    generateDhchapKey()
//   destroy                                 target.destroy(), then exit 0
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const net = require('node:net');
const readline = require('node:readline');
const { Target, generateDhchapKey } = require(path.resolve(__dirname, '../../dist'));

const [fifo, address] = process.argv.slice(2);
const NQN = 'nqn.2024-01.io.nvmf-target:vm-auth';

(async () => {
  const target = await Target.create({ reactors: 2, pollMode: 'interrupt' });
  target.ref();
  for (const ev of ['auth-success', 'auth-failure', 'host-connect']) {
    target.on(ev, (e) => console.error(`fixture: ${ev} ${JSON.stringify(e)}`));
  }
  await target.createBdev({ name: 'm0', type: 'malloc', sizeBytes: 128 << 20, blockSize: 512 });
  const sub = await target.createSubsystem({ nqn: NQN, serial: 'VMAUTH0001', model: 'nvmf-target-auth' });
  await sub.addNamespace({ bdev: 'm0' });
  await target.listen({ transport: 'tcp', address, port: 4420 });
  console.log('READY');
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  const input = new net.Socket({ fd, readable: true, writable: false });
  const rl = readline.createInterface({ input });
  for await (const line of rl) {
    const [cmd, ...args] = line.trim().split(/\s+/);
    try {
      if (cmd === 'policy') {
        target.setAuthOptions({ digests: args[0].split(','), dhgroups: args[1].split(',') });
        console.log('OK');
      } else if (cmd === 'host') {
        const [nqn, key, ctrl] = args;
        const keys = {
          ...(key && key !== '-' ? { dhchapKey: key } : {}),
          ...(ctrl && ctrl !== '-' ? { dhchapCtrlKey: ctrl } : {}),
        };
        if (sub.info().hosts.includes(nqn)) await sub.setHostKeys(nqn, keys);
        else await sub.addHost({ nqn, ...keys });
        console.log('OK');
      } else if (cmd === 'gen-key') {
        console.log(`OK ${generateDhchapKey({ hmac: Number(args[0]), ...(args[1] ? { hostNqn: args[1] } : {}) })}`);
      } else if (cmd === 'destroy') {
        await target.destroy();
        console.log('OK destroyed');
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
