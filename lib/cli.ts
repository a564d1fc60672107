#!/usr/bin/env node
/**
 * nvmf-target command line.
 *   nvmf-target serve [options]   a target serving one namespace (RAM by default)
 */
import { parseArgs } from 'node:util';
import * as os from 'node:os';
import { Target } from './target';
import { NvmfError } from './errors';

const USAGE = `usage: nvmf-target <command> [options]

commands:
  serve        start a target and serve until SIGINT/SIGTERM
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
  --host NQN       allow only this host NQN (repeatable; default: any host)
`;

function parseSize(s: string): number {
  const m = /^(\d+)([kKmMgGtT]?)i?[bB]?$/.exec(s);
  if (!m) throw new NvmfError('ERR_INVALID_ARGUMENT', `--size must be a number with an optional K/M/G/T suffix (got ${s})`);
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
    },
    strict: true,
  });
  const nqn = values.nqn ?? `nqn.2024-01.io.nvmf-target:${os.hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'target'}`;
  const target = await Target.create({
    reactors: Number(values.reactors),
    pollMode: values['poll-mode'] as 'poll' | 'interrupt' | 'adaptive',
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
    for (const h of hosts) await subsystem.addHost({ nqn: h });
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
    console.log(`  nvme connect -t tcp -a ${l.address} -s ${l.port} -n ${nqn}`);
    console.log(`  nvme disconnect -n ${nqn}`);
    console.log('or from Node: require("nvmf-target").connect({ address, port, subnqn })');
    console.log('Ctrl-C (SIGINT) or SIGTERM stops the target in order.');
  } catch (e) {
    console.error(`nvmf-target: ${(e as Error).message}`);
    await target.destroy();
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'serve':
      return serve(rest);
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
