import t from 'tap';
import * as fs from 'node:fs';
import { Target, NvmfError } from '../dist';

function threadCount(): number {
  return fs.readdirSync('/proc/self/task').length;
}
function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

t.test('create, state, reactors, destroy', async (t) => {
  const target = await Target.create({ reactors: 3, pollMode: 'interrupt' });
  t.equal(target.state, 'running');
  const rs = target.reactors();
  t.equal(rs.length, 3);
  for (const r of rs) {
    t.ok(r.tid > 0, 'reactor has a thread id');
    t.equal(r.pollMode, 'interrupt');
    t.ok(fs.existsSync(`/proc/self/task/${r.tid}`), 'reactor thread lives in this process');
  }
  await target.destroy();
  t.equal(target.state, 'destroyed');
  t.equal(target.destroyed, true);
  for (const r of rs) t.notOk(fs.existsSync(`/proc/self/task/${r.tid}`), 'reactor thread joined');
});

t.test('concurrent destroy() calls share one completion', async (t) => {
  const target = await Target.create({ reactors: 2 });
  let destroyedEvents = 0;
  target.on('destroyed', () => destroyedEvents++);
  const ps = [target.destroy(), target.destroy(), target.destroy()];
  t.equal(ps[0], ps[1]);
  t.equal(ps[1], ps[2]);
  await Promise.all(ps);
  t.equal(destroyedEvents, 1, 'destroyed once');
  t.equal(await target.destroy(), undefined, 'destroy after destroy resolves');
});

t.test('every call after destroy fails with ERR_DESTROYED', async (t) => {
  const target = await Target.create();
  const p = target.destroy();
  // Already during destroy, calls are refused.
  t.throws(() => target.reactors(), { code: 'ERR_DESTROYED' });
  await p;
  try {
    target.reactors();
    t.fail('should throw');
  } catch (e) {
    t.type(e, NvmfError);
    t.equal((e as NvmfError).code, 'ERR_DESTROYED');
    t.match((e as NvmfError).message, /target is destroyed/);
  }
});

t.test('invalid options name the field', async (t) => {
  await t.rejects(Target.create({ reactors: 0 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.reactors/ });
  await t.rejects(Target.create({ reactors: 1.5 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.reactors/ });
  await t.rejects(Target.create({ pollMode: 'spin' as never }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.pollMode/ });
  await t.rejects(Target.create({ adaptiveIdleUs: -1 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.adaptiveIdleUs/ });
  await t.rejects(Target.create({ bogus: 1 } as never), { code: 'ERR_INVALID_ARGUMENT', message: /options\.bogus/ });
  await t.rejects(Target.create(null as never), { code: 'ERR_INVALID_ARGUMENT', message: /options/ });
});

t.test('await using destroys', async (t) => {
  let seen: Target | undefined;
  {
    await using target = await Target.create({ reactors: 2 });
    seen = target;
    t.equal(target.state, 'running');
  }
  t.equal(seen!.state, 'destroyed');
});

t.test('1000 create/destroy cycles do not grow threads, fds or RSS', async (t) => {
  // Warm up allocator pools and lazy initialisation first.
  for (let i = 0; i < 50; i++) await (await Target.create({ reactors: 2 })).destroy();
  global.gc?.();
  const threads0 = threadCount();
  const fds0 = fdCount();
  const rss0 = process.memoryUsage.rss();
  for (let i = 0; i < 1000; i++) {
    const target = await Target.create({ reactors: 1 + (i % 4), pollMode: i % 3 === 0 ? 'poll' : 'adaptive' });
    await target.destroy();
  }
  global.gc?.();
  // Destroyer helper threads are joined lazily; give the last one a moment.
  await new Promise((r) => setTimeout(r, 50));
  const threads1 = threadCount();
  const fds1 = fdCount();
  const rss1 = process.memoryUsage.rss();
  t.comment(`threads ${threads0} -> ${threads1}, fds ${fds0} -> ${fds1}, rss ${(rss0 / 1048576).toFixed(1)} -> ${(rss1 / 1048576).toFixed(1)} MiB`);
  t.ok(threads1 <= threads0 + 1, 'no thread growth (one destroyer may still be finishing)');
  t.ok(fds1 <= fds0, 'no fd growth');
  const limit = process.env.NVMF_ASAN ? 64 : 16;
  t.ok(rss1 - rss0 < limit * 1048576, `RSS growth below ${limit} MiB`);
});
