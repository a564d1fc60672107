import { randomUUID, createHash } from 'node:crypto';
import { NvmfError, awaitNative, invalid } from './errors';
import type { NativeTarget } from './native';
import * as v from './validate';
import { resolveDhchapKey, type DhchapKeyInput } from './auth';

export interface NamespaceOptions {
  /** Name of a bdev created with target.createBdev(). */
  bdev: string;
  /** 1..maxNamespaces; default: the lowest free id. */
  nsid?: number;
  /** Namespace UUID (default: a random one, so hosts see a stable unique id for this namespace). */
  uuid?: string;
  /** Namespace GUID, 32 hex digits (default: derived from the UUID). */
  nguid?: string;
}

export interface HostOptions {
  nqn: string;
  /** DH-HMAC-CHAP key the host must prove it knows (DHHC-1 text or { file }). */
  dhchapKey?: DhchapKeyInput;
  /** Controller key: lets the host authenticate the controller too (bidirectional). */
  dhchapCtrlKey?: DhchapKeyInput;
}

export interface HostKeys {
  dhchapKey?: DhchapKeyInput;
  dhchapCtrlKey?: DhchapKeyInput;
}

function hostKeys(field: string, o: Record<string, unknown>): { dhchapKey?: string; dhchapCtrlKey?: string } {
  const dhchapKey = resolveDhchapKey(`${field}.dhchapKey`, o.dhchapKey);
  const dhchapCtrlKey = resolveDhchapKey(`${field}.dhchapCtrlKey`, o.dhchapCtrlKey);
  if (dhchapCtrlKey !== undefined && dhchapKey === undefined) {
    throw invalid(`${field}.dhchapCtrlKey`, 'needs a dhchapKey too (a host authenticates itself before the controller)');
  }
  return {
    ...(dhchapKey !== undefined ? { dhchapKey } : {}),
    ...(dhchapCtrlKey !== undefined ? { dhchapCtrlKey } : {}),
  };
}

export interface NamespaceInfo {
  nsid: number;
  bdev: string;
  uuid?: string;
  nguid?: string;
}

function uuidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** An NVM subsystem of a target: namespaces, allowed hosts, listeners. */
export class Subsystem {
  readonly nqn: string;
  readonly #handle: (what: string) => NativeTarget;

  /** @internal */
  constructor(nqn: string, handle: (what: string) => NativeTarget) {
    this.nqn = nqn;
    this.#handle = handle;
  }

  #native(what: string): NativeTarget {
    return this.#handle(`${what} (subsystem ${this.nqn})`);
  }

  /** Adds a namespace backed by a bdev; resolves to its nsid. Connected hosts get an AEN. */
  async addNamespace(options: NamespaceOptions): Promise<number> {
    const o = v.obj('options', options);
    v.onlyKnown('options', o, ['bdev', 'nsid', 'uuid', 'nguid']);
    const bdev = v.str('options.bdev', o.bdev, { max: 64 })!;
    const nsid = v.int('options.nsid', o.nsid, 1, 0xfffffffe);
    const uuid = v.uuidBytes('options.uuid', o.uuid ?? randomUUID())!;
    const nguid = v.hexBytes('options.nguid', o.nguid, 16) ?? createHash('sha256').update(uuid).digest().subarray(0, 16);
    return awaitNative(this.#native('add a namespace').addNamespace(this.nqn, { bdev, nsid, uuid, nguid }));
  }

  async removeNamespace(nsid: number): Promise<void> {
    v.int('nsid', nsid, 1, 0xfffffffe, false);
    return awaitNative(this.#native(`remove namespace ${nsid}`).removeNamespace(this.nqn, nsid));
  }

  /**
   * Allows a host. With `dhchapKey` the host must authenticate (DH-HMAC-CHAP)
   * on every queue; with `dhchapCtrlKey` too, it may authenticate the
   * controller as well.
   */
  async addHost(options: HostOptions): Promise<void> {
    const o = v.obj('options', options);
    v.onlyKnown('options', o, ['nqn', 'dhchapKey', 'dhchapCtrlKey']);
    const nqn = v.nqn('options.nqn', o.nqn)!;
    const keys = hostKeys('options', o);
    return awaitNative(this.#native(`add host ${nqn}`).hostOp(this.nqn, 'add', nqn, keys));
  }

  /**
   * Replaces a host's keys (rotation; no keys: no authentication). New
   * authentications use the new keys; connected queues keep running, and
   * an authentication in progress finishes with the keys it started with.
   */
  async setHostKeys(nqn: string, keys: HostKeys): Promise<void> {
    v.nqn('nqn', nqn);
    const o = v.obj('keys', keys);
    v.onlyKnown('keys', o, ['dhchapKey', 'dhchapCtrlKey']);
    const k = hostKeys('keys', o);
    return awaitNative(this.#native(`set the keys of host ${nqn}`).hostOp(this.nqn, 'setKeys', nqn, k));
  }

  async removeHost(nqn: string): Promise<void> {
    v.nqn('nqn', nqn);
    return awaitNative(this.#native(`remove host ${nqn}`).hostOp(this.nqn, 'remove', nqn));
  }

  async setAllowAnyHost(allow: boolean): Promise<void> {
    if (typeof allow !== 'boolean') throw invalid('allow', 'must be a boolean');
    return awaitNative(this.#native('change allowAnyHost').hostOp(this.nqn, 'allowAny', allow));
  }

  /** Restricts the subsystem to the given target listeners (none added = all listeners). */
  async addListener(address: v.ListenAddress): Promise<void> {
    const a = v.listenAddress('address', address);
    return awaitNative(this.#native('add a listener').subsystemListener(this.nqn, a, false));
  }

  async removeListener(address: v.ListenAddress): Promise<void> {
    const a = v.listenAddress('address', address);
    return awaitNative(this.#native('remove a listener').subsystemListener(this.nqn, a, true));
  }

  /** The subsystem's current configuration. */
  info(): {
    nqn: string;
    state: string;
    serial: string;
    model: string;
    allowAnyHost: boolean;
    hosts: string[];
    /** Which hosts have DH-HMAC-CHAP keys (never the keys). */
    hostAuth: Array<{ nqn: string; dhchapKey: boolean; dhchapCtrlKey: boolean }>;
    namespaces: NamespaceInfo[];
    controllers: number;
  } {
    const cfg = this.#native('read its configuration').config();
    const s = cfg.subsystems.find((x) => x.nqn === this.nqn);
    if (!s) throw new NvmfError('ERR_NOT_FOUND', `subsystem ${this.nqn} does not exist`);
    return {
      nqn: s.nqn,
      state: s.state,
      serial: s.serial,
      model: s.model,
      allowAnyHost: s.allowAnyHost,
      hosts: s.hosts,
      hostAuth: s.hostAuth,
      namespaces: s.namespaces.map((n) => ({
        nsid: n.nsid,
        bdev: n.bdev,
        ...(n.uuid ? { uuid: uuidString(n.uuid) } : {}),
        ...(n.nguid ? { nguid: n.nguid.toString('hex') } : {}),
      })),
      controllers: s.controllers,
    };
  }
}
