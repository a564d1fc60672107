import { EventEmitter } from 'node:events';
import { NvmfError, awaitNative, callNative, invalid } from './errors';
import { createHash } from 'node:crypto';
import {
  native,
  type NativeBdevInfo,
  type NativeFaultStats,
  type NativeGroupStats,
  type NativeProcessResources,
  type NativeReactorInfo,
  type NativeTarget,
  type NativeTargetResources,
} from './native';
import { Subsystem } from './subsystem';
import { validateAuthOptions, type TargetAuthOptions } from './auth';
import * as v from './validate';

export type PollMode = 'poll' | 'interrupt' | 'adaptive';

export interface TargetOptions {
  /** Reactor (poll group) threads, 1..64. Default 1. */
  reactors?: number;
  /** How reactors wait for work. Default 'adaptive'. */
  pollMode?: PollMode;
  /** In adaptive mode, how long a reactor keeps spinning after its last work (µs). Default 200. */
  adaptiveIdleUs?: number;
  /**
   * A connection must finish its transport handshake (ICReq) and Fabrics
   * Connect within this many ms, or it is closed (0 = no limit). Default 10000.
   */
  handshakeTimeoutMs?: number;
  /**
   * Safety net of every disconnect (final responses flushed, then closed)
   * and how long destroy() waits for in-flight backend I/O before it cancels
   * what the backend can give back (ms, 100..600000). Default 5000.
   */
  disconnectTimeoutMs?: number;
  /**
   * Largest write data an I/O command may carry inside its capsule (bytes,
   * 4096..131072, a multiple of 16), advertised in Identify Controller
   * (IOCCSZ). Larger writes cost a round trip more: the target asks for their
   * data (NVMe/TCP R2T, NVMe/RDMA READ). Default 8192. Memory: NVMe/RDMA
   * preposts one receive buffer of 64 B + this size per queue entry (or per
   * shared receive queue entry); NVMe/TCP needs nothing extra up to the
   * 128 KiB maximum transfer size. Same role as SPDK's in_capsule_data_size
   * and nvmet's inline_data_size.
   */
  inCapsuleDataSize?: number;
  /** DH-HMAC-CHAP: hashes and DH groups the target may select (preference order), transaction timeout. */
  auth?: TargetAuthOptions;
  /** NVMe/RDMA transport options. */
  rdma?: RdmaTargetOptions;
}

export interface RdmaTargetOptions {
  /**
   * Share one receive queue (SRQ) per poll group and RDMA device among its
   * queue pairs, instead of a receive queue of HSQSIZE + 1 buffers per queue
   * pair. Default false.
   *
   * Queue depth rule: receive buffers are committed to queues, never
   * oversubscribed: a connection is refused (NVMe/RDMA reject "no
   * resources") when the queue depths (HSQSIZE + 1) of the group's queues on
   * that device would add up to more than the SRQ holds, so a host that
   * respects its queue depth never meets an empty SRQ (no RNR stalls).
   */
  srq?: boolean;
  /**
   * Receive buffers of each shared receive queue, 64..65536 (bounded by the
   * device's max_srq_wr). Default 4096. Each buffer holds a command capsule
   * with in-capsule data (64 B + inCapsuleDataSize, 8 KiB by default): 4096
   * register about 33 MiB per poll group and device by default, allocated
   * when the group's first connection arrives.
   */
  srqDepth?: number;
}

/**
 * The target's lifecycle, as the native state machine reports it. `running`
 * until destroy() starts; then the ordered destroy stages; then `destroyed`.
 */
export type TargetState =
  | 'running'
  | 'pausing-subsystems'
  | 'stopping-listeners'
  | 'disconnecting-qpairs'
  | 'destroying-subsystems'
  | 'destroying-poll-groups'
  | 'destroying-transports'
  | 'destroyed';

export type ReactorInfo = NativeReactorInfo;
export type BdevInfo = NativeBdevInfo;
export type PollGroupStats = NativeGroupStats;
export type FaultStats = NativeFaultStats;
export type TargetResources = NativeTargetResources;

/** Faults of a 'fault' bdev. Omitted fields are off. */
export interface BdevFaults {
  /** Which operations fail with a media error (EIO): reads, writes, the rest (flush, write zeroes, deallocate). */
  errorOn?: { read?: boolean; write?: boolean; other?: boolean };
  /** Fraction of the selected operations that fail, 0..1. Default 1. */
  errorRate?: number;
  /** Stop after this many injected errors (0 = no limit). */
  errorCount?: number;
  /** Every completion arrives at least this late (µs, up to 60 s). */
  delayUs?: number;
  /** Hold new I/O (not submitted to the base) until the faults change. */
  stall?: boolean;
}
export type { ListenAddress } from './validate';

export interface BdevOptions {
  /** Unique name, [A-Za-z0-9_.:-]{1,64}. */
  name: string;
  /**
   * 'malloc' (RAM), 'null' (discards writes, reads zeroes), 'uring' (file or
   * block device), 'fault' (wraps `base`, injecting the faults given here),
   * 'nvme' (an NVMe namespace through io_uring passthrough on its generic
   * char device `path`, /dev/ngXnY; size, block size and limits are the
   * device's own).
   */
  type: 'malloc' | 'null' | 'uring' | 'fault' | 'nvme';
  /** Size in bytes; required for malloc/null; for uring, creates or extends a file to it. */
  sizeBytes?: number;
  /** Logical block size (512, 1024, 2048 or 4096). Default 512; a block device's own for uring. */
  blockSize?: number;
  /** uring: path of the file or block device; nvme: the generic char device (/dev/ngXnY). */
  path?: string;
  /** uring: open with O_DIRECT. */
  direct?: boolean;
  /** fault: the bdev it wraps (same geometry). */
  base?: string;
  /** fault: the initial faults (see setBdevFaults). */
  errorOn?: BdevFaults['errorOn'];
  errorRate?: number;
  errorCount?: number;
  delayUs?: number;
  stall?: boolean;
}

export interface SubsystemOptions {
  nqn: string;
  /** Serial number (≤ 20 ASCII). Default: derived from the NQN. */
  serial?: string;
  /** Model number (≤ 40 ASCII). Default 'nvmf-target'. */
  model?: string;
  /** Any host may connect (no host list). Default false. */
  allowAnyHost?: boolean;
  /** Default 32. */
  maxNamespaces?: number;
}

function checkInt(field: string, v: unknown, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw invalid(field, `must be an integer from ${lo} to ${hi} (got ${JSON.stringify(v)})`);
  }
  return v;
}

function checkInCapsule(value: unknown): number {
  const n = checkInt('options.inCapsuleDataSize', value, 4096, 131_072) ?? 8192;
  if (n % 16) throw invalid('options.inCapsuleDataSize', `must be a multiple of 16 (got ${n})`);
  return n;
}

export function validateTargetOptions(options: unknown): Required<TargetOptions> {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid('options', 'must be an object');
  }
  const o = options as Record<string, unknown>;
  const known = new Set(['reactors', 'pollMode', 'adaptiveIdleUs', 'handshakeTimeoutMs', 'disconnectTimeoutMs', 'inCapsuleDataSize', 'auth', 'rdma']);
  for (const k of Object.keys(o)) {
    if (!known.has(k)) throw invalid(`options.${k}`, 'is not a known option');
  }
  const pollMode = o.pollMode ?? 'adaptive';
  if (pollMode !== 'poll' && pollMode !== 'interrupt' && pollMode !== 'adaptive') {
    throw invalid('options.pollMode', `must be 'poll', 'interrupt' or 'adaptive' (got ${JSON.stringify(o.pollMode)})`);
  }
  return {
    reactors: checkInt('options.reactors', o.reactors, 1, 64) ?? 1,
    pollMode,
    adaptiveIdleUs: checkInt('options.adaptiveIdleUs', o.adaptiveIdleUs, 0, 10_000_000) ?? 200,
    handshakeTimeoutMs: checkInt('options.handshakeTimeoutMs', o.handshakeTimeoutMs, 0, 3_600_000) ?? 10_000,
    disconnectTimeoutMs: checkInt('options.disconnectTimeoutMs', o.disconnectTimeoutMs, 100, 600_000) ?? 5_000,
    inCapsuleDataSize: checkInCapsule(o.inCapsuleDataSize),
    auth: validateAuthOptions('options.auth', o.auth),
    rdma: validateRdmaOptions(o.rdma),
  };
}

function validateRdmaOptions(value: unknown): Required<RdmaTargetOptions> {
  const r = value === undefined ? {} : v.obj('options.rdma', value);
  v.onlyKnown('options.rdma', r, ['srq', 'srqDepth']);
  return {
    srq: v.bool('options.rdma.srq', r.srq) ?? false,
    srqDepth: checkInt('options.rdma.srqDepth', r.srqDepth, 64, 65_536) ?? 4096,
  };
}

export type ProcessResources = NativeProcessResources;

/**
 * Process-wide resource totals of every target (live or being destroyed):
 * targets, poll groups, qpairs, controllers, outstanding and leaked
 * requests, request and registered buffers, bdevs. Readable at any time, so
 * tests can check that a destroyed target gave everything back.
 */
export function resources(): ProcessResources {
  return callNative(() => native().resources());
}

function validateFaults(field: string, o: Record<string, unknown>): BdevFaults {
  const out: BdevFaults = {};
  if (o.errorOn !== undefined) {
    const e = v.obj(`${field}.errorOn`, o.errorOn);
    v.onlyKnown(`${field}.errorOn`, e, ['read', 'write', 'other']);
    out.errorOn = {
      read: v.bool(`${field}.errorOn.read`, e.read) ?? false,
      write: v.bool(`${field}.errorOn.write`, e.write) ?? false,
      other: v.bool(`${field}.errorOn.other`, e.other) ?? false,
    };
  }
  if (o.errorRate !== undefined) {
    if (typeof o.errorRate !== 'number' || !(o.errorRate >= 0 && o.errorRate <= 1)) {
      throw invalid(`${field}.errorRate`, `must be a number from 0 to 1 (got ${JSON.stringify(o.errorRate)})`);
    }
    out.errorRate = o.errorRate;
  }
  const count = v.int(`${field}.errorCount`, o.errorCount, 0, Number.MAX_SAFE_INTEGER);
  if (count !== undefined) out.errorCount = count;
  const delay = v.int(`${field}.delayUs`, o.delayUs, 0, 60_000_000);
  if (delay !== undefined) out.delayUs = delay;
  const stall = v.bool(`${field}.stall`, o.stall);
  if (stall !== undefined) out.stall = stall;
  return out;
}

/**
 * An NVMe-oF target. Create with `Target.create()`; always `destroy()` it (or
 * use `await using`). An idle target does not keep Node's event loop alive
 * unless `ref()` is called.
 */
export class Target extends EventEmitter {
  #native: NativeTarget | undefined;
  #destroying: Promise<void> | undefined;
  readonly options: Readonly<Required<TargetOptions>>;

  private constructor(options: Required<TargetOptions>) {
    super();
    this.options = Object.freeze(options);
    // The native side holds this callback strongly; it must not pin the
    // Target, or a dropped target could never be garbage collected.
    const weak = new WeakRef(this);
    const emit = (name: string, json: string): void => {
      const self = weak.deref();
      if (!self) return;
      let payload: unknown;
      try {
        payload = JSON.parse(json);
      } catch {
        payload = { raw: json };
      }
      self.emit(name, payload);
    };
    const { NativeTarget } = native();
    this.#native = callNative(() => new NativeTarget(options, emit));
  }

  static async create(options?: TargetOptions): Promise<Target> {
    const opts = validateTargetOptions(options);
    return new Target(opts);
  }

  /** @internal The native handle; throws ERR_DESTROYED once destroy() began. */
  nativeHandle(what: string): NativeTarget {
    if (this.#native === undefined || this.#destroying !== undefined) {
      throw new NvmfError('ERR_DESTROYED', `target is destroyed; cannot ${what}`);
    }
    return this.#native;
  }

  get state(): TargetState {
    if (this.#native === undefined) return 'destroyed';
    return this.#native.state() as TargetState;
  }

  get destroyed(): boolean {
    return this.#native === undefined;
  }

  /** Creates a block backend that namespaces can use. */
  async createBdev(options: BdevOptions): Promise<BdevInfo> {
    const o = v.obj('options', options);
    const faultKeys = ['base', 'errorOn', 'errorRate', 'errorCount', 'delayUs', 'stall'];
    v.onlyKnown('options', o, ['name', 'type', 'sizeBytes', 'blockSize', 'path', 'direct', ...(o.type === 'fault' ? faultKeys : [])]);
    const name = v.str('options.name', o.name, { max: 64, pattern: /^[A-Za-z0-9_.:-]+$/, what: 'letters, digits, _ . : -' })!;
    const type = v.oneOf('options.type', o.type, ['malloc', 'null', 'uring', 'fault', 'nvme'] as const);
    if (type === 'fault') {
      v.onlyKnown('options', o, ['name', 'type', ...faultKeys]);
      const base = v.str('options.base', o.base, { max: 64 })!;
      const faults = validateFaults('options', o);
      return awaitNative(this.nativeHandle(`create bdev ${name}`).createBdev({ name, type, base, ...faults }));
    }
    if (type === 'nvme') {
      for (const k of ['sizeBytes', 'blockSize', 'direct']) {
        if (o[k] !== undefined) throw invalid(`options.${k}`, "is not for type 'nvme' (the device's own size and LBA format are used)");
      }
      const path = v.str('options.path', o.path)!;
      return awaitNative(this.nativeHandle(`create bdev ${name}`).createBdev({ name, type, path }));
    }
    const blockSize = o.blockSize === undefined ? undefined : v.int('options.blockSize', o.blockSize, 512, 4096);
    if (blockSize !== undefined && ![512, 1024, 2048, 4096].includes(blockSize)) {
      throw new NvmfError('ERR_INVALID_ARGUMENT', `options.blockSize must be 512, 1024, 2048 or 4096 (got ${blockSize})`);
    }
    const bs = blockSize ?? 512;
    const sizeBytes = v.int('options.sizeBytes', o.sizeBytes, 1, Number.MAX_SAFE_INTEGER, type === 'uring');
    if (sizeBytes !== undefined && sizeBytes % bs !== 0) {
      throw new NvmfError('ERR_INVALID_ARGUMENT', `options.sizeBytes must be a multiple of blockSize ${bs} (got ${sizeBytes})`);
    }
    const path = v.str('options.path', o.path, { optional: type !== 'uring' });
    if (type !== 'uring' && path !== undefined) throw new NvmfError('ERR_INVALID_ARGUMENT', `options.path is only for type 'uring'`);
    const direct = v.bool('options.direct', o.direct);
    const n = this.nativeHandle(`create bdev ${name}`);
    return awaitNative(
      n.createBdev({
        name,
        type,
        ...(blockSize !== undefined || type !== 'uring' ? { blockSize: bs } : {}),
        ...(sizeBytes !== undefined ? { numBlocks: sizeBytes / bs } : {}),
        ...(path !== undefined ? { path } : {}),
        ...(direct !== undefined ? { direct } : {}),
      }),
    );
  }

  async deleteBdev(name: string): Promise<void> {
    v.str('name', name);
    return awaitNative(this.nativeHandle(`delete bdev ${name}`).deleteBdev(name));
  }

  bdevs(): BdevInfo[] {
    return this.nativeHandle('list bdevs').config().bdevs;
  }

  /**
   * Replaces the faults of a 'fault' bdev (omitted fields are off: `{}` heals
   * it; held I/O then proceeds) and resolves to its counters.
   */
  async setBdevFaults(name: string, faults: BdevFaults): Promise<FaultStats> {
    v.str('name', name);
    const f = validateFaults('faults', v.obj('faults', faults));
    return awaitNative(this.nativeHandle(`change the faults of bdev ${name}`).bdevFaults(name, f));
  }

  /** The counters of a 'fault' bdev: I/Os, errors injected, delayed, stalled, held now, cancelled. */
  async bdevFaultStats(name: string): Promise<FaultStats> {
    v.str('name', name);
    return awaitNative(this.nativeHandle(`read the faults of bdev ${name}`).bdevFaults(name));
  }

  /**
   * What this target holds right now: poll groups, qpairs, controllers,
   * outstanding requests, request buffers, registered buffers, bdevs. After
   * hosts disconnect, everything but pollGroups and bdevs returns to 0.
   * (`resources()` of the module gives the process-wide totals, also after
   * destroy.)
   */
  resources(): TargetResources {
    const n = this.nativeHandle('read resources');
    return callNative(() => n.resources());
  }

  /** Creates an NVM subsystem (active at once). */
  async createSubsystem(options: SubsystemOptions): Promise<Subsystem> {
    const o = v.obj('options', options);
    v.onlyKnown('options', o, ['nqn', 'serial', 'model', 'allowAnyHost', 'maxNamespaces']);
    const nqn = v.nqn('options.nqn', o.nqn)!;
    if (nqn === 'nqn.2014-08.org.nvmexpress.discovery') {
      throw new NvmfError('ERR_INVALID_ARGUMENT', 'options.nqn must not be the discovery NQN');
    }
    const serial = v.ascii('options.serial', o.serial, 20) ?? createHash('sha256').update(nqn).digest('hex').slice(0, 20);
    const model = v.ascii('options.model', o.model, 40) ?? 'nvmf-target';
    const allowAnyHost = v.bool('options.allowAnyHost', o.allowAnyHost) ?? false;
    const maxNamespaces = v.int('options.maxNamespaces', o.maxNamespaces, 1, 1024) ?? 32;
    await awaitNative(this.nativeHandle(`create subsystem ${nqn}`).createSubsystem({ nqn, serial, model, allowAnyHost, maxNamespaces }));
    return new Subsystem(nqn, (what) => this.nativeHandle(what));
  }

  /** A handle on an existing subsystem. */
  subsystem(nqn: string): Subsystem {
    v.nqn('nqn', nqn);
    const cfg = this.nativeHandle(`find subsystem ${nqn}`).config();
    if (!cfg.subsystems.some((s) => s.nqn === nqn && s.type === 'nvm')) {
      throw new NvmfError('ERR_NOT_FOUND', `subsystem ${nqn} does not exist`);
    }
    return new Subsystem(nqn, (what) => this.nativeHandle(what));
  }

  /** Disconnects its hosts and removes the subsystem. */
  async deleteSubsystem(nqn: string): Promise<void> {
    v.nqn('nqn', nqn);
    return awaitNative(this.nativeHandle(`delete subsystem ${nqn}`).deleteSubsystem(nqn));
  }

  /** Listens for hosts (every subsystem is reachable unless it restricts its listeners). */
  async listen(address: { transport?: 'tcp' | 'rdma'; address: string; port?: number }): Promise<v.ListenAddress> {
    const a = v.listenAddress('address', address);
    await awaitNative(this.nativeHandle(`listen on ${a.address}:${a.port}`).listen(a, false));
    return { transport: a.transport, address: a.address, port: a.port };
  }

  async stopListening(address: { transport?: 'tcp' | 'rdma'; address: string; port?: number }): Promise<void> {
    const a = v.listenAddress('address', address);
    return awaitNative(this.nativeHandle(`stop listening on ${a.address}:${a.port}`).listen(a, true));
  }

  listenAddresses(): v.ListenAddress[] {
    return this.nativeHandle('list listeners').config().listeners.map((l) => ({
      transport: l.transport as 'tcp' | 'rdma',
      address: l.address,
      port: l.port,
    }));
  }

  /** Per poll group: reactor counters and every qpair (commands, bytes, errors, queue depth). */
  async stats(): Promise<PollGroupStats[]> {
    return awaitNative(this.nativeHandle('read stats').stats());
  }

  /** Reactor threads and their loop counters. */
  reactors(): ReactorInfo[] {
    const n = this.nativeHandle('read reactors');
    return callNative(() => n.reactorInfo());
  }

  #auth: Required<TargetAuthOptions> | undefined;

  /** The DH-HMAC-CHAP policy in force (Target.create({ auth }), setAuthOptions()). */
  get authOptions(): Required<TargetAuthOptions> {
    // validateTargetOptions filled every field.
    const a = this.#auth ?? (this.options.auth as Required<TargetAuthOptions>);
    return { digests: [...a.digests], dhgroups: [...a.dhgroups], timeoutMs: a.timeoutMs };
  }

  /**
   * Changes the DH-HMAC-CHAP policy; fields not given keep their value.
   * Authentications that start afterwards use it; those in progress finish
   * with the policy they started with.
   */
  setAuthOptions(options: TargetAuthOptions): void {
    const next = validateAuthOptions('options', options, this.authOptions);
    const n = this.nativeHandle('change the authentication policy');
    callNative(() => n.setAuthPolicy(next));
    this.#auth = next;
  }

  /** Keep Node's event loop alive while this target exists. */
  ref(): this {
    this.#native?.ref();
    return this;
  }

  unref(): this {
    this.#native?.unref();
    return this;
  }

  /**
   * Destroys the target in the order of the design: pause subsystems, stop
   * listeners, disconnect qpairs, destroy subsystems, poll groups, transports
   * and bdevs. Idempotent: every call returns the same promise.
   */
  destroy(): Promise<void> {
    if (this.#destroying) return this.#destroying;
    const n = this.#native;
    if (n === undefined) return (this.#destroying = Promise.resolve());
    this.#destroying = awaitNative(n.destroy()).then(() => {
      this.#native = undefined;
      this.emit('destroyed');
    });
    return this.#destroying;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
