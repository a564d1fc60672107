#!/usr/bin/env node
/**
 * nvmf-target command line.
 *   nvmf-target serve [options]   a target serving one namespace (RAM by default)
 *   nvmf-target perf [options]    a load generator on the host library
 *   nvmf-target gen-key [options] a new DH-HMAC-CHAP key
 */
import { parseArgs } from 'node:util';
import * as os from 'node:os';
import { Target } from './target';
import { NvmfError } from './errors';
import { generateDhchapKey, readDhchapKeyFile } from './auth';
import { perf, type PerfOptions } from './perf';

const USAGE = `usage: nvmf-target <command> [options]

commands:
  serve        start a target and serve until SIGINT/SIGTERM
  perf         drive a target with a fixed load, print IOPS, MiB/s and latency
  gen-key      print a new DH-HMAC-CHAP key (like nvme gen-dhchap-key)
  help         show this text

serve options:
  --address A      listen address (default 127.0.0.1; IPv6 allowed)
  --port P         listen port (default 4420)
  --nqn NQN        subsystem NQN (default nqn.2024-01.io.nvmf-target:<hostname>)
  --size SIZE      RAM namespace size: bytes or with K/M/G suffix (default 1G)
  --file PATH      serve this file or block device instead of RAM (io_uring)
  --block-size N   logical block size (default 512)
  --reactors N     reactor threads (default 1)
  --poll-mode M    poll | interrupt | adaptive (default adaptive)
  --in-capsule-data SIZE
                   largest write carried inside the command capsule, 4K..128K
                   (default 8K); larger writes cost a round trip (R2T)
  --host NQN       allow only this host NQN (repeatable; default: any host)
  --dhchap-key K   the --host(s) must authenticate with DH-HMAC-CHAP key K
                   (a DHHC-1 key, or a file holding one, mode 0600)
  --dhchap-ctrl-key K
                   controller key: hosts may authenticate the target too

gen-key options:
  --hmac 0|1|2|3   transform hash: 0 none (default), 1 SHA-256, 2 SHA-384, 3 SHA-512
  --length N       secret length 32, 48 or 64 (default: the hash's, 32 for none)
  --nqn NQN        host NQN the secret is transformed with (as nvme-cli does)

perf options:
  --nqn NQN            subsystem NQN (required for tcp)
  --address A          target address (default 127.0.0.1)
  --port P             target port (default 4420)
  --transport T        tcp | rdma | echo (echo: the benchmark's bare TCP echo server)
  --nsid N             namespace ID (default 1)
  --hostnqn NQN        host NQN (default: a random uuid NQN)
  --queue-depth N      commands outstanding per connection (default 32)
  --io-size SIZE       bytes per I/O, K/M suffix allowed (default 4K)
  --pattern P          random | sequential (default random)
  --read-percent N     share of reads in the mix, 0..100 (default 100)
  --duration SEC       measured seconds (default 10)
  --ramp SEC           warm-up seconds, not measured (default 0)
  --connections N      I/O queues, one TCP connection each (default 1)
  --in-capsule SIZE    largest write sent inside the command capsule (default 8K;
                       the target's limit, serve --in-capsule-data, bounds it)
  --no-busy-poll       sleep in epoll between completions instead of spinning
  --json               print the result as JSON
`;

function parseSize(s: string, flag = '--size'): number {
  const m = /^(\d+)([kKmMgGtT]?)i?[bB]?$/.exec(s);
  if (!m) throw new NvmfError('ERR_INVALID_ARGUMENT', `${flag} must be a number with an optional K/M/G/T suffix (got ${s})`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Number(m[1]) * mult[m[2]!.toLowerCase()]!;
}

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      address: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '4420' },
      nqn: { type: 'string' },
      size: { type: 'string', default: '1G' },
      file: { type: 'string' },
      'block-size': { type: 'string', default: '512' },
      reactors: { type: 'string', default: '1' },
      'poll-mode': { type: 'string', default: 'adaptive' },
      host: { type: 'string', multiple: true },
      'dhchap-key': { type: 'string' },
      'dhchap-ctrl-key': { type: 'string' },
      'in-capsule-data': { type: 'string' },
    },
    strict: true,
  });
  // A value that is not a key is a key file (refused if group/others may read it).
  const keyOpt = (v: string | undefined): string | undefined =>
    v === undefined ? undefined : v.startsWith('DHHC-1:') ? v : readDhchapKeyFile(v);
  const dhchapKey = keyOpt(values['dhchap-key']);
  const dhchapCtrlKey = keyOpt(values['dhchap-ctrl-key']);
  if ((dhchapKey || dhchapCtrlKey) && !values.host?.length) {
    throw new NvmfError('ERR_INVALID_ARGUMENT', '--dhchap-key and --dhchap-ctrl-key need --host (the hosts that authenticate)');
  }
  const nqn = values.nqn ?? `nqn.2024-01.io.nvmf-target:${os.hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'target'}`;
  const target = await Target.create({
    reactors: Number(values.reactors),
    pollMode: values['poll-mode'] as 'poll' | 'interrupt' | 'adaptive',
    ...(values['in-capsule-data'] !== undefined ? { inCapsuleDataSize: parseSize(values['in-capsule-data'], '--in-capsule-data') } : {}),
  });
  target.ref();
  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`nvmf-target: ${why}: shutting down in order`);
    target.destroy().then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    const blockSize = Number(values['block-size']);
    const bdev = values.file
      ? await target.createBdev({ name: 'ns1', type: 'uring', path: values.file, blockSize })
      : await target.createBdev({ name: 'ns1', type: 'malloc', sizeBytes: parseSize(values.size!), blockSize });
    const hosts = values.host ?? [];
    const subsystem = await target.createSubsystem({ nqn, allowAnyHost: hosts.length === 0, model: 'nvmf-target' });
    for (const h of hosts) await subsystem.addHost({ nqn: h, ...(dhchapKey ? { dhchapKey } : {}), ...(dhchapCtrlKey ? { dhchapCtrlKey } : {}) });
    await subsystem.addNamespace({ bdev: bdev.name });
    const port = Number(values.port);
    const l = await target.listen({ transport: 'tcp', address: values.address!, port });
    target.on('host-connect', (e: { hostnqn: string; qid: number; peer: string }) => {
      if (e.qid === 0) console.log(`nvmf-target: host ${e.hostnqn} connected from ${e.peer}`);
    });
    target.on('host-disconnect', (e: { hostnqn: string }) => console.log(`nvmf-target: host ${e.hostnqn} disconnected`));
    const what = values.file ? `file ${values.file}` : 'RAM';
    console.log(`nvmf-target: serving ${what} (${bdev.sizeBytes} bytes, ${bdev.blockSize}-byte blocks) as namespace 1`);
    console.log(`  subsystem  ${nqn}`);
    console.log(`  listening  tcp ${l.address} port ${l.port}`);
    console.log('connect with the Linux kernel host (nvme-cli, as root):');
    console.log(`  modprobe nvme-tcp`);
    console.log(`  nvme discover -t tcp -a ${l.address} -s ${l.port}`);
    const authArgs = dhchapKey ? ` --hostnqn=${hosts[0]} --dhchap-secret=<key>${dhchapCtrlKey ? ' --dhchap-ctrl-secret=<ctrl key>' : ''}` : '';
    console.log(`  nvme connect -t tcp -a ${l.address} -s ${l.port} -n ${nqn}${authArgs}`);
    console.log(`  nvme disconnect -n ${nqn}`);
    console.log('or from Node: require("nvmf-target").connect({ address, port, subnqn })');
    console.log('Ctrl-C (SIGINT) or SIGTERM stops the target in order.');
  } catch (e) {
    console.error(`nvmf-target: ${(e as Error).message}`);
    await target.destroy();
    process.exit(1);
  }
}

async function runPerf(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      nqn: { type: 'string' },
      address: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '4420' },
      transport: { type: 'string', default: 'tcp' },
      nsid: { type: 'string', default: '1' },
      hostnqn: { type: 'string' },
      'queue-depth': { type: 'string', default: '32' },
      'io-size': { type: 'string', default: '4K' },
      pattern: { type: 'string', default: 'random' },
      'read-percent': { type: 'string', default: '100' },
      duration: { type: 'string', default: '10' },
      ramp: { type: 'string', default: '0' },
      connections: { type: 'string', default: '1' },
      'in-capsule': { type: 'string', default: '8K' },
      'no-busy-poll': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const o: PerfOptions = {
    transport: values.transport as 'tcp' | 'rdma' | 'echo',
    address: values.address!,
    port: Number(values.port),
    nsid: Number(values.nsid),
    queueDepth: Number(values['queue-depth']),
    ioSize: parseSize(values['io-size']!, '--io-size'),
    pattern: values.pattern as 'random' | 'sequential',
    readPercent: Number(values['read-percent']),
    durationSec: Number(values.duration),
    rampSec: Number(values.ramp),
    connections: Number(values.connections),
    busyPoll: !values['no-busy-poll'],
    maxInCapsuleBytes: parseSize(values['in-capsule']!, '--in-capsule'),
  };
  if (values.nqn !== undefined) o.subnqn = values.nqn;
  if (values.hostnqn !== undefined) o.hostnqn = values.hostnqn;
  if (o.transport !== 'echo' && o.subnqn === undefined) {
    throw new NvmfError('ERR_INVALID_ARGUMENT', '--nqn (the subsystem NQN) is required');
  }
  if (!values.json) {
    const rw = o.readPercent === 100 ? 'reads' : o.readPercent === 0 ? 'writes' : `${o.readPercent}/${100 - o.readPercent!} read/write`;
    console.error(
      `perf: ${o.ioSize}-byte ${o.pattern} ${rw}, ${o.connections} connection(s) x QD ${o.queueDepth}, ` +
        `${o.durationSec} s against ${o.transport} ${o.address}:${o.port}${o.subnqn ? ` ${o.subnqn} ns ${o.nsid}` : ''}`,
    );
  }
  const r = await perf(o);
  if (values.json) {
    console.log(JSON.stringify({ options: o, result: r }, null, 2));
  } else {
    const f = (x: number) => x.toFixed(1);
    console.log(`  IOPS         ${Math.round(r.iops)}`);
    console.log(`  MiB/s        ${r.mibPerSec.toFixed(1)}`);
    console.log(
      `  latency (us) avg ${f(r.latencyUs.avg)}  p50 ${f(r.latencyUs.p50)}  p99 ${f(r.latencyUs.p99)}  ` +
        `p99.9 ${f(r.latencyUs.p999)}  max ${f(r.latencyUs.max)}`,
    );
    console.log(`  I/Os         ${r.ios} in ${r.seconds.toFixed(2)} s (${r.reads} reads, ${r.writes} writes), ${r.errors} errors`);
    if (r.firstError) console.log(`  first error  ${r.firstError}`);
  }
  if (r.errors > 0) process.exitCode = 1;
}

function genKey(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      hmac: { type: 'string', default: '0' },
      length: { type: 'string' },
      nqn: { type: 'string' },
    },
    strict: true,
  });
  const hmac = Number(values.hmac);
  if (![0, 1, 2, 3].includes(hmac)) throw new NvmfError('ERR_INVALID_ARGUMENT', `--hmac must be 0, 1, 2 or 3 (got ${values.hmac})`);
  const length = values.length === undefined ? undefined : Number(values.length);
  if (length !== undefined && ![32, 48, 64].includes(length)) {
    throw new NvmfError('ERR_INVALID_ARGUMENT', `--length must be 32, 48 or 64 (got ${values.length})`);
  }
  const key = generateDhchapKey({
    hmac: hmac as 0 | 1 | 2 | 3,
    ...(length !== undefined ? { length: length as 32 | 48 | 64 } : {}),
    ...(values.nqn !== undefined ? { hostNqn: values.nqn } : {}),
  });
  process.stdout.write(`${key}\n`);
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'serve':
      return serve(rest);
    case 'perf':
      return runPerf(rest);
    case 'gen-key':
      return genKey(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`nvmf-target: unknown command '${cmd}'\n${USAGE}`);
      process.exitCode = 2;
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? `nvmf-target: ${e.message}` : e);
  process.exit(1);
});
