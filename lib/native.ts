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

export interface NativeTarget {
  destroy(): Promise<void>;
  state(): string;
  ref(): void;
  unref(): void;
  reactorInfo(): NativeReactorInfo[];
  createBdev(o: { name: string; type: string; blockSize?: number; numBlocks?: number; path?: string; direct?: boolean }): Promise<NativeBdevInfo>;
  deleteBdev(name: string): Promise<void>;
  createSubsystem(o: { nqn: string; serial?: string; model?: string; allowAnyHost?: boolean; maxNamespaces?: number }): Promise<void>;
  deleteSubsystem(nqn: string): Promise<void>;
  addNamespace(nqn: string, o: { bdev: string; nsid?: number; uuid?: Buffer; nguid?: Buffer; eui64?: Buffer }): Promise<number>;
  removeNamespace(nqn: string, nsid: number): Promise<void>;
  hostOp(nqn: string, op: 'add' | 'remove' | 'allowAny', arg: string | boolean): Promise<void>;
  listen(a: NativeListen, stop: boolean): Promise<void>;
  subsystemListener(nqn: string, a: NativeListen, remove: boolean): Promise<void>;
  config(): NativeConfig;
  stats(): Promise<NativeGroupStats[]>;
}

export interface NativeAddon {
  napiVersion: number;
  NativeTarget: new (options: object, emit: (name: string, json: string) => void) => NativeTarget;
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
