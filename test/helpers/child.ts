/** Runs a Node child process and collects its outcome. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export const ROOT = path.resolve(__dirname, '..', '..');

export function runNode(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** True when a sanitizer printed a report into this output. */
export function sanitizerReport(text: string): boolean {
  return /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer/.test(text);
}

export interface ServeChild {
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `nvmf-target serve ARGS` and waits (up to 20 s) until it says it is serving. */
export async function startServe(args: string[]): Promise<ServeChild> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 20_000;
  while (!out.includes('Ctrl-C') && !done && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return { child, output: () => out, exited };
}
