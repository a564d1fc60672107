import t from 'tap';
import { runNode, sanitizerReport } from './helpers/child';

const modes = ['destroy', 'gc', 'exit', 'worker'] as const;

for (const reactors of [1, 4]) {
  for (const mode of modes) {
    t.test(`${reactors} reactor(s), ${mode}`, async (t) => {
      const args = mode === 'gc' ? ['--expose-gc'] : [];
      const r = await runNode([...args, 'test/fixtures/exit-child.js', String(reactors), mode], { timeoutMs: 60_000 });
      t.equal(r.signal, null, 'no signal');
      t.equal(r.code, 0, `exit code 0 (stderr: ${r.stderr.slice(0, 2000)})`);
      t.notOk(sanitizerReport(r.stderr), 'no sanitizer report');
      if (mode === 'gc') t.match(r.stdout, /gc-collected/);
      if (mode === 'worker') t.match(r.stdout, /worker terminated/);
    });
  }
}
