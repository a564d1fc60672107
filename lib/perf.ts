/**
 * A load generator on the host library (`npx nvmf-target perf`): keeps a
 * fixed number of I/Os outstanding per connection for a fixed time and
 * reports IOPS, bandwidth and latency. The load loop is native
 * (src-native/host/perf_run.cc), on a libuv worker thread; this file only
 * validates options and converts errors.
 */
import * as net from 'node:net';
import * as dns from 'node:dns';
import { awaitNative, callNative, invalid } from './errors';
import { native } from './native';
import { bool, int, nqn, obj, oneOf, onlyKnown, str } from './validate';

export interface PerfOptions {
  /** 'tcp' (NVMe/TCP), 'rdma' (NVMe/RDMA), or 'echo' for the benchmark's bare TCP echo server (bench/native). Default 'tcp'. */
  transport?: 'tcp' | 'rdma' | 'echo';
  /** Target address or host name. Default 127.0.0.1. */
  address?: string;
  /** Default 4420. */
  port?: number;
  /** Subsystem NQN (required for tcp and rdma). */
  subnqn?: string;
  /** Default: a random uuid host NQN. */
  hostnqn?: string;
  /** Namespace ID. Default 1. */
  nsid?: number;
  /** I/O queues (one TCP connection each) of one controller. Default 1. */
  connections?: number;
  /** Commands outstanding per connection. Default 32. */
  queueDepth?: number;
  /** Bytes per I/O, a multiple of the block size. Default 4096. */
  ioSize?: number;
  /** Default 'random'. */
  pattern?: 'random' | 'sequential';
  /** Share of reads, 0..100. Default 100. */
  readPercent?: number;
  /** Measured seconds. Default 10. */
  durationSec?: number;
  /** Warm-up seconds before measuring. Default 0. */
  rampSec?: number;
  /** Keep I/O within the first rangeBytes of the namespace. Default: all of it. */
  rangeBytes?: number;
  /** Spin while waiting for completions (default true); false sleeps in epoll. */
  busyPoll?: boolean;
  hdgst?: boolean;
  ddgst?: boolean;
  /** Largest write sent inside the command capsule, 0..131072 bytes (the target's IOCCSZ bounds it too). Default 8192. */
  maxInCapsuleBytes?: number;
  /** DH-HMAC-CHAP host secret (DHHC-1:...). */
  dhchapSecret?: string;
  /** DH-HMAC-CHAP controller secret, for bidirectional authentication. */
  dhchapCtrlSecret?: string;
}

export interface PerfResult {
  seconds: number;
  ios: number;
  reads: number;
  writes: number;
  bytes: number;
  errors: number;
  iops: number;
  mibPerSec: number;
  /** Submit-to-completion latency in microseconds. */
  latencyUs: { avg: number; min: number; max: number; p50: number; p90: number; p99: number; p999: number };
  blockSize: number;
  sizeBytes: number;
  connections: number;
  queueDepth: number;
  firstError?: string;
}

const KNOWN = [
  'transport', 'address', 'port', 'subnqn', 'hostnqn', 'nsid', 'connections', 'queueDepth', 'ioSize',
  'pattern', 'readPercent', 'durationSec', 'rampSec', 'rangeBytes', 'busyPoll', 'hdgst', 'ddgst',
  'dhchapSecret', 'dhchapCtrlSecret', 'maxInCapsuleBytes',
] as const;

function num(field: string, v: unknown, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
    throw invalid(field, `must be a number from ${lo} to ${hi} (got ${JSON.stringify(v)})`);
  }
  return v;
}

/** Runs one load and resolves with its figures. */
export async function perf(options: PerfOptions): Promise<PerfResult> {
  const o = obj('options', options);
  onlyKnown('options', o, KNOWN);
  const transport = oneOf('options.transport', o.transport, ['tcp', 'rdma', 'echo'] as const, 'tcp');
  const address = str('options.address', o.address, { optional: true }) ?? '127.0.0.1';
  const subnqn = transport !== 'echo' ? nqn('options.subnqn', o.subnqn) : undefined;
  const n: Record<string, unknown> = {
    transport,
    address: net.isIP(address) ? address : (await dns.promises.lookup(address)).address,
    port: int('options.port', o.port, 1, 65535) ?? 4420,
    subnqn: subnqn ?? '',
    nsid: int('options.nsid', o.nsid, 1, 0xfffffffe) ?? 1,
    connections: int('options.connections', o.connections, 1, 64) ?? 1,
    queueDepth: int('options.queueDepth', o.queueDepth, 1, 1024) ?? 32,
    ioSize: int('options.ioSize', o.ioSize, 512, 1 << 20) ?? 4096,
    pattern: oneOf('options.pattern', o.pattern, ['random', 'sequential'] as const, 'random'),
    readPercent: int('options.readPercent', o.readPercent, 0, 100) ?? 100,
    durationSec: num('options.durationSec', o.durationSec, 0.01, 86400) ?? 10,
    rampSec: num('options.rampSec', o.rampSec, 0, 3600) ?? 0,
    maxInCapsuleBytes: int('options.maxInCapsuleBytes', o.maxInCapsuleBytes, 0, 131_072) ?? 8192,
  };
  const hostnqn = nqn('options.hostnqn', o.hostnqn, true);
  if (hostnqn) n.hostnqn = hostnqn;
  const range = int('options.rangeBytes', o.rangeBytes, 0, Number.MAX_SAFE_INTEGER);
  if (range) n.rangeBytes = range;
  for (const k of ['busyPoll', 'hdgst', 'ddgst'] as const) {
    const b = bool(`options.${k}`, o[k]);
    if (b !== undefined) n[k] = b;
  }
  for (const k of ['dhchapSecret', 'dhchapCtrlSecret'] as const) {
    const s = str(`options.${k}`, o[k], { optional: true });
    if (s !== undefined) n[k] = s;
  }
  const addon = native() as unknown as { perfRun(o: object): Promise<PerfResult> };
  return awaitNative(callNative(() => addon.perfRun(n)));
}
