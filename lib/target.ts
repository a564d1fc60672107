import { EventEmitter } from 'node:events';
import { NvmfError, awaitNative, callNative, invalid } from './errors';
import { native, type NativeReactorInfo, type NativeTarget } from './native';

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
