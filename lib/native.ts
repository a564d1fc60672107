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

export interface NativeTarget {
  destroy(): Promise<void>;
  state(): string;
  ref(): void;
  unref(): void;
  reactorInfo(): NativeReactorInfo[];
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
