#!/usr/bin/env node
// Runs the tap suite against the sanitizer build of the addon
// (build-asan/, -fsanitize=address,undefined), with clang's ASan runtime
// preloaded into every Node process (Node itself is not instrumented).
// Reports go to files under a fresh directory; any file there fails the run,
// so a report in a child process cannot hide behind a passing test.
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
// NVMF_ASAN_ADDON: another sanitizer build (e.g. a developer's own build-asan-<name>/).
const addon = path.resolve(process.env.NVMF_ASAN_ADDON || path.join(root, 'build-asan', 'Release', 'nvmf_target.node'));
if (!fs.existsSync(addon)) {
  console.error(`run-asan: ${addon} is missing; run "npm run build:asan" first`);
  process.exit(2);
}
const runtime = execFileSync('clang', ['-print-file-name=libclang_rt.asan-x86_64.so'], { encoding: 'utf8' }).trim();
if (!fs.existsSync(runtime)) {
  console.error(`run-asan: ASan runtime not found (${runtime}); run scripts/setup-system.sh`);
  process.exit(2);
}
const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nvmf-asan-'));
const supp = path.join(root, 'scripts', 'lsan.supp');
const env = {
  ...process.env,
  LD_PRELOAD: runtime,
  NVMF_TARGET_NATIVE: addon,
  NVMF_ASAN: '1',
  ASAN_OPTIONS: [
    'detect_leaks=1',
    'halt_on_error=1',
    'abort_on_error=0',
    'detect_stack_use_after_return=0',
    'allocator_may_return_null=1',
    `log_path=${logDir}/asan`,
  ].join(':'),
  // Leaks are judged below (ours or Node's), not by the exit code.
  LSAN_OPTIONS: `suppressions=${supp}:print_suppressions=0:exitcode=0`,
  UBSAN_OPTIONS: `print_stacktrace=1:halt_on_error=1:log_path=${logDir}/ubsan`,
};
const args = process.argv.slice(2);
const r = spawnSync(process.execPath, [path.join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs'), ...args], {
  cwd: root,
  env,
  stdio: 'inherit',
});
// A leak counts as ours when the code that allocated it is ours: the first
// frame of its allocation stack outside the sanitizer runtime, libc and
// libstdc++ lies in our addon. Memory that Node/V8 allocated (even when our
// code asked V8 for an object: a terminated worker's isolate pages are never
// freed by Node) is counted and shown in a summary only.
// Every AddressSanitizer error and every UndefinedBehaviorSanitizer report
// fails the run, wherever it is.
const OURS = /nvmf_target\.node|src-native\/|node-addon-api\//;
const RUNTIME = /libclang_rt|libasan|libc\.so|libstdc\+\+|libgcc_s|\/usr\/include\/c\+\+\//;
function allocatedByUs(block) {
  const frames = block.split('\n').filter((l) => /^\s+#\d+ /.test(l));
  const first = frames.find((f) => !RUNTIME.test(f));
  return first !== undefined && OURS.test(first);
}
let failed = r.status !== 0;
let ours = 0;
let nodeOnly = 0;
for (const f of fs.readdirSync(logDir)) {
  const text = fs.readFileSync(path.join(logDir, f), 'utf8');
  const isLeakOnly = /ERROR: LeakSanitizer/.test(text) && !/ERROR: AddressSanitizer/.test(text) && !/runtime error:/.test(text);
  if (isLeakOnly) {
    const blocks = text.split(/\n(?=(?:Direct|Indirect) leak of )/).slice(1);
    const mine = blocks.filter(allocatedByUs);
    nodeOnly += blocks.length - mine.length;
    if (mine.length === 0) continue;
    ours += mine.length;
    console.error(`\n===== leak report ${f}: ${mine.length} leak(s) in nvmf-target =====`);
    console.error(mine.join('\n'));
  } else {
    ours++;
    console.error(`\n===== sanitizer report ${f} =====`);
    console.error(text);
  }
}
if (nodeOnly > 0) console.log(`run-asan: ignored ${nodeOnly} leak record(s) with no nvmf-target frame (Node/V8 internals)`);
if (ours > 0) {
  failed = true;
  console.error(`run-asan: ${ours} sanitizer report(s) in nvmf-target`);
} else {
  console.log('run-asan: no sanitizer reports from nvmf-target');
}
fs.rmSync(logDir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
