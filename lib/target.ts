import { EventEmitter } from 'node:events';
import { NvmfError, awaitNative, callNative, invalid } from './errors';
import { createHash } from 'node:crypto';
import { native, type NativeBdevInfo, type NativeGroupStats, type NativeReactorInfo, type NativeTarget } from './native';
import { Subsystem } from './subsystem';
import * as v from './validate';

export type PollMode = 'poll' | 'interrupt' | 'adaptive';

export interface TargetOptions {
  /** Reactor (poll group) threads, 1..64. Default 1. */
  reactors?: number;
  /** How reactors wait for work. Default 'adaptive'. */
  pollMode?: PollMode;
  /** In adaptive mode, how long a reactor keeps spinning after its last work (µs). Default 200. */
  adaptiveIdleUs?: number;
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
export type { ListenAddress } from './validate';

export interface BdevOptions {
  /** Unique name, [A-Za-z0-9_.:-]{1,64}. */
  name: string;
  /** 'malloc' (RAM), 'null' (discards writes, reads zeroes), 'uring' (file or block device). */
  type: 'malloc' | 'null' | 'uring';
  /** Size in bytes; required for malloc/null; for uring, creates or extends a file to it. */
  sizeBytes?: number;
  /** Logical block size (512, 1024, 2048 or 4096). Default 512; a block device's own for uring. */
  blockSize?: number;
  /** uring: path of the file or block device. */
  path?: string;
  /** uring: open with O_DIRECT. */
  direct?: boolean;
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

export function validateTargetOptions(options: unknown): Required<TargetOptions> {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid('options', 'must be an object');
  }
  const o = options as Record<string, unknown>;
  const known = new Set(['reactors', 'pollMode', 'adaptiveIdleUs']);
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
  };
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
    v.onlyKnown('options', o, ['name', 'type', 'sizeBytes', 'blockSize', 'path', 'direct']);
    const name = v.str('options.name', o.name, { max: 64, pattern: /^[A-Za-z0-9_.:-]+$/, what: 'letters, digits, _ . : -' })!;
    const type = v.oneOf('options.type', o.type, ['malloc', 'null', 'uring'] as const);
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
