/**
 * Loads the native addon: `NVMF_TARGET_NATIVE` (an explicit .node path, used
 * by the sanitizer suite), else node-gyp-build (build/Release when present,
 * else the prebuild for this platform).
 */
import * as path from 'node:path';
import { NvmfError } from './errors';

export interface NativeReactorInfo {
  index: number;
  tid: number;
  pollMode: string;
  iterations: number;
  sleeps: number;
  messages: number;
  activeQpairs: number;
}

export interface NativeBdevInfo {
  name: string;
  type: string;
  path?: string;
  /** fault bdevs: the bdev they wrap. */
  base?: string;
  blockSize: number;
  numBlocks: number;
  sizeBytes: number;
  direct: boolean;
}

export interface NativeListen {
  transport: string;
  address: string;
  port: number;
  ipv6?: boolean;
}

export interface NativeConfig {
  bdevs: NativeBdevInfo[];
  listeners: NativeListen[];
  subsystems: Array<{
    nqn: string;
    type: 'nvm' | 'discovery';
    state: string;
    serial: string;
    model: string;
    maxNamespaces: number;
    allowAnyHost: boolean;
    hosts: string[];
    /** Whether each host has keys (never the keys). */
    hostAuth: Array<{ nqn: string; dhchapKey: boolean; dhchapCtrlKey: boolean }>;
    listeners: NativeListen[];
    namespaces: Array<{ nsid: number; bdev: string; uuid?: Buffer; nguid?: Buffer }>;
    controllers: number;
  }>;
}

export interface NativeQpairStats {
  id: number;
  qid: number;
  state: string;
  transport: string;
  subnqn: string;
  hostnqn: string;
  cntlid: number;
  peer: string;
  commands: number;
  bytesRead: number;
  bytesWritten: number;
  errors: number;
  outstanding: number;
  maxOutstanding: number;
}

export interface NativeGroupStats {
  index: number;
  tid: number;
  iterations: number;
  sleeps: number;
  messages: number;
  activeQpairs: number;
  qpairs: NativeQpairStats[];
}

export interface NativeFaultStats {
  ios: number;
  errors: number;
  delayed: number;
  stalled: number;
  held: number;
  cancelled: number;
}

export interface NativeTargetResources {
  pollGroups: number;
  qpairs: number;
  controllers: number;
  outstandingRequests: number;
  requestBuffers: number;
  requestBufferBytes: number;
  registeredBuffers: number;
  bdevs: number;
}

export interface NativeProcessResources extends NativeTargetResources {
  targets: number;
  /** Requests freed without a completion (must stay 0). */
  leakedRequests: number;
}

/** DH-HMAC-CHAP keys of a host entry (DHHC-1 text; parsed natively). */
export interface NativeHostKeys {
  dhchapKey?: string;
  dhchapCtrlKey?: string;
}

export interface NativeAuthPolicy {
  digests?: string[];
  dhgroups?: string[];
  timeoutMs?: number;
}

export interface NativeTarget {
  destroy(): Promise<void>;
  state(): string;
  ref(): void;
  unref(): void;
  reactorInfo(): NativeReactorInfo[];
  createBdev(o: { name: string; type: string; blockSize?: number; numBlocks?: number; path?: string; direct?: boolean; base?: string }): Promise<NativeBdevInfo>;
  bdevFaults(name: string, faults?: object): Promise<NativeFaultStats>;
  resources(): NativeTargetResources;
  deleteBdev(name: string): Promise<void>;
  createSubsystem(o: { nqn: string; serial?: string; model?: string; allowAnyHost?: boolean; maxNamespaces?: number }): Promise<void>;
  deleteSubsystem(nqn: string): Promise<void>;
  addNamespace(nqn: string, o: { bdev: string; nsid?: number; uuid?: Buffer; nguid?: Buffer; eui64?: Buffer }): Promise<number>;
  removeNamespace(nqn: string, nsid: number): Promise<void>;
  hostOp(nqn: string, op: 'add' | 'remove' | 'allowAny' | 'setKeys', arg: string | boolean, keys?: NativeHostKeys): Promise<void>;
  setAuthPolicy(o: NativeAuthPolicy): void;
  listen(a: NativeListen, stop: boolean): Promise<void>;
  subsystemListener(nqn: string, a: NativeListen, remove: boolean): Promise<void>;
  config(): NativeConfig;
  stats(): Promise<NativeGroupStats[]>;
}

// ---- host (initiator) library: src-native/addon/host_wrap.cc ----

export interface NativeHostConnectOptions {
  transport?: 'tcp' | 'rdma';
  /** Numeric IPv4/IPv6 address (lib/host.ts resolves names first). */
  address: string;
  port?: number;
  subnqn: string;
  hostnqn: string;
  hostid?: Buffer;
  ioQueues?: number;
  queueDepth?: number;
  /** Keep alive timeout in ms; 0 disables keep alive. */
  kato?: number;
  hdgst?: boolean;
  ddgst?: boolean;
  /** RDMA: keyed SGL descriptors per transfer (1..16). */
  sglDescriptors?: number;
  maxInCapsuleBytes?: number;
  timeoutMs?: number;
  commandTimeoutMs?: number;
  dhchapKey?: string;
  dhchapCtrlKey?: string;
  /** What the host offers in AUTH_Negotiate. */
  auth?: { digests?: string[]; dhgroups?: string[] };
}

export interface NativeHostConnectInfo {
  cntlid: number;
  ioQueues: number;
  queueDepth: number;
  /** 0 = no limit (MDTS 0). */
  maxTransferBytes: number;
  inCapsuleBytes: number;
  discovery: boolean;
  kato: number;
}

export interface NativeIdentifyController {
  vid: number;
  ssvid: number;
  sn: string;
  mn: string;
  fr: string;
  cmic: number;
  mdts: number;
  maxTransferBytes: number;
  cntlid: number;
  ver: number;
  version: string;
  oaes: number;
  ctratt: number;
  cntrltype: number;
  oacs: number;
  acl: number;
  aerl: number;
  lpa: number;
  elpe: number;
  kas: number;
  sqes: number;
  cqes: number;
  maxcmd: number;
  nn: number;
  oncs: number;
  fuses: number;
  vwc: number;
  sgls: number;
  subnqn: string;
  ioccsz: number;
  iorcsz: number;
  icdoff: number;
  fcatt: number;
  msdbd: number;
  ofcs: number;
  raw: Buffer;
}

export interface NativeIdentifyNamespace {
  nsid: number;
  nsze: number | bigint;
  ncap: number | bigint;
  nuse: number | bigint;
  nsfeat: number;
  nlbaf: number;
  flbas: number;
  lbaFormat: number;
  /** 0 when the format in use is out of range. */
  blockSize: number;
  metadataSize: number;
  nmic: number;
  dlfeat: number;
  nguid: string;
  eui64: string;
  uuid?: string;
  raw: Buffer;
}

export interface NativeDiscoveryEntry {
  trtype: number;
  adrfam: number;
  subtype: number;
  treq: number;
  portid: number;
  cntlid: number;
  asqsz: number;
  eflags: number;
  trsvcid: string;
  subnqn: string;
  traddr: string;
  sectype: number;
}

export interface NativeRawCompletion {
  cqe: { dw0: number; dw1: number; sqhd: number; sqid: number; cid: number; status: number };
  /** (SCT << 8) | SC */
  status: number;
  bytes: number;
}

export interface NativeRawOptions {
  dir?: 'none' | 'h2c' | 'c2h';
  keepDptr?: boolean;
}

export interface NativeHost {
  connect(o: NativeHostConnectOptions): Promise<NativeHostConnectInfo>;
  info(): { state: string; ioQueues?: number; maxTransferBytes?: number; tid?: number };
  identify(): Promise<NativeIdentifyController>;
  identifyNamespace(nsid: number): Promise<NativeIdentifyNamespace>;
  activeNamespaces(startNsid?: number): Promise<number[]>;
  read(nsid: number, slba: number | bigint, nlb: number, buffer: Uint8Array, queue?: number): Promise<number>;
  write(nsid: number, slba: number | bigint, nlb: number, buffer: Uint8Array, queue?: number): Promise<number>;
  compare(nsid: number, slba: number | bigint, nlb: number, buffer: Uint8Array, queue?: number): Promise<number>;
  flush(nsid: number, queue?: number): Promise<void>;
  writeZeroes(nsid: number, slba: number | bigint, nlb: number, queue?: number): Promise<void>;
  deallocate(nsid: number, ranges: Array<{ slba: number | bigint; nlb: number }>, queue?: number): Promise<void>;
  getLogPage(lid: number, length: number, offset?: number | bigint, nsid?: number, lsp?: number): Promise<Buffer>;
  discover(): Promise<{ genctr: number | bigint; entries: NativeDiscoveryEntry[] }>;
  rawAdmin(sqe: Uint8Array, data?: Uint8Array | null, opts?: NativeRawOptions): Promise<NativeRawCompletion>;
  rawIo(qid: number, sqe: Uint8Array, data?: Uint8Array | null, opts?: NativeRawOptions): Promise<NativeRawCompletion>;
  close(): Promise<void>;
  reauthenticate(keys?: { dhchapKey: string; dhchapCtrlKey?: string }): Promise<void>;
}

export interface NativeAddon {
  napiVersion: number;
  resources(): NativeProcessResources;
  NativeTarget: new (options: object, emit: (name: string, json: string) => void) => NativeTarget;
  NativeHost: new (emit: (name: string, json: string) => void) => NativeHost;
  generateDhchapKey(hmac: number, length: number, hostNqn?: string): string;
  parseDhchapKey(text: string): { hmac: number; length: number };
  /** Test hooks for known-answer tests (they expose secrets: tests only). */
  authTest: NativeAuthTest;
}

export interface NativeAuthResponseInput {
  hash: number;
  key: Buffer;
  challenge: Buffer;
  sessionKey?: Buffer;
  seqnum: number;
  tid: number;
  scc?: number;
  hostnqn: string;
  subnqn: string;
}

export interface NativeAuthTest {
  transformKey(hash: number, secret: Buffer, nqn: string): Buffer;
  augmentChallenge(hash: number, sessionKey: Buffer, challenge: Buffer): Buffer;
  hostResponse(i: NativeAuthResponseInput): Buffer;
  controllerResponse(i: NativeAuthResponseInput): Buffer;
  dhExchange(group: number, peerPublic: Buffer): { publicValue: Buffer; sharedSecret: Buffer };
  keySecret(text: string): { hmac: number; secret: Buffer };
}

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  const explicit = process.env.NVMF_TARGET_NATIVE;
  try {
    if (explicit) {
      cached = require(path.resolve(explicit)) as NativeAddon;
    } else {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const load = require('node-gyp-build') as (dir: string) => NativeAddon;
      cached = load(path.resolve(__dirname, '..'));
    }
  } catch (e) {
    throw new NvmfError('ERR_NATIVE_UNAVAILABLE', `cannot load the nvmf-target native addon: ${(e as Error).message}`, { cause: e });
  }
  return cached;
}
