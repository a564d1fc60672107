/** Argument validation shared by the API classes. Every error names the field. */
import * as net from 'node:net';
import { invalid } from './errors';

export function obj(field: string, v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid(field, 'must be an object');
  return v as Record<string, unknown>;
}

export function onlyKnown(field: string, o: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw invalid(`${field}.${k}`, `is not a known option (known: ${known.join(', ')})`);
  }
}

export function str(field: string, v: unknown, opts: { optional?: boolean; max?: number; pattern?: RegExp; what?: string } = {}): string | undefined {
  if (v === undefined && opts.optional) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw invalid(field, 'must be a non-empty string');
  if (opts.max !== undefined && v.length > opts.max) throw invalid(field, `must be at most ${opts.max} characters`);
  if (opts.pattern && !opts.pattern.test(v)) throw invalid(field, `must be ${opts.what ?? `like ${opts.pattern}`} (got ${JSON.stringify(v)})`);
  return v;
}

export function int(field: string, v: unknown, lo: number, hi: number, optional = true): number | undefined {
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi) {
    throw invalid(field, `must be an integer from ${lo} to ${hi} (got ${JSON.stringify(v)})`);
  }
  return v;
}

export function bool(field: string, v: unknown): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalid(field, `must be a boolean (got ${JSON.stringify(v)})`);
  return v;
}

export function oneOf<T extends string>(field: string, v: unknown, values: readonly T[], dflt?: T): T {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'string' || !values.includes(v as T)) {
    throw invalid(field, `must be one of ${values.map((x) => `'${x}'`).join(', ')} (got ${JSON.stringify(v)})`);
  }
  return v as T;
}

/** NVMe Qualified Name: "nqn.yyyy-mm.reverse.domain[:anything]", at most 223 bytes. */
const NQN_RE = /^nqn\.\d{4}-(0[1-9]|1[0-2])\.[A-Za-z0-9][A-Za-z0-9.-]*(:[\x21-\x7e]+)?$/;
export function nqn(field: string, v: unknown, optional = false): string | undefined {
  if (v === undefined && optional) return undefined;
  const s = str(field, v, { max: 223 })!;
  if (Buffer.byteLength(s) > 223) throw invalid(field, 'must be at most 223 bytes');
  if (!NQN_RE.test(s) && !/^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-f-]{36}$/i.test(s)) {
    throw invalid(field, `must be an NQN like nqn.2024-01.com.example:storage (got ${JSON.stringify(s)})`);
  }
  return s;
}

/** Printable ASCII of at most `max` characters (Identify SN/MN). */
export function ascii(field: string, v: unknown, max: number): string | undefined {
  if (v === undefined) return undefined;
  const s = str(field, v, { max })!;
  if (!/^[\x20-\x7e]+$/.test(s)) throw invalid(field, 'must be printable ASCII');
  return s;
}

export function uuidBytes(field: string, v: unknown): Buffer | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)) {
    throw invalid(field, `must be a UUID like 123e4567-e89b-12d3-a456-426614174000 (got ${JSON.stringify(v)})`);
  }
  return Buffer.from(v.replace(/-/g, ''), 'hex');
}

export function hexBytes(field: string, v: unknown, n: number): Buffer | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !new RegExp(`^[0-9a-fA-F]{${2 * n}}$`).test(v)) {
    throw invalid(field, `must be ${2 * n} hexadecimal digits (got ${JSON.stringify(v)})`);
  }
  return Buffer.from(v, 'hex');
}

export interface ListenAddress {
  transport: 'tcp' | 'rdma';
  address: string;
  port: number;
}

export function listenAddress(field: string, v: unknown): ListenAddress & { ipv6: boolean } {
  const o = obj(field, v);
  onlyKnown(field, o, ['transport', 'address', 'port']);
  const transport = oneOf(`${field}.transport`, o.transport, ['tcp', 'rdma'] as const, 'tcp');
  const address = str(`${field}.address`, o.address)!;
  const family = net.isIP(address);
  if (family === 0) throw invalid(`${field}.address`, `must be an IPv4 or IPv6 address (got ${JSON.stringify(address)})`);
  const port = int(`${field}.port`, o.port, 1, 65535) ?? 4420;
  return { transport, address, port, ipv6: family === 6 };
}
