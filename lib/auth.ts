/**
 * DH-HMAC-CHAP keys: generate, validate and read them. Keys use the
 * `DHHC-1:<hh>:<base64(secret || crc32)>:` form that `nvme gen-dhchap-key`
 * prints and the Linux host and target accept. Parsing happens in native
 * code, which wipes its copies; a key held in a JavaScript string cannot be
 * wiped, so prefer key files (`{ file }`) over literals in long-lived code.
 */
import * as fs from 'node:fs';
import { NvmfError, callNative } from './errors';
import { native } from './native';
import { obj, onlyKnown } from './validate';

/** Hash functions of DH-HMAC-CHAP. */
export type DhchapDigest = 'sha256' | 'sha384' | 'sha512';
/** Diffie-Hellman groups of DH-HMAC-CHAP ('null': no key exchange). */
export type DhchapDhGroup = 'null' | 'ffdhe2048' | 'ffdhe3072' | 'ffdhe4096' | 'ffdhe6144' | 'ffdhe8192';

export const DHCHAP_DIGESTS: readonly DhchapDigest[] = ['sha256', 'sha384', 'sha512'];
export const DHCHAP_DHGROUPS: readonly DhchapDhGroup[] = ['null', 'ffdhe2048', 'ffdhe3072', 'ffdhe4096', 'ffdhe6144', 'ffdhe8192'];

/** A key: the DHHC-1 text, or a file holding it (see readDhchapKeyFile). */
export type DhchapKeyInput = string | { file: string; allowInsecure?: boolean };

export interface GenerateDhchapKeyOptions {
  /** Transform hash stored in the key: 0 none (default), 1 SHA-256, 2 SHA-384, 3 SHA-512. */
  hmac?: 0 | 1 | 2 | 3;
  /** Secret length in bytes: 32, 48 or 64. Default: the hash's digest length (32 for hmac 0). */
  length?: 32 | 48 | 64;
  /** Host NQN: with a transform hash the secret is stored transformed with it, as nvme-cli does. */
  hostNqn?: string;
}

export interface DhchapKeyInfo {
  /** Transform hash id (0 none, 1 SHA-256, 2 SHA-384, 3 SHA-512). */
  hmac: 0 | 1 | 2 | 3;
  /** Secret length in bytes. */
  length: 32 | 48 | 64;
}

/** A new random key in the DHHC-1 text form, like `nvme gen-dhchap-key`. */
export function generateDhchapKey(options: GenerateDhchapKeyOptions = {}): string {
  const o = obj('options', options);
  onlyKnown('options', o, ['hmac', 'length', 'hostNqn']);
  const hmac = o.hmac ?? 0;
  if (hmac !== 0 && hmac !== 1 && hmac !== 2 && hmac !== 3) {
    throw new NvmfError('ERR_INVALID_ARGUMENT', `options.hmac must be 0, 1, 2 or 3 (got ${JSON.stringify(o.hmac)})`);
  }
  if (o.length !== undefined && o.length !== 32 && o.length !== 48 && o.length !== 64) {
    throw new NvmfError('ERR_INVALID_ARGUMENT', `options.length must be 32, 48 or 64 (got ${JSON.stringify(o.length)})`);
  }
  if (o.hostNqn !== undefined && (typeof o.hostNqn !== 'string' || o.hostNqn.length === 0)) {
    throw new NvmfError('ERR_INVALID_ARGUMENT', 'options.hostNqn must be a non-empty string');
  }
  return callNative(() => native().generateDhchapKey(hmac, (o.length as number | undefined) ?? 0, o.hostNqn as string | undefined));
}

/**
 * Validates a key field by field; returns what it holds (never the secret).
 * Throws ERR_INVALID_KEY naming what is wrong (prefix, hash id, base64,
 * length, CRC).
 */
export function parseDhchapKey(text: string): DhchapKeyInfo {
  if (typeof text !== 'string') throw new NvmfError('ERR_INVALID_KEY', 'a DH-HMAC-CHAP key must be a string');
  return callNative(() => native().parseDhchapKey(text)) as DhchapKeyInfo;
}

/**
 * Reads a key from a file (surrounding whitespace ignored) and validates it.
 * A file that group or others may access is refused (ERR_INVALID_KEY)
 * unless `allowInsecure` is set.
 */
export function readDhchapKeyFile(path: string, options: { allowInsecure?: boolean } = {}): string {
  if (typeof path !== 'string' || path.length === 0) throw new NvmfError('ERR_INVALID_ARGUMENT', 'path must be a non-empty string');
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY);
  } catch (e) {
    throw new NvmfError('ERR_INVALID_KEY', `cannot read key file ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    // The mode of the file we opened, not of whatever the path names later.
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new NvmfError('ERR_INVALID_KEY', `key file ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0 && options.allowInsecure !== true) {
      throw new NvmfError(
        'ERR_INVALID_KEY',
        `key file ${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); ` +
          `chmod 600 it, or pass allowInsecure: true`,
      );
    }
    if (st.size > 4096) throw new NvmfError('ERR_INVALID_KEY', `key file ${path} is too large to hold a key (${st.size} bytes)`);
    const text = fs.readFileSync(fd, 'utf8').trim();
    try {
      parseDhchapKey(text);
    } catch (e) {
      throw new NvmfError('ERR_INVALID_KEY', `key file ${path}: ${(e as Error).message}`);
    }
    return text;
  } finally {
    fs.closeSync(fd);
  }
}

/** @internal A key option (text or { file }) as text; undefined stays undefined. */
export function resolveDhchapKey(field: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    try {
      parseDhchapKey(v);
    } catch (e) {
      throw new NvmfError('ERR_INVALID_KEY', `${field} ${(e as Error).message}`);
    }
    return v;
  }
  if (typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    onlyKnown(field, o, ['file', 'allowInsecure']);
    if (typeof o.file !== 'string') throw new NvmfError('ERR_INVALID_ARGUMENT', `${field}.file must be a path`);
    if (o.allowInsecure !== undefined && typeof o.allowInsecure !== 'boolean') {
      throw new NvmfError('ERR_INVALID_ARGUMENT', `${field}.allowInsecure must be a boolean`);
    }
    return readDhchapKeyFile(o.file, { allowInsecure: o.allowInsecure === true });
  }
  throw new NvmfError('ERR_INVALID_KEY', `${field} must be a DHHC-1 key string or { file: path }`);
}

/** @internal A list of names (or one name) checked against `allowed`; no duplicates. */
export function nameList<T extends string>(field: string, v: unknown, allowed: readonly T[]): T[] | undefined {
  if (v === undefined) return undefined;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) throw new NvmfError('ERR_INVALID_ARGUMENT', `${field} must not be empty`);
  const seen = new Set<string>();
  for (const x of list) {
    if (typeof x !== 'string' || !allowed.includes(x as T)) {
      throw new NvmfError('ERR_INVALID_ARGUMENT', `${field} must list ${allowed.map((a) => `'${a}'`).join(', ')} (got ${JSON.stringify(x)})`);
    }
    if (seen.has(x)) throw new NvmfError('ERR_INVALID_ARGUMENT', `${field} lists ${x} twice`);
    seen.add(x);
  }
  return list as T[];
}

/** Target-wide DH-HMAC-CHAP policy (Target.create({ auth }), target.setAuthOptions()). */
export interface TargetAuthOptions {
  /** Hash functions the target may select, in order of preference. Default: sha512, sha384, sha256. */
  digests?: DhchapDigest[];
  /** DH groups the target may select, in order of preference. Default: ffdhe8192 ... ffdhe2048, null. */
  dhgroups?: DhchapDhGroup[];
  /** The longest wait for the host's next authentication message (from Connect, then from each message), ms. Default 30000. */
  timeoutMs?: number;
}

export const DEFAULT_AUTH_OPTIONS: Readonly<Required<TargetAuthOptions>> = Object.freeze({
  digests: ['sha512', 'sha384', 'sha256'] as DhchapDigest[],
  dhgroups: ['ffdhe8192', 'ffdhe6144', 'ffdhe4096', 'ffdhe3072', 'ffdhe2048', 'null'] as DhchapDhGroup[],
  timeoutMs: 30_000,
});

/** @internal Validates auth options; absent fields come from `base`. */
export function validateAuthOptions(field: string, v: unknown, base: Required<TargetAuthOptions> = DEFAULT_AUTH_OPTIONS): Required<TargetAuthOptions> {
  if (v === undefined) return { digests: [...base.digests], dhgroups: [...base.dhgroups], timeoutMs: base.timeoutMs };
  const o = obj(field, v);
  onlyKnown(field, o, ['digests', 'dhgroups', 'timeoutMs']);
  let timeoutMs = base.timeoutMs;
  if (o.timeoutMs !== undefined) {
    if (typeof o.timeoutMs !== 'number' || !Number.isInteger(o.timeoutMs) || o.timeoutMs < 100 || o.timeoutMs > 3_600_000) {
      throw new NvmfError('ERR_INVALID_ARGUMENT', `${field}.timeoutMs must be an integer from 100 to 3600000 (got ${JSON.stringify(o.timeoutMs)})`);
    }
    timeoutMs = o.timeoutMs;
  }
  return {
    digests: nameList(`${field}.digests`, o.digests, DHCHAP_DIGESTS) ?? [...base.digests],
    dhgroups: nameList(`${field}.dhgroups`, o.dhgroups, DHCHAP_DHGROUPS) ?? [...base.dhgroups],
    timeoutMs,
  };
}
