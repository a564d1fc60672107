/** Shared pieces of the hardening tests (races, faults, misbehaving clients). */
import { resources, type ProcessResources, type TargetResources, type Target } from '../../dist';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
}

/** The per-connection counters of a target, which must return to 0 once its hosts are gone. */
export function connectionCounts(r: TargetResources): Pick<TargetResources, 'qpairs' | 'controllers' | 'outstandingRequests' | 'requestBuffers' | 'requestBufferBytes' | 'registeredBuffers'> {
  return {
    qpairs: r.qpairs,
    controllers: r.controllers,
    outstandingRequests: r.outstandingRequests,
    requestBuffers: r.requestBuffers,
    requestBufferBytes: r.requestBufferBytes,
    registeredBuffers: r.registeredBuffers,
  };
}

export const ZERO_CONNECTIONS = {
  qpairs: 0,
  controllers: 0,
  outstandingRequests: 0,
  requestBuffers: 0,
  requestBufferBytes: 0,
  registeredBuffers: 0,
};

/** Waits until a live target holds no connection resources; returns the last reading. */
export async function targetSettled(target: Target, timeoutMs = 10_000): Promise<ReturnType<typeof connectionCounts>> {
  let last = connectionCounts(target.resources());
  await waitFor(() => {
    last = connectionCounts(target.resources());
    return Object.values(last).every((v) => v === 0);
  }, timeoutMs);
  return last;
}

export const ZERO_PROCESS: ProcessResources = {
  targets: 0,
  pollGroups: 0,
  qpairs: 0,
  controllers: 0,
  outstandingRequests: 0,
  requestBuffers: 0,
  requestBufferBytes: 0,
  registeredBuffers: 0,
  bdevs: 0,
  leakedRequests: 0,
};

/** Waits until no target is left in the process and everything was given back. */
export async function processSettled(timeoutMs = 10_000): Promise<ProcessResources> {
  let last = resources();
  await waitFor(() => {
    last = resources();
    return Object.values(last).every((v) => v === 0);
  }, timeoutMs);
  return last;
}

/** Rejects after `ms` with a message naming `what`: a hang becomes a failure. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A small deterministic PRNG, so a failing iteration can be replayed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}
