#!/usr/bin/env node
// npm run build:fio — builds the benchmark tools into build-fio/:
//   build-fio/nvmf-fio.so   fio external ioengine (ioengine=external:build-fio/nvmf-fio.so)
//   build-fio/nvmf-echo     the loopback-ceiling echo server
//
// fio loads external engines by dlopen and hands them its own structures, so
// the engine must be compiled against the headers (and config-host.h) of
// exactly the fio version installed. This script takes them from the
// distribution: the source package of the installed `fio` (apt-get source,
// enabling deb-src entries for the configured mirrors when none exist), with
// the distribution's patches applied, configured as fio's own build does.
// Optional: only benchmarking needs it.
//
//   NVMF_FIO_SRC=/path/to/fio-src   use this (configured or not) fio tree instead
//   --force                          rebuild from scratch
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'build-fio');
const srcDir = path.join(out, 'src');
const force = process.argv.includes('--force');

function log(msg) {
  console.log(`build:fio: ${msg}`);
}
function die(msg) {
  console.error(`build:fio: ${msg}`);
  process.exit(1);
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: opts.quiet ? 'pipe' : 'inherit', encoding: 'utf8', ...opts });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    if (opts.quiet) process.stderr.write((r.stdout || '') + (r.stderr || ''));
    if (opts.allowFail) return r;
    die(`${cmd} ${args.join(' ')} failed (exit ${r.status})`);
  }
  return r;
}
function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function installedFio() {
  if (!have('fio')) {
    if (process.getuid && process.getuid() === 0 && have('apt-get')) {
      log('fio is not installed: apt-get install fio');
      run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'fio']);
    } else {
      die('fio is not installed (apt-get install fio)');
    }
  }
  const v = execFileSync('fio', ['--version'], { encoding: 'utf8' }).trim(); // "fio-3.33"
  const m = /^fio-(\d+\.\d+(?:\.\d+)?)/.exec(v);
  if (!m) die(`cannot parse fio --version output: ${v}`);
  let pkgVersion = null;
  const q = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'fio'], { encoding: 'utf8' });
  if (q.status === 0 && q.stdout.trim()) pkgVersion = q.stdout.trim();
  return { upstream: m[1], pkgVersion };
}

// deb-src entries mirroring the configured deb ones (deb822 .sources files
// and one-line .list files), so `apt-get source` works.
function enableDebSrc() {
  const dir = '/etc/apt/sources.list.d';
  const target = path.join(dir, 'nvmf-target-deb-src.sources');
  if (fs.existsSync(target)) return false;
  const stanzas = [];
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : [];
  for (const f of files.filter((f) => f.endsWith('.sources'))) {
    for (const st of fs.readFileSync(f, 'utf8').split(/\n\s*\n/)) {
      if (/^Types:.*\bdeb-src\b/m.test(st)) return false; // already there
      if (/^Enabled:\s*no/im.test(st)) continue;
      if (/^Types:\s*deb\s*$/m.test(st)) stanzas.push(st.replace(/^Types:\s*deb\s*$/m, 'Types: deb-src').trim());
    }
  }
  const lists = ['/etc/apt/sources.list', ...files.filter((f) => f.endsWith('.list'))];
  const lines = [];
  for (const f of lists) {
    if (!fs.existsSync(f)) continue;
    for (const l of fs.readFileSync(f, 'utf8').split('\n')) {
      if (/^\s*deb-src\s/.test(l)) return false;
      if (/^\s*deb\s/.test(l)) lines.push(l.replace(/^\s*deb\s/, 'deb-src '));
    }
  }
  if (!stanzas.length && !lines.length) die('no apt sources found to derive deb-src entries from');
  if (stanzas.length) {
    fs.writeFileSync(target, `# Added by nvmf-target scripts/build-fio.js (apt-get source fio).\n${stanzas.join('\n\n')}\n`);
  } else {
    fs.writeFileSync(target.replace(/\.sources$/, '.list'), `# Added by nvmf-target scripts/build-fio.js\n${lines.join('\n')}\n`);
  }
  return true;
}

function fetchSource(fio) {
  if (process.env.NVMF_FIO_SRC) return path.resolve(process.env.NVMF_FIO_SRC);
  fs.mkdirSync(srcDir, { recursive: true });
  const existing = fs.readdirSync(srcDir).find((d) => d === `fio-${fio.upstream}` && fs.statSync(path.join(srcDir, d)).isDirectory());
  if (existing && !force) return path.join(srcDir, existing);
  if (!have('apt-get')) die('apt-get is not available: set NVMF_FIO_SRC to a fio source tree of the installed version');
  const spec = fio.pkgVersion ? `fio=${fio.pkgVersion}` : 'fio';
  log(`fetching the source of ${spec} (apt-get source)`);
  let r = run('apt-get', ['source', '--download-only', spec], { cwd: srcDir, quiet: true, allowFail: true });
  if (r.status !== 0) {
    if (!(process.getuid && process.getuid() === 0)) {
      die('apt-get source failed and enabling deb-src entries needs root; run as root or set NVMF_FIO_SRC');
    }
    if (enableDebSrc()) log('enabled deb-src entries (/etc/apt/sources.list.d/nvmf-target-deb-src.*)');
    run('apt-get', ['update', '-qq'], { quiet: true });
    r = run('apt-get', ['source', '--download-only', spec], { cwd: srcDir, quiet: true });
  }
  const dsc = fs.readdirSync(srcDir).find((f) => f.endsWith('.dsc') && f.startsWith('fio_'));
  if (!dsc) die('apt-get source downloaded no .dsc');
  const dest = path.join(srcDir, `fio-${fio.upstream}`);
  fs.rmSync(dest, { recursive: true, force: true });
  if (have('dpkg-source')) {
    // Applies the distribution's patches: the tree the installed binary was built from.
    run('dpkg-source', ['--no-check', '-x', dsc, dest], { cwd: srcDir, quiet: true });
  } else {
    const orig = fs.readdirSync(srcDir).find((f) => /^fio_.*\.orig\.tar\./.test(f));
    fs.mkdirSync(dest);
    run('tar', ['xf', orig, '-C', dest, '--strip-components=1'], { cwd: srcDir });
  }
  return dest;
}

function configure(fioSrc) {
  if (fs.existsSync(path.join(fioSrc, 'config-host.h')) && !force) return;
  log(`configuring ${fioSrc} (./configure --disable-native, as the distribution builds it)`);
  run('./configure', ['--disable-native'], { cwd: fioSrc, quiet: true });
}

function checkVersion(fioSrc, fio) {
  const verFile = path.join(fioSrc, 'FIO-VERSION-GEN');
  if (!fs.existsSync(verFile)) return;
  const m = /DEF_VER=fio-([\d.]+)/.exec(fs.readFileSync(verFile, 'utf8'));
  if (m && m[1] !== fio.upstream) {
    die(`the fio source is ${m[1]} but the installed fio is ${fio.upstream}: an engine built against it would not load`);
  }
}

const fio = installedFio();
log(`installed fio ${fio.upstream}${fio.pkgVersion ? ` (package ${fio.pkgVersion})` : ''}`);
const fioSrc = fetchSource(fio);
checkVersion(fioSrc, fio);
configure(fioSrc);
const gen = have('ninja') ? ['-G', 'Ninja'] : [];
run('cmake', ['-S', path.join(root, 'bench', 'native'), '-B', out, `-DFIO_SRC=${fioSrc}`, '-DCMAKE_BUILD_TYPE=Release', ...gen], { quiet: true });
run('cmake', ['--build', out, '--parallel', process.env.CMAKE_BUILD_PARALLEL_LEVEL || '2']);
for (const f of ['nvmf-fio.so', 'nvmf-echo']) {
  if (!fs.existsSync(path.join(out, f))) die(`${f} was not built`);
}
log(`built ${path.relative(root, path.join(out, 'nvmf-fio.so'))} (fio ${fio.upstream}) and ${path.relative(root, path.join(out, 'nvmf-echo'))}`);
