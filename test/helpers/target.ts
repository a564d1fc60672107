/** Test fixtures: a target serving RAM namespaces on a free loopback port. */
import * as net from 'node:net';
import { Target, type Subsystem } from '../../dist';

export const HOSTNQN = 'nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555';
export const SUBNQN = 'nqn.2024-01.io.nvmf-target:test';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface Served {
  target: Target;
  subsystem: Subsystem;
  port: number;
  address: string;
}

/** A target with one subsystem (allowAnyHost) and a malloc namespace per size. */
export async function serveRam(
  opts: { sizes?: number[]; reactors?: number; blockSize?: number; nqn?: string; address?: string; inCapsuleDataSize?: number } = {},
): Promise<Served> {
  const target = await Target.create({
    reactors: opts.reactors ?? 2,
    ...(opts.inCapsuleDataSize !== undefined ? { inCapsuleDataSize: opts.inCapsuleDataSize } : {}),
  });
  const subsystem = await target.createSubsystem({ nqn: opts.nqn ?? SUBNQN, allowAnyHost: true, serial: 'TESTSERIAL01', model: 'test-model' });
  let i = 0;
  for (const size of opts.sizes ?? [64 << 20]) {
    const name = `ram${i++}`;
    await target.createBdev({ name, type: 'malloc', sizeBytes: size, blockSize: opts.blockSize ?? 512 });
    await subsystem.addNamespace({ bdev: name });
  }
  const address = opts.address ?? '127.0.0.1';
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      await target.listen({ transport: 'tcp', address, port });
      return { target, subsystem, port, address };
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_BUSY' || attempt > 5) throw e;
    }
  }
}
