// The benchmark chart: one row per profile, one bar per server, bar length
// = IOPS relative to the row's best, labelled with IOPS and the fraction of
// the loopback ceiling. Plain SVG, no dependencies.
'use strict';
const fs = require('node:fs');

const COLORS = { echo: '#9e9e9e', 'nvmf-target': ['#1f77b4', '#17becf', '#2ca02c'], other: ['#ff7f0e', '#d62728', '#9467bd'] };

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

function fmt(x) {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
}

function writeChart(file, report) {
  const servers = [...new Set(report.results.map((r) => r.server))];
  const kindOf = (name) => report.results.find((r) => r.server === name).kind;
  const color = {};
  const used = { 'nvmf-target': 0, other: 0 };
  for (const s of servers) {
    const k = kindOf(s);
    color[s] = k === 'echo' ? COLORS.echo : COLORS[k][used[k]++ % COLORS[k].length];
  }
  const profiles = report.config.profiles;
  const barH = 16;
  const gap = 4;
  const rowH = servers.length * (barH + gap) + 14;
  const left = 150;
  const width = 1100;
  const plotW = width - left - 400;
  const top = 60;
  const height = top + profiles.length * rowH + 30 + servers.length * 18;
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="100%" height="100%" fill="white"/>`);
  o.push(`<text x="10" y="20" font-size="15" font-weight="bold">nvmf-target benchmark: IOPS per profile (fio + nvmf engine, NVMe/TCP loopback)</text>`);
  const m = report.machine;
  o.push(`<text x="10" y="38" fill="#555">${esc(`${m.cpuModel}, ${m.cpus} CPUs, ${m.kernel}; ${m.pinning}; ${report.config.rampSec}+${report.config.durationSec} s per run; ${report.date}`)}</text>`);
  profiles.forEach((p, i) => {
    const y0 = top + i * rowH;
    const rows = report.results.filter((r) => r.profile === p);
    const best = Math.max(1, ...rows.filter((r) => !r.error).map((r) => r.iops));
    o.push(`<text x="10" y="${y0 + rowH / 2}" font-weight="bold">${esc(p)}</text>`);
    servers.forEach((s, j) => {
      const r = rows.find((x) => x.server === s);
      const y = y0 + j * (barH + gap);
      if (!r) return;
      if (r.error) {
        o.push(`<text x="${left}" y="${y + 12}" fill="#c00">${esc(s)}: failed</text>`);
        return;
      }
      const w = Math.max(1, (plotW * r.iops) / best);
      o.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color[s]}"/>`);
      const frac = r.ceiling ? ` (${(r.ceiling.iopsFraction * 100).toFixed(0)}% of ceiling)` : r.kind === 'echo' ? ' (ceiling)' : '';
      const lat = r.latUs && r.latUs.p99 != null ? `, p99 ${r.latUs.p99.toFixed(0)} us` : '';
      o.push(`<text x="${left + w + 6}" y="${y + 12}">${esc(`${fmt(r.iops)} IOPS, ${r.mibps.toFixed(0)} MiB/s${lat}${frac}`)}</text>`);
    });
    o.push(`<line x1="10" x2="${width - 10}" y1="${y0 + rowH - 6}" y2="${y0 + rowH - 6}" stroke="#ddd"/>`);
  });
  const ly = top + profiles.length * rowH + 10;
  servers.forEach((s, j) => {
    o.push(`<rect x="10" y="${ly + j * 18}" width="12" height="12" fill="${color[s]}"/>`);
    o.push(`<text x="28" y="${ly + j * 18 + 11}">${esc(s)}</text>`);
  });
  o.push('</svg>');
  fs.writeFileSync(file, o.join('\n') + '\n');
}

module.exports = { writeChart };
