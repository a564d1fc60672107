/** Stable error codes. Callers switch on `code`, never on the message. */
export type NvmfErrorCode =
  | 'ERR_DESTROYED'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_NOT_FOUND'
  | 'ERR_ALREADY_EXISTS'
  | 'ERR_BUSY'
  | 'ERR_RESOURCE'
  | 'ERR_IO'
  | 'ERR_NVME_STATUS'
  | 'ERR_CONNECTION'
  | 'ERR_TIMEOUT'
  | 'ERR_AUTH_FAILED'
  | 'ERR_INVALID_KEY'
  | 'ERR_TRANSPORT_UNAVAILABLE'
  | 'ERR_NATIVE_UNAVAILABLE'
  | 'ERR_INTERNAL';

export class NvmfError extends Error {
  readonly code: NvmfErrorCode;
  /** The errno, when the failure came from a system call. */
  readonly errno?: number;
  /** The NVMe status (SCT << 8 | SC), when the failure is an NVMe completion. */
  readonly nvmeStatus?: number;
  /**
   * ERR_AUTH_FAILED: the DH-HMAC-CHAP reason code explanation ('failed',
   * 'protocol-unusable', 'concat-mismatch', 'hash-unusable',
   * 'dhgroup-unusable', 'incorrect-payload', 'incorrect-message').
   */
  readonly reason?: string;

  constructor(code: NvmfErrorCode, message: string, extra: { errno?: number; nvmeStatus?: number; reason?: string; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'NvmfError';
    this.code = code;
    if (extra.errno !== undefined) this.errno = extra.errno;
    if (extra.nvmeStatus !== undefined) this.nvmeStatus = extra.nvmeStatus;
    if (extra.reason !== undefined) this.reason = extra.reason;
  }
}

const KNOWN = new Set<string>([
  'ERR_DESTROYED', 'ERR_INVALID_ARGUMENT', 'ERR_NOT_FOUND', 'ERR_ALREADY_EXISTS', 'ERR_BUSY',
  'ERR_RESOURCE', 'ERR_IO', 'ERR_NVME_STATUS', 'ERR_CONNECTION', 'ERR_TIMEOUT', 'ERR_AUTH_FAILED',
  'ERR_INVALID_KEY', 'ERR_TRANSPORT_UNAVAILABLE', 'ERR_NATIVE_UNAVAILABLE', 'ERR_INTERNAL',
]);

/** Turns an error thrown or rejected by the native addon into an NvmfError. */
export function fromNative(e: unknown): NvmfError {
  if (e instanceof NvmfError) return e;
  if (e instanceof Error) {
    const any = e as Error & { code?: unknown; errno?: unknown; nvmeStatus?: unknown; reason?: unknown };
    const code = typeof any.code === 'string' && KNOWN.has(any.code) ? (any.code as NvmfErrorCode) : 'ERR_INTERNAL';
    const extra: { errno?: number; nvmeStatus?: number; reason?: string; cause?: unknown } = {};
    if (typeof any.errno === 'number') extra.errno = any.errno;
    if (typeof any.nvmeStatus === 'number') extra.nvmeStatus = any.nvmeStatus;
    if (typeof any.reason === 'string' && any.reason !== '') extra.reason = any.reason;
    if (code === 'ERR_INTERNAL') extra.cause = e;
    return new NvmfError(code, e.message, extra);
  }
  return new NvmfError('ERR_INTERNAL', String(e));
}

/** Runs a native call, converting what it throws. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

/** Awaits a native promise, converting its rejection. */
export async function awaitNative<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw fromNative(e);
  }
}

export function invalid(field: string, what: string): NvmfError {
  return new NvmfError('ERR_INVALID_ARGUMENT', `${field} ${what}`);
}
