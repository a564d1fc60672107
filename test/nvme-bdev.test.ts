// The 'nvme' bdev: an NVMe namespace exported through io_uring passthrough
// on its generic char device. The argument checks run everywhere; the data
// path needs a scratch NVMe namespace whose data may be destroyed:
// NVMF_TEST_NVME=/dev/ngXnY, or, inside the VM harness (VM_RUN=1), the
// emulated drive of `vm-run --nvme 256` (/dev/ng0n1, model "QEMU NVMe").
// Without one those tests skip, saying why.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Target, connect, type HostController } from '../dist';
import { HOSTNQN, SUBNQN, freePort } from './helpers/target';

function scratchDevice(): { path?: string; why: string } {
  const explicit = process.env.NVMF_TEST_NVME;
  if (explicit) return { path: explicit, why: '' };
  if (process.env.VM_RUN !== '1') {
    return { why: 'no scratch NVMe namespace: set NVMF_TEST_NVME=/dev/ngXnY (its data is overwritten), or run inside ../shared/vm/vm-run --nvme 256' };
  }
  let model = '';
  try {
    model = fs.readFileSync('/sys/class/nvme/nvme0/model', 'utf8');
  } catch {
    return { why: 'no NVMe controller in this VM (start it with vm-run --nvme 256)' };
  }
  if (!/QEMU/.test(model)) return { why: `nvme0 is not an emulated drive (model ${model.trim()}); set NVMF_TEST_NVME to use it` };
  if (!fs.existsSync('/dev/ng0n1')) return { why: '/dev/ng0n1 missing (kernel without NVMe generic char devices?)' };
  return { path: '/dev/ng0n1', why: '' };
}

t.test('createBdev nvme: argument checks', async (t) => {
  const target = await Target.create();
  t.teardown(() => target.destroy());
  const missing = '/dev/ng-does-not-exist-0n1';
  const e = await target.createBdev({ name: 'n0', type: 'nvme', path: missing }).catch((x: unknown) => x);
  t.match(e, { code: 'ERR_INVALID_ARGUMENT' }, 'a missing path is an invalid argument');
  t.match((e as Error).message, missing, 'the error names the path');
  await t.rejects(target.createBdev({ name: 'n0', type: 'nvme' } as never), { code: 'ERR_INVALID_ARGUMENT', message: /options\.path/ });
  await t.rejects(target.createBdev({ name: 'n0', type: 'nvme', path: missing, sizeBytes: 1 << 20 }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /options\.sizeBytes is not for type 'nvme'/,
  });
  await t.rejects(target.createBdev({ name: 'n0', type: 'nvme', path: missing, blockSize: 4096 }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /options\.blockSize/,
  });
  // A char device that is no NVMe namespace, and a regular file.
  await t.rejects(target.createBdev({ name: 'n0', type: 'nvme', path: '/dev/null' }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /\/dev\/null is not an NVMe namespace/,
  });
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-nvme-')), 'plain');
  fs.writeFileSync(file, Buffer.alloc(4096));
  t.teardown(() => fs.rmSync(path.dirname(file), { recursive: true, force: true }));
  await t.rejects(target.createBdev({ name: 'n0', type: 'nvme', path: file }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /not a character device/,
  });
  t.same(target.bdevs().map((b) => b.name), [], 'no bdev was left behind');
});

const dev = scratchDevice();

t.test('nvme passthrough namespace over TCP', { skip: dev.path ? false : dev.why }, async (t) => {
  const ng = dev.path!;
  const blk = `/sys/block/${path.basename(ng).replace(/^ng/, 'nvme')}`;
  const target = await Target.create({ reactors: 2 });
  t.teardown(() => target.destroy());
  const info = await target.createBdev({ name: 'nv', type: 'nvme', path: ng });
  t.equal(info.type, 'nvme');
  if (fs.existsSync(blk)) {
    const lbs = Number(fs.readFileSync(`${blk}/queue/logical_block_size`, 'utf8'));
    const sectors = Number(fs.readFileSync(`${blk}/size`, 'utf8'));
    t.equal(info.blockSize, lbs, 'block size is the device LBA format');
    t.equal(info.sizeBytes, sectors * 512, 'size is the device size');
    // The namespace's block device is held O_EXCL while exported.
    await t.rejects(target.createBdev({ name: 'nv2', type: 'nvme', path: ng }), { message: /in use/ }, 'a second bdev on the same namespace is refused');
  }
  const sub = await target.createSubsystem({ nqn: SUBNQN, allowAnyHost: true });
  t.equal(await sub.addNamespace({ bdev: 'nv' }), 1);
  const port = await freePort();
  await target.listen({ transport: 'tcp', address: '127.0.0.1', port });
  const h: HostController = await connect({ address: '127.0.0.1', port, subnqn: SUBNQN, hostnqn: HOSTNQN, ioQueues: 2 });
  t.teardown(() => h.close());

  const ns = await h.identifyNamespace(1);
  t.equal(ns.blockSize, info.blockSize, 'host sees the device block size');
  t.equal(BigInt(ns.nsze), BigInt(info.numBlocks), 'host sees the device size');
  const bs = info.blockSize;

  // Read/write round trip, several sizes, both queues.
  for (const blocks of [1, 8, 33, (128 * 1024) / bs]) {
    const data = randomBytes(blocks * bs);
    const lba = 100 + blocks;
    await h.write(1, lba, data);
    t.same(await h.read(1, lba, blocks), data, `write then read ${blocks} block(s)`);
  }
  // Compare (passed through when the device has it, else read + memcmp).
  const pattern = randomBytes(4 * bs);
  await h.write(1, 2000, pattern);
  t.equal(await h.compare(1, 2000, pattern), true, 'compare: equal');
  const other = Buffer.from(pattern);
  other[bs * 3 + 7] ^= 0xff;
  t.equal(await h.compare(1, 2000, other), false, 'compare: a differing byte is a Compare Failure');
  // Write Zeroes, Deallocate, Flush.
  await h.writeZeroes(1, 2000, 4);
  t.ok((await h.read(1, 2000, 4)).every((b) => b === 0), 'write zeroes');
  await h.write(1, 3000, randomBytes(16 * bs));
  await h.deallocate(1, [{ lba: 3000, blocks: 8 }, { lba: 3010, blocks: 2 }]);
  await h.flush(1);
  t.pass('deallocate and flush complete');
  // Out of range: the target's own check, DNR set.
  const sqe = Buffer.alloc(64);
  sqe[0] = 0x02;
  sqe.writeUInt32LE(1, 4);
  sqe.writeBigUInt64LE(BigInt(info.numBlocks), 40);
  const r = await h.ioRaw(1, sqe, Buffer.alloc(bs), { dir: 'c2h' });
  t.equal(r.status, 0x80, 'read past the end: LBA Out of Range');
  t.ok(r.cqe.status & 0x8000, 'with DNR');

  // A status the device makes up itself reaches the host unchanged:
  // Deallocated or Unwritten Logical Block (02h/87h) once DULBE is on.
  const ctrl = `/dev/${path.basename(ng).replace(/^ng(\d+)n\d+$/, 'nvme$1')}`;
  const nvmeCli = spawnSync('nvme', ['version'], { encoding: 'utf8' });
  if (nvmeCli.status !== 0 || !fs.existsSync(ctrl)) {
    t.skip(`device status passthrough: needs nvme-cli and ${ctrl}`);
  } else {
    const on = spawnSync('nvme', ['set-feature', ctrl, '-f', '5', '-n', '1', '-v', String(1 << 16)], { encoding: 'utf8' });
    if (on.status !== 0) {
      t.skip(`device status passthrough: the device refuses DULBE (${(on.stderr || on.stdout).trim()})`);
    } else {
      t.teardown(() => { spawnSync('nvme', ['set-feature', ctrl, '-f', '5', '-n', '1', '-v', '0']); });
      // Near the end: nothing here writes there.
      const rd = Buffer.alloc(64);
      rd[0] = 0x02;
      rd.writeUInt32LE(1, 4);
      rd.writeBigUInt64LE(BigInt(info.numBlocks - 1000), 40);
      const u = await h.ioRaw(1, rd, Buffer.alloc(bs), { dir: 'c2h' });
      spawnSync('nvme', ['set-feature', ctrl, '-f', '5', '-n', '1', '-v', '0']);
      if (u.status === 0) {
        t.skip('device status passthrough: the block was written before (no Unwritten Block error to pass on)');
      } else {
        t.equal(u.status, 0x287, 'read of an unwritten block: the device status 0x287, unchanged');
      }
    }
  }

  // Many commands in flight on both queues, then verify.
  const big = randomBytes(256 * bs);
  await Promise.all(Array.from({ length: 64 }, (_, i) => h.write(1, 10000 + i * 4, big.subarray(i * 4 * bs, (i + 1) * 4 * bs))));
  t.same(await h.read(1, 10000, 256), big, '64 concurrent writes read back');
});
