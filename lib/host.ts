/**
 * NVMe-oF host (initiator) over NVMe/TCP or NVMe/RDMA: connect to a target, identify it,
 * read and write namespaces, read log pages and the discovery log, and send
 * raw commands for protocol tests. The protocol runs on a native thread per
 * connection (src-native/host/); this file validates arguments, splits large
 * transfers and converts errors.
 */
import { EventEmitter } from 'node:events';
import * as dns from 'node:dns';
import * as net from 'node:net';
import { randomUUID } from 'node:crypto';
import { NvmfError, awaitNative, callNative, fromNative, invalid } from './errors';
import {
  native,
  type NativeDiscoveryEntry,
  type NativeHost,
  type NativeHostConnectInfo,
  type NativeIdentifyController,
  type NativeIdentifyNamespace,
  type NativeRawCompletion,
  type NativeRawOptions,
} from './native';
import { bool, int, obj, oneOf, onlyKnown } from './validate';
import {
  DHCHAP_DHGROUPS,
  DHCHAP_DIGESTS,
  nameList,
  resolveDhchapKey,
  type DhchapDhGroup,
  type DhchapDigest,
  type DhchapKeyInput,
} from './auth';

/** The well-known NQN of discovery subsystems. */
export const DISCOVERY_NQN = 'nqn.2014-08.org.nvmexpress.discovery';

export interface HostConnectOptions {
  /** 'tcp' (default) or 'rdma' (needs rdma-core and an RDMA device: ERR_TRANSPORT_UNAVAILABLE otherwise). */
  transport?: 'tcp' | 'rdma';
  /** IPv4/IPv6 address or host name of the target. */
  address: string;
  /** Default 4420. */
  port?: number;
  /** The subsystem to connect to (DISCOVERY_NQN for a discovery controller). */
  subnqn: string;
  /** Default `nqn.2014-08.org.nvmexpress:uuid:<hostid>`. */
  hostnqn?: string;
  /** Host identifier, a UUID. Default: random. */
  hostid?: string;
  /** I/O queues wanted (the controller may grant fewer). Default 1; 0 for discovery. */
  ioQueues?: number;
  /** Commands outstanding per I/O queue, 2..4096 (clamped to CAP.MQES + 1). Default 128. */
  queueDepth?: number;
  /** Keep alive timeout in ms (0 = off). Default 5000; 0 for discovery. */
  kato?: number;
  /** Header digests (CRC32C). Default false. */
  hdgst?: boolean;
  /** Data digests (CRC32C). Default false. */
  ddgst?: boolean;
  /**
   * RDMA only, for exercising targets: split each keyed data transfer over
   * up to this many SGL descriptors (a Last Segment list in the capsule),
   * 1..16. Default 1, what every host sends.
   */
  sglDescriptors?: number;
  /**
   * Largest write whose data goes inside the command capsule on I/O queues,
   * 0..131072 bytes, further bounded by the controller's IOCCSZ (see
   * `info().inCapsuleBytes`); larger writes wait for the target to fetch the
   * data (R2T, RDMA READ). Default 8192. Over RDMA each queue entry gets a
   * send buffer of 64 B + this size.
   */
  maxInCapsuleBytes?: number;
  /** Bound on the whole connect sequence, in ms. Default 10000. */
  timeoutMs?: number;
  /** A command outstanding longer than this fails the connection (ERR_TIMEOUT); 0 = never. Default 30000. */
  commandTimeoutMs?: number;
  /**
   * DH-HMAC-CHAP key of this host (DHHC-1 text or { file }): used when the
   * controller requires authentication (on every queue).
   */
  dhchapKey?: DhchapKeyInput;
  /**
   * Controller key: the host also authenticates the controller
   * (bidirectional) and refuses one that cannot prove it knows this key.
   */
  dhchapCtrlKey?: DhchapKeyInput;
  /** Hash function(s) offered in AUTH_Negotiate. Default: all three. */
  digest?: DhchapDigest | DhchapDigest[];
  /** DH group(s) offered in AUTH_Negotiate. Default: all six. */
  dhgroup?: DhchapDhGroup | DhchapDhGroup[];
}

export interface ResolvedHostOptions
  extends Required<Omit<HostConnectOptions, 'transport' | 'dhchapKey' | 'dhchapCtrlKey' | 'digest' | 'dhgroup'>> {
  transport: 'tcp' | 'rdma';
  /** Offered in AUTH_Negotiate. */
  digests: DhchapDigest[];
  dhgroups: DhchapDhGroup[];
  /** Whether keys were given (the keys themselves are not kept here). */
  dhchap: 'none' | 'unidirectional' | 'bidirectional';
}

/** DH-HMAC-CHAP keys for reauthenticate(). */
export interface HostDhchapKeys {
  dhchapKey: DhchapKeyInput;
  dhchapCtrlKey?: DhchapKeyInput;
}

function resolveHostKeys(field: string, o: Record<string, unknown>): { dhchapKey?: string; dhchapCtrlKey?: string } {
  const dhchapKey = resolveDhchapKey(`${field}.dhchapKey`, o.dhchapKey);
  const dhchapCtrlKey = resolveDhchapKey(`${field}.dhchapCtrlKey`, o.dhchapCtrlKey);
  if (dhchapCtrlKey !== undefined && dhchapKey === undefined) {
    throw invalid(`${field}.dhchapCtrlKey`, 'needs a dhchapKey too');
  }
  return {
    ...(dhchapKey !== undefined ? { dhchapKey } : {}),
    ...(dhchapCtrlKey !== undefined ? { dhchapCtrlKey } : {}),
  };
}

export interface ControllerInfo {
  cntlid: number;
  ioQueues: number;
  queueDepth: number;
  /** Largest transfer per command (MDTS); 0 = no limit. */
  maxTransferBytes: number;
  /** Largest write sent inside the command capsule on I/O queues. */
  inCapsuleBytes: number;
  discovery: boolean;
  kato: number;
}

export type ControllerIdentify = NativeIdentifyController;
export type NamespaceIdentify = NativeIdentifyNamespace;

export interface DiscoveryEntry {
  trtype: 'rdma' | 'fc' | 'tcp' | 'loop' | number;
  adrfam: 'ipv4' | 'ipv6' | 'ib' | 'fc' | number;
  subtype: 'referral' | 'nvme' | 'current-discovery' | number;
  treq: number;
  portid: number;
  cntlid: number;
  asqsz: number;
  eflags: number;
  traddr: string;
  trsvcid: string;
  subnqn: string;
  /** TCP security type (0 none, 1 TLS 1.2, 2 TLS 1.3). */
  sectype: number;
}

export interface LogPageOptions {
  lid: number;
  length: number;
  offset?: number | bigint;
  /** Default 0xffffffff (controller-wide). */
  nsid?: number;
  lsp?: number;
}

export interface IoOptions {
  /** The I/O queue (1-based). Default: round robin. */
  queue?: number;
}

export type RawOptions = NativeRawOptions;
export type RawCompletion = NativeRawCompletion;

export interface DiscoverOptions {
  address: string;
  /** Default 8009, the discovery service port. */
  port?: number;
  hostnqn?: string;
  hostid?: string;
  transport?: 'tcp' | 'rdma';
  hdgst?: boolean;
  ddgst?: boolean;
  timeoutMs?: number;
}

/** SCT 2 / SC 85h: what Compare returns when the data differs. */
const COMPARE_FAILURE = 0x285;
const NSID_MAX = 0xfffffffe;
const MAX_NLB = 65536;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function nqnLike(field: string, v: unknown): string {
  // Deliberately loose (length and printable ASCII only): protocol tests
  // must be able to present odd NQNs to a target.
  if (typeof v !== 'string' || v.length === 0) throw invalid(field, 'must be a non-empty string');
  if (Buffer.byteLength(v) > 223) throw invalid(field, 'must be at most 223 bytes');
  if (!/^[\x20-\x7e]+$/.test(v)) throw invalid(field, 'must be printable ASCII');
  return v;
}

export function validateHostOptions(options: unknown): ResolvedHostOptions {
  const o = obj('options', options);
  onlyKnown('options', o, [
    'transport', 'address', 'port', 'subnqn', 'hostnqn', 'hostid', 'ioQueues', 'queueDepth',
    'kato', 'hdgst', 'ddgst', 'timeoutMs', 'commandTimeoutMs', 'dhchapKey', 'dhchapCtrlKey', 'digest', 'dhgroup',
    'sglDescriptors', 'maxInCapsuleBytes',
  ]);
  const transport = oneOf('options.transport', o.transport, ['tcp', 'rdma'] as const, 'tcp');
  if (transport === 'rdma') {
    // NVMe/RDMA has no digests (the RDMA link protects the data).
    if (o.hdgst === true) throw invalid('options.hdgst', 'is NVMe/TCP only');
    if (o.ddgst === true) throw invalid('options.ddgst', 'is NVMe/TCP only');
  } else if (o.sglDescriptors !== undefined) {
    throw invalid('options.sglDescriptors', 'is NVMe/RDMA only');
  }
  if (typeof o.address !== 'string' || o.address.length === 0 || o.address.length > 255) {
    throw invalid('options.address', `must be an IP address or host name (got ${JSON.stringify(o.address)})`);
  }
  const subnqn = nqnLike('options.subnqn', o.subnqn);
  let hostid: string;
  if (o.hostid === undefined) {
    hostid = randomUUID();
  } else {
    if (typeof o.hostid !== 'string' || !UUID_RE.test(o.hostid)) {
      throw invalid('options.hostid', `must be a UUID like 123e4567-e89b-12d3-a456-426614174000 (got ${JSON.stringify(o.hostid)})`);
    }
    hostid = o.hostid.toLowerCase();
  }
  const hostnqn = o.hostnqn === undefined ? `nqn.2014-08.org.nvmexpress:uuid:${hostid}` : nqnLike('options.hostnqn', o.hostnqn);
  const discovery = subnqn === DISCOVERY_NQN;
  return {
    transport,
    address: o.address,
    port: int('options.port', o.port, 1, 65535) ?? 4420,
    subnqn,
    hostnqn,
    hostid,
    ioQueues: int('options.ioQueues', o.ioQueues, 0, 128) ?? (discovery ? 0 : 1),
    queueDepth: int('options.queueDepth', o.queueDepth, 2, 4096) ?? 128,
    kato: int('options.kato', o.kato, 0, 3_600_000) ?? (discovery ? 0 : 5000),
    hdgst: bool('options.hdgst', o.hdgst) ?? false,
    ddgst: bool('options.ddgst', o.ddgst) ?? false,
    sglDescriptors: int('options.sglDescriptors', o.sglDescriptors, 1, 16) ?? 1,
    maxInCapsuleBytes: int('options.maxInCapsuleBytes', o.maxInCapsuleBytes, 0, 131_072) ?? 8192,
    timeoutMs: int('options.timeoutMs', o.timeoutMs, 1, 3_600_000) ?? 10_000,
    commandTimeoutMs: int('options.commandTimeoutMs', o.commandTimeoutMs, 0, 3_600_000) ?? 30_000,
    digests: nameList('options.digest', o.digest, DHCHAP_DIGESTS) ?? [...DHCHAP_DIGESTS],
    dhgroups: nameList('options.dhgroup', o.dhgroup, DHCHAP_DHGROUPS) ?? [...DHCHAP_DHGROUPS],
    dhchap: o.dhchapCtrlKey !== undefined ? 'bidirectional' : o.dhchapKey !== undefined ? 'unidirectional' : 'none',
  };
}

async function resolveAddress(address: string): Promise<string> {
  if (net.isIP(address)) return address;
  try {
    return (await dns.promises.lookup(address)).address;
  } catch (e) {
    throw new NvmfError('ERR_CONNECTION', `cannot resolve ${address}: ${(e as Error).message}`, { cause: e });
  }
}

function toBig(field: string, v: unknown): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v >= 1n << 64n) throw invalid(field, 'must be from 0 to 2^64-1');
    return v;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw invalid(field, `must be a non-negative integer (got ${JSON.stringify(v)})`);
  }
  return BigInt(v);
}

/** A Number when exact, else the BigInt (the native side takes both). */
function lbaArg(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function bytesArg(field: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw invalid(field, 'must be a Buffer or Uint8Array');
  return v;
}

function discoveryEntry(e: NativeDiscoveryEntry): DiscoveryEntry {
  const trtypes: Record<number, DiscoveryEntry['trtype']> = { 1: 'rdma', 2: 'fc', 3: 'tcp', 254: 'loop' };
  const adrfams: Record<number, DiscoveryEntry['adrfam']> = { 1: 'ipv4', 2: 'ipv6', 3: 'ib', 4: 'fc' };
  const subtypes: Record<number, DiscoveryEntry['subtype']> = { 1: 'referral', 2: 'nvme', 3: 'current-discovery' };
  return {
    trtype: trtypes[e.trtype] ?? e.trtype,
    adrfam: adrfams[e.adrfam] ?? e.adrfam,
    subtype: subtypes[e.subtype] ?? e.subtype,
    treq: e.treq,
    portid: e.portid,
    cntlid: e.cntlid,
    asqsz: e.asqsz,
    eflags: e.eflags,
    traddr: e.traddr,
    trsvcid: e.trsvcid,
    subnqn: e.subnqn,
    sectype: e.sectype,
  };
}

/**
 * A connected NVMe-oF controller. Create with `connect()`; always `close()`
 * it (or use `await using`). Emits 'disconnected' (NvmfError) when the
 * connection fails after connect (target gone, keep alive or command
 * timeout); every later call then rejects with ERR_CONNECTION.
 */
export class HostController extends EventEmitter {
  #native: NativeHost;
  #info: ControllerInfo | undefined;
  #closing: Promise<void> | undefined;
  #blockSizes = new Map<number, number>();
  #rr = 0;
  readonly options: Readonly<ResolvedHostOptions>;

  /** @internal Use connect(). */
  constructor(options: ResolvedHostOptions) {
    super();
    this.options = Object.freeze({ ...options });
    // The native side holds this callback strongly; it must not pin us.
    const weak = new WeakRef(this);
    const emit = (name: string, json: string): void => {
      const self = weak.deref();
      if (!self) return;
      let payload: { code?: string; message?: string } = {};
      try {
        payload = JSON.parse(json) as typeof payload;
      } catch {
        payload = { message: json };
      }
      if (name === 'disconnected') {
        const err = fromNative(Object.assign(new Error(payload.message ?? 'disconnected'), { code: payload.code }));
        self.emit('disconnected', err);
      } else {
        self.emit(name, payload);
      }
    };
    const { NativeHost } = native();
    this.#native = callNative(() => new NativeHost(emit));
  }

  /** @internal */
  async _connect(address: string, keys: { dhchapKey?: string; dhchapCtrlKey?: string } = {}): Promise<void> {
    const o = this.options;
    const hostid = Buffer.from(o.hostid.replace(/-/g, ''), 'hex');
    this.#info = await awaitNative(
      this.#native.connect({
        ...keys,
        auth: { digests: o.digests, dhgroups: o.dhgroups },
        transport: o.transport,
        address,
        port: o.port,
        subnqn: o.subnqn,
        hostnqn: o.hostnqn,
        hostid,
        ioQueues: o.ioQueues,
        queueDepth: o.queueDepth,
        kato: o.kato,
        hdgst: o.hdgst,
        ddgst: o.ddgst,
        ...(o.transport === 'rdma' ? { sglDescriptors: o.sglDescriptors } : {}),
        maxInCapsuleBytes: o.maxInCapsuleBytes,
        timeoutMs: o.timeoutMs,
        commandTimeoutMs: o.commandTimeoutMs,
      }),
    );
  }

  /** What the connect negotiated. */
  get info(): ControllerInfo {
    if (!this.#info) throw new NvmfError('ERR_CONNECTION', 'host is not connected');
    return { ...this.#info };
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  #live(what: string): NativeHost {
    if (this.#closing) throw new NvmfError('ERR_CONNECTION', `host is closed; cannot ${what}`);
    return this.#native;
  }

  #queue(opts: IoOptions | undefined): number {
    const n = this.#info?.ioQueues ?? 0;
    if (n === 0) throw invalid('queue', 'unavailable: this controller has no I/O queues');
    if (opts?.queue !== undefined) return int('options.queue', opts.queue, 1, n)!;
    this.#rr = (this.#rr % n) + 1;
    return this.#rr;
  }

  /** Identify Controller, decoded (plus `raw`, the 4096 bytes). */
  async identify(): Promise<ControllerIdentify> {
    return awaitNative(this.#live('identify').identify());
  }

  /** Identify Namespace (and its identification descriptors, for the UUID). */
  async identifyNamespace(nsid: number): Promise<NamespaceIdentify> {
    int('nsid', nsid, 1, NSID_MAX, false);
    const ns = await awaitNative(this.#live('identify a namespace').identifyNamespace(nsid));
    if (ns.blockSize > 0) this.#blockSizes.set(nsid, ns.blockSize);
    return ns;
  }

  /** The active namespace IDs, ascending. */
  async activeNamespaceIds(): Promise<number[]> {
    const n = this.#live('list namespaces');
    const all: number[] = [];
    let start = 0;
    for (;;) {
      const page = await awaitNative(n.activeNamespaces(start));
      all.push(...page);
      // A full page (1024 IDs) may have more after its last ID.
      if (page.length < 1024 || page[page.length - 1]! >= NSID_MAX - 1) return all;
      start = page[page.length - 1]!;
    }
  }

  /** Every active namespace with its Identify Namespace data. */
  async namespaces(): Promise<NamespaceIdentify[]> {
    const ids = await this.activeNamespaceIds();
    const out: NamespaceIdentify[] = [];
    for (const id of ids) out.push(await this.identifyNamespace(id));
    return out;
  }

  async #blockSize(nsid: number): Promise<number> {
    const known = this.#blockSizes.get(nsid);
    if (known) return known;
    const ns = await this.identifyNamespace(nsid);
    // Identify Namespace of an inactive NSID returns zeroes.
    if (Number(ns.nsze) === 0) throw new NvmfError('ERR_NOT_FOUND', `namespace ${nsid} is not active on this controller`);
    if (ns.blockSize === 0) throw new NvmfError('ERR_IO', `namespace ${nsid} reports no usable block size`);
    return ns.blockSize;
  }

  /** Blocks per command: NLB is 16 bits, and MDTS may cap it lower. */
  #chunkBlocks(bs: number): number {
    const mx = this.#info?.maxTransferBytes ?? 0;
    const byMdts = mx > 0 ? Math.floor(mx / bs) : MAX_NLB;
    return Math.max(1, Math.min(MAX_NLB, byMdts));
  }

  /**
   * Runs `fn` over [lba, lba+blocks) in commands no larger than the
   * controller allows, concurrently, over the I/O queues.
   */
  async #split(nsid: number, lbaIn: number | bigint, blocks: number, opts: IoOptions | undefined,
    fn: (slba: number | bigint, nlb: number, byteOffset: number, queue: number) => Promise<unknown>): Promise<number> {
    const lba = toBig('lba', lbaIn);
    const bs = await this.#blockSize(nsid);
    const per = this.#chunkBlocks(bs);
    const jobs: Promise<unknown>[] = [];
    for (let done = 0; done < blocks; done += per) {
      const nlb = Math.min(per, blocks - done);
      jobs.push(fn(lbaArg(lba + BigInt(done)), nlb, done * bs, this.#queue(opts)));
    }
    await Promise.all(jobs);
    return bs;
  }

  /**
   * Reads `blocks` blocks at `lba`. Fills `buffer` when given (at least
   * blocks * blockSize bytes), else a new Buffer. Resolves with the bytes read.
   */
  async read(nsid: number, lba: number | bigint, blocks: number, buffer?: Buffer, opts?: IoOptions): Promise<Buffer> {
    int('nsid', nsid, 1, NSID_MAX, false);
    int('blocks', blocks, 1, 2 ** 32 - 1, false);
    const n = this.#live('read');
    const bs = await this.#blockSize(nsid);
    const len = blocks * bs;
    let out: Buffer;
    if (buffer === undefined) {
      out = Buffer.alloc(len);
    } else {
      if (!Buffer.isBuffer(buffer)) throw invalid('buffer', 'must be a Buffer');
      if (buffer.length < len) throw invalid('buffer', `must hold ${len} bytes (${blocks} blocks of ${bs})`);
      out = buffer.subarray(0, len);
    }
    await this.#split(nsid, lba, blocks, opts, (slba, nlb, off, q) =>
      awaitNative(n.read(nsid, slba, nlb, out.subarray(off, off + nlb * bs), q)));
    return out;
  }

  /** Writes `data` (a whole number of blocks) at `lba`. */
  async write(nsid: number, lba: number | bigint, data: Uint8Array, opts?: IoOptions): Promise<void> {
    int('nsid', nsid, 1, NSID_MAX, false);
    bytesArg('data', data);
    const n = this.#live('write');
    const bs = await this.#blockSize(nsid);
    if (data.byteLength === 0 || data.byteLength % bs !== 0) {
      throw invalid('data', `must be a non-empty multiple of the ${bs}-byte block size (got ${data.byteLength} bytes)`);
    }
    await this.#split(nsid, lba, data.byteLength / bs, opts, (slba, nlb, off, q) =>
      awaitNative(n.write(nsid, slba, nlb, data.subarray(off, off + nlb * bs), q)));
  }

  /** Compare: true when the blocks at `lba` equal `data`, false on a Compare Failure. */
  async compare(nsid: number, lba: number | bigint, data: Uint8Array, opts?: IoOptions): Promise<boolean> {
    int('nsid', nsid, 1, NSID_MAX, false);
    bytesArg('data', data);
    const n = this.#live('compare');
    const bs = await this.#blockSize(nsid);
    if (data.byteLength === 0 || data.byteLength % bs !== 0) {
      throw invalid('data', `must be a non-empty multiple of the ${bs}-byte block size (got ${data.byteLength} bytes)`);
    }
    try {
      await this.#split(nsid, lba, data.byteLength / bs, opts, (slba, nlb, off, q) =>
        awaitNative(n.compare(nsid, slba, nlb, data.subarray(off, off + nlb * bs), q)));
      return true;
    } catch (e) {
      if (e instanceof NvmfError && e.nvmeStatus === COMPARE_FAILURE) return false;
      throw e;
    }
  }

  /** Flush a namespace's volatile cache (0xffffffff: every namespace, if the controller allows it). */
  async flush(nsid = 0xffffffff, opts?: IoOptions): Promise<void> {
    int('nsid', nsid, 1, 0xffffffff, false);
    const n = this.#live('flush');
    await awaitNative(n.flush(nsid, this.#queue(opts)));
  }

  async writeZeroes(nsid: number, lba: number | bigint, blocks: number, opts?: IoOptions): Promise<void> {
    int('nsid', nsid, 1, NSID_MAX, false);
    int('blocks', blocks, 1, 2 ** 32 - 1, false);
    const start = toBig('lba', lba);
    const n = this.#live('write zeroes');
    const jobs: Promise<void>[] = [];
    // Write Zeroes moves no data, so only the 16-bit NLB limits a command.
    for (let done = 0; done < blocks; done += MAX_NLB) {
      const nlb = Math.min(MAX_NLB, blocks - done);
      jobs.push(awaitNative(n.writeZeroes(nsid, lbaArg(start + BigInt(done)), nlb, this.#queue(opts))));
    }
    await Promise.all(jobs);
  }

  /** Dataset Management with Deallocate (TRIM), up to 256 ranges per call. */
  async deallocate(nsid: number, ranges: Array<{ lba: number | bigint; blocks: number }>, opts?: IoOptions): Promise<void> {
    int('nsid', nsid, 1, NSID_MAX, false);
    if (!Array.isArray(ranges) || ranges.length === 0 || ranges.length > 256) {
      throw invalid('ranges', 'must be an array of 1 to 256 { lba, blocks }');
    }
    const native = ranges.map((r, i) => {
      const ro = obj(`ranges[${i}]`, r);
      return {
        slba: lbaArg(toBig(`ranges[${i}].lba`, ro.lba)),
        nlb: int(`ranges[${i}].blocks`, ro.blocks, 1, 2 ** 32 - 1, false)!,
      };
    });
    const n = this.#live('deallocate');
    await awaitNative(n.deallocate(nsid, native, this.#queue(opts)));
  }

  /** Get Log Page; `length` bytes (split by MDTS as needed). */
  async getLogPage(o: LogPageOptions): Promise<Buffer> {
    const oo = obj('options', o);
    onlyKnown('options', oo, ['lid', 'length', 'offset', 'nsid', 'lsp']);
    const lid = int('options.lid', oo.lid, 0, 255, false)!;
    const length = int('options.length', oo.length, 1, 64 << 20, false)!;
    const offset = oo.offset === undefined ? 0n : toBig('options.offset', oo.offset);
    if (offset % 4n !== 0n) throw invalid('options.offset', 'must be a multiple of 4');
    const nsid = int('options.nsid', oo.nsid, 0, 0xffffffff) ?? 0xffffffff;
    const lsp = int('options.lsp', oo.lsp, 0, 127) ?? 0;
    const n = this.#live('read a log page');
    // The command counts dwords; read whole ones and trim.
    const buf = await awaitNative(n.getLogPage(lid, (length + 3) & ~3, lbaArg(offset), nsid, lsp));
    return buf.subarray(0, length);
  }

  /** The discovery log (on a discovery controller: connect with subnqn DISCOVERY_NQN). */
  async discover(): Promise<DiscoveryEntry[]> {
    const r = await awaitNative(this.#live('read the discovery log').discover());
    return r.entries.map(discoveryEntry);
  }

  /**
   * Sends a raw admin command (64-byte SQE; the CID is always replaced, the
   * SGL too unless opts.keepDptr). Resolves with the completion whatever its
   * NVMe status; rejects only when no completion came (connection error).
   */
  async adminRaw(sqe: Uint8Array, data?: Uint8Array, opts?: RawOptions): Promise<RawCompletion> {
    bytesArg('sqe', sqe);
    if (data !== undefined) bytesArg('data', data);
    return awaitNative(this.#live('send a raw command').rawAdmin(sqe, data ?? null, opts));
  }

  /** Like adminRaw() on I/O queue `qid` (1-based). */
  async ioRaw(qid: number, sqe: Uint8Array, data?: Uint8Array, opts?: RawOptions): Promise<RawCompletion> {
    int('qid', qid, 1, 65534, false);
    bytesArg('sqe', sqe);
    if (data !== undefined) bytesArg('data', data);
    return awaitNative(this.#live('send a raw command').rawIo(qid, sqe, data ?? null, opts));
  }

  /**
   * Host-initiated re-authentication (DH-HMAC-CHAP) of the admin queue and
   * then every I/O queue, commands flowing meanwhile; with `keys`, the host
   * switches to them first (key rotation). Rejects with ERR_AUTH_FAILED
   * (and `reason`) when the controller refuses, after which the controller
   * is disconnected.
   */
  async reauthenticate(keys?: HostDhchapKeys): Promise<void> {
    const n = this.#live('re-authenticate');
    if (keys === undefined) return awaitNative(n.reauthenticate());
    const k = resolveHostKeys('keys', obj('keys', keys));
    if (k.dhchapKey === undefined) throw invalid('keys.dhchapKey', 'is required');
    return awaitNative(n.reauthenticate({ dhchapKey: k.dhchapKey, ...(k.dhchapCtrlKey !== undefined ? { dhchapCtrlKey: k.dhchapCtrlKey } : {}) }));
  }

  /**
   * Disconnects: a normal shutdown notification (CC.SHN) with a bounded
   * wait, then the sockets close and the host thread is joined. Commands
   * still outstanding reject with ERR_CONNECTION. Idempotent.
   */
  close(): Promise<void> {
    if (!this.#closing) this.#closing = awaitNative(this.#native.close());
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Connects to an NVMe/TCP target and brings the controller up. */
export async function connect(options: HostConnectOptions): Promise<HostController> {
  const o = validateHostOptions(options);
  const keys = resolveHostKeys('options', options as unknown as Record<string, unknown>);
  const address = await resolveAddress(o.address);
  const c = new HostController(o);
  try {
    await c._connect(address, keys);
  } catch (e) {
    await c.close().catch(() => undefined);
    throw e;
  }
  return c;
}

/** Reads the discovery log of a discovery controller and disconnects. */
export async function discover(options: DiscoverOptions): Promise<DiscoveryEntry[]> {
  const o = obj('options', options);
  onlyKnown('options', o, ['address', 'port', 'hostnqn', 'hostid', 'transport', 'hdgst', 'ddgst', 'timeoutMs']);
  const c = await connect({
    ...(o as unknown as DiscoverOptions),
    port: int('options.port', o.port, 1, 65535) ?? 8009,
    subnqn: DISCOVERY_NQN,
    ioQueues: 0,
    kato: 0,
  });
  try {
    return await c.discover();
  } finally {
    await c.close();
  }
}
