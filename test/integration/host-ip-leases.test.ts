import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createFileIpLeaseStore, createIpAllocator } from '../../src/host/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';

const fx = createNetnsFixture();
const worker = join(import.meta.dirname, '..', 'fixtures', 'ip-alloc-worker.ts');

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

it('never hands one address to two VMs when several processes allocate from one lease file', async () => {
  const file = join(await fx.tempDir(), 'ip-leases.json');
  const runs = ['p0', 'p1', 'p2', 'p3'].map((p) =>
    fx.runner.run([process.execPath, '--import', 'tsx', worker, file, '25', p], { timeoutMs: 90_000 }),
  );
  const got = (await Promise.all(runs)).flatMap((r) => JSON.parse(r.stdout) as string[]);
  expect(got).toHaveLength(100);
  expect(new Set(got).size).toBe(100);
  const ips = createIpAllocator({ store: createFileIpLeaseStore(file), bridgeIp: '10.20.0.1', prefix: 22 });
  const leases = await ips.leases();
  expect(Object.keys(leases).sort()).toEqual([...got].sort());
  expect(new Set(Object.values(leases)).size).toBe(100);
});
