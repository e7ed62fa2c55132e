import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createCidAllocator, createFileCidLeaseStore, teardownIdentity } from '../../../../src/host/index.js';
import { teardownIdentitySchema } from '../../../../src/model/identity.js';

const root = mkdtempSync(join(tmpdir(), 'bgr-h-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const leaseFile = () => join(root, `cid-leases-${n++}.json`);

describe('vsock CID allocator', () => {
  it('hands out the lowest free CID from 3, persists it, and reuses a released one', async () => {
    const file = leaseFile();
    const cids = createCidAllocator(createFileCidLeaseStore(file));
    const a = await cids.allocate('vm-a');
    const b = await cids.allocate('vm-b');
    expect([a.cid, b.cid]).toEqual([3, 4]);
    expect(a.identity).toEqual({ kind: 'cid', cid: 3 });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ version: 1, leases: { 3: 'vm-a', 4: 'vm-b' } });
    // The same owner gets its lease back (a retried start after a crash does not leak one).
    expect((await cids.allocate('vm-a')).cid).toBe(3);
    await cids.release(a.identity);
    await cids.release(a.identity); // already free: fine
    expect((await cids.allocate('vm-c')).cid).toBe(3);
    // A second allocator over the same file (a daemon restart) sees the same leases.
    const again = createCidAllocator(createFileCidLeaseStore(file));
    expect(await again.leases()).toEqual({ 3: 'vm-c', 4: 'vm-b' });
    expect((await again.allocate('vm-d')).cid).toBe(5);
  });

  it('never hands out one CID twice to concurrent callers', async () => {
    const file = leaseFile();
    const cids = createCidAllocator(createFileCidLeaseStore(file));
    const got = await Promise.all(Array.from({ length: 8 }, (_, i) => cids.allocate(`vm-${i}`)));
    expect(new Set(got.map((g) => g.cid)).size).toBe(8);
    expect(got.map((g) => g.cid).sort((x, y) => x - y)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('is released by teardown from its identity alone, and refuses reserved CIDs on read-back', async () => {
    const file = leaseFile();
    const cids = createCidAllocator(createFileCidLeaseStore(file));
    const { identity } = await cids.allocate('vm-a');
    const priv = {} as Parameters<typeof teardownIdentity>[0]['priv'];
    await teardownIdentity({ priv, cids }, identity);
    expect(await cids.leases()).toEqual({});
    await expect(teardownIdentity({ priv }, identity)).rejects.toThrow(/no CID allocator/);
    expect(teardownIdentitySchema.safeParse({ kind: 'cid', cid: 2 }).success).toBe(false);
    expect(teardownIdentitySchema.safeParse({ kind: 'cid', cid: 3 }).success).toBe(true);
  });

  it('names a file that is not a lease file', async () => {
    const file = leaseFile();
    writeFileSync(file, '{"something":"else"}');
    await expect(createCidAllocator(createFileCidLeaseStore(file)).allocate('vm-a')).rejects.toThrow(
      /vsock CID lease file .* is not a banger lease file/,
    );
  });
});
