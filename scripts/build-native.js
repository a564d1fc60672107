#!/usr/bin/env node
// Developer build of the addon through cmake-js.
//   node scripts/build-native.js          -> build/Release/nvmf_target.node
//   node scripts/build-native.js --asan   -> build-asan/Release/nvmf_target.node (clang,
//                                            -fsanitize=address,undefined)
//   --out DIR   build somewhere else (load it with NVMF_TARGET_NATIVE=DIR/Release/nvmf_target.node)
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const asan = process.argv.includes('--asan');
const outIdx = process.argv.indexOf('--out');
const out = outIdx > 0 ? process.argv[outIdx + 1] : asan ? 'build-asan' : 'build';
const root = path.resolve(__dirname, '..');
const nodeInclude = path.resolve(process.execPath, '..', '..', 'include', 'node');
const args = [
  require.resolve('cmake-js/bin/cmake-js'),
  'build',
  '--out', out,
  `--CDNVMF_NODE_INCLUDE=${nodeInclude}`,
];
if (asan) {
  args.push('--CDNVMF_SANITIZE=ON', '--CDCMAKE_BUILD_TYPE=RelWithDebInfo',
    '--CDCMAKE_C_COMPILER=clang', '--CDCMAKE_CXX_COMPILER=clang++');
}
const env = { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL || '2' };
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
process.exit(r.status === null ? 1 : r.status);
