#!/usr/bin/env node
// npm "install" hook. A published package carries a prebuild, which
// node-gyp-build loads with no toolchain at all. In a source checkout (no
// prebuild for this platform) it builds the addon, first installing the
// system packages the build needs (scripts/setup-system.sh --minimal, apt-get)
// when running as root on Debian/Ubuntu.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}

const hasPrebuild = fs.existsSync(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`));
const hasBuild = fs.existsSync(path.join(root, 'build', 'Release', 'nvmf_target.node'));
const isCheckout = fs.existsSync(path.join(root, '.git'));
if (!hasPrebuild && !hasBuild && isCheckout && process.platform === 'linux' && fs.existsSync('/usr/bin/apt-get')) {
  run('bash', [path.join(root, 'scripts', 'setup-system.sh'), '--minimal']);
}
if (hasPrebuild && !isCheckout) process.exit(0); // node-gyp-build will load it
run(process.execPath, [require.resolve('node-gyp-build/bin.js')]);
