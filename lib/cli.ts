#!/usr/bin/env node
/**
 * nvmf-target command line.
 *   nvmf-target serve [flags]   a target serving a RAM namespace (see --help)
 */
import { Target } from './target';

const USAGE = `usage: nvmf-target <command> [options]

commands:
  serve      start a target and serve until SIGINT/SIGTERM
  help       show this text
`;

async function serve(argv: string[]): Promise<void> {
  const reactors = argv.includes('--reactors') ? Number(argv[argv.indexOf('--reactors') + 1]) : 1;
  const target = await Target.create({ reactors });
  target.ref();
  console.log(`nvmf-target: target running with ${reactors} reactor(s); Ctrl-C stops it`);
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`nvmf-target: ${sig}: shutting down in order`);
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
