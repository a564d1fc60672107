// Shared by the RDMA scripts run inside the VM (rdma-host.js, rdma-srq.js):
// TAP output, named steps, verified random I/O, I/O until the first error,
// and the process-wide resource counters.
'use strict';
const { randomBytes } = require('node:crypto');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// TAP lines ("ok N - ...", "1..N") so scripts/run-asan.js can run a script
// under the sanitizers; finish() exits non-zero on a failure.
function tap() {
  let failed = 0;
  let count = 0;
  const ok = (cond, what) => {
    count++;
    console.log(`${cond ? 'ok' : 'not ok'} ${count} - ${what}`);
    if (!cond) failed++;
    return cond;
  };
  const finish = () => {
    console.log(`1..${count}`);
    process.exit(failed ? 1 : 0);
  };
  // Runs one named step: a throw is a failure; prints the step's time.
  const step = async (name, fn) => {
    const t0 = Date.now();
    try {
      await fn();
    } catch (e) {
      ok(false, `${name}: ${e.code ?? ''} ${String(e.stack).replace(/\n/g, ' | ')}`);
    }
    console.log(`# ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  };
  return { ok, finish, step };
}

// Verified random I/O of 1..64 blocks of 512 B on blocks [lbaBase, lbaBase +
// size) of nsid 1, which start zeroed, while running() says so: a shadow of
// what was written checks every read. Counts into `stats` ({ ios,
// mismatches, errors, kinds }); the first error ends this worker.
async function verifiedIo(h, { lbaBase, size, running, stats }) {
  const shadow = new Map();
  const kinds = (stats.kinds ??= {});
  while (running()) {
    const nlb = 1 + Math.floor(Math.random() * Math.min(64, size));
    const off = Math.floor(Math.random() * (size - nlb + 1));
    try {
      if (Math.random() < 0.5 || shadow.size === 0) {
        const d = randomBytes(nlb * 512);
        await h.write(1, lbaBase + off, d);
        for (let i = 0; i < nlb; i++) shadow.set(off + i, d.subarray(i * 512, (i + 1) * 512));
        const k = nlb * 512 <= 8192 ? 'in-capsule writes' : 'RDMA READ writes';
        kinds[k] = (kinds[k] ?? 0) + 1;
      } else {
        const got = await h.read(1, lbaBase + off, nlb);
        for (let i = 0; i < nlb; i++) {
          const want = shadow.get(off + i) ?? Buffer.alloc(512);
          if (!got.subarray(i * 512, (i + 1) * 512).equals(want)) stats.mismatches++;
        }
        kinds.reads = (kinds.reads ?? 0) + 1;
      }
      stats.ios++;
    } catch (e) {
      stats.errors++;
      console.error('verified I/O:', e.code, e.message);
      return;
    }
  }
}

// Random reads and writes of 1..32 blocks on nsid 1 (nsBlocks blocks of
// 512 B) until the first error, whose kind is counted in `outcomes`
// (ERR_NVME_STATUS:<status> for an NVMe status: an I/O held by the pause
// that starts destroy() completes with "Command Aborted due to SQ
// Deletion", 8). Successes count in stats.done.
async function ioUntilError(h, { nsBlocks, stats, outcomes }) {
  for (;;) {
    try {
      const nlb = 1 + Math.floor(Math.random() * 32);
      const lba = Math.floor(Math.random() * (nsBlocks - nlb));
      if (Math.random() < 0.5) await h.write(1, lba, randomBytes(512 * nlb));
      else await h.read(1, lba, nlb);
      stats.done++;
    } catch (e) {
      const k = e.code === 'ERR_NVME_STATUS' ? `${e.code}:${e.nvmeStatus}` : e.code;
      outcomes[k] = (outcomes[k] ?? 0) + 1;
      return;
    }
  }
}

// The process-wide counters (dist.resources()) once they settle: a
// disconnect finishes asynchronously.
async function settledResources(dist) {
  let pr = dist.resources();
  for (let k = 0; k < 100 && (pr.qpairs || pr.registeredBuffers || pr.requestBuffers || pr.outstandingRequests); k++) {
    await sleep(50);
    pr = dist.resources();
  }
  return pr;
}

module.exports = { sleep, tap, verifiedIo, ioUntilError, settledResources };
