import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createFileIpLeaseStore, createIpAllocator, guestAddresses } from '../../../../src/host/net/index.js';

const root = mkdtempSync(join(tmpdir(), 'bgr-h-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const leaseFile = () => join(root, `leases-${n++}.json`);

describe('guestAddresses', () => {
  it('skips network, broadcast and the bridge address', () => {
    expect([...guestAddresses('10.0.0.1', 29)]).toEqual([
      '10.0.0.2',
      '10.0.0.3',
      '10.0.0.4',
      '10.0.0.5',
      '10.0.0.6',
    ]);
    expect([...guestAddresses('10.0.0.5', 30)]).toEqual(['10.0.0.6']);
    expect(() => [...guestAddresses('10.0.0.5', 32)]).toThrow(/no room for guests/);
    expect(() => [...guestAddresses('10.0.0.0', 24)]).toThrow(/network or broadcast/);
  });
});

describe('IP allocator', () => {
  it('hands out the lowest free address, persists it, and reuses released ones', async () => {
    const file = leaseFile();
    const ips = createIpAllocator({
      store: createFileIpLeaseStore(file),
      bridgeIp: '172.16.0.1',
      prefix: 24,
    });
    const a = await ips.allocate('vm-a');
    const b = await ips.allocate('vm-b');
    expect([a.address, b.address]).toEqual(['172.16.0.2', '172.16.0.3']);
    expect(a.identity).toEqual({ kind: 'ip', address: '172.16.0.2' });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      version: 1,
      leases: { '172.16.0.2': 'vm-a', '172.16.0.3': 'vm-b' },
    });
    await ips.release(a.identity);
    await ips.release(a.identity);
    expect((await ips.allocate('vm-c')).address).toBe('172.16.0.2');
    // A retried create for the same VM gets its lease back instead of a second one.
    expect((await ips.allocate('vm-b')).address).toBe('172.16.0.3');
    expect(existsSync(`${file}.lock`)).toBe(false);
  });

  it('never hands an address out twice under concurrency, across allocators sharing a file', async () => {
    const file = leaseFile();
    const allocators = [0, 1, 2].map(() =>
      createIpAllocator({ store: createFileIpLeaseStore(file), bridgeIp: '10.9.0.1', prefix: 24 }),
    );
    const got = await Promise.all(
      Array.from({ length: 90 }, (_, i) => allocators[i % 3]!.allocate(`vm-${i}`).then((r) => r.address)),
    );
    expect(new Set(got).size).toBe(90);
    expect(Object.keys(await allocators[0]!.leases())).toHaveLength(90);
    // Lowest free: exactly .2 to .91.
    expect([...got].sort((x, y) => Number(x.split('.')[3]) - Number(y.split('.')[3]))).toEqual(
      Array.from({ length: 90 }, (_, i) => `10.9.0.${i + 2}`),
    );
  });

  it('says so when the subnet is full', async () => {
    const ips = createIpAllocator({
      store: createFileIpLeaseStore(leaseFile()),
      bridgeIp: '10.0.0.1',
      prefix: 30,
    });
    expect((await ips.allocate('a')).address).toBe('10.0.0.2');
    await expect(ips.allocate('b')).rejects.toMatchObject({
      code: 'operation_failed',
      hint: expect.any(String),
    });
  });

  it('takes over a lock left by a dead process and refuses a foreign file', async () => {
    const file = leaseFile();
    writeFileSync(`${file}.lock`, '4194304');
    const ips = createIpAllocator({ store: createFileIpLeaseStore(file), bridgeIp: '10.0.0.1', prefix: 24 });
    expect((await ips.allocate('a')).address).toBe('10.0.0.2');
    writeFileSync(file, '{"something":"else"}');
    await expect(ips.allocate('b')).rejects.toThrow(/not a banger lease file/);
  });
});
