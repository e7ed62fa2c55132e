import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/index.js';
import { sha256File } from '../../../src/daemon/services/snapshots/files.js';
import { createDigestCache } from '../../../src/daemon/services/snapshots/index.js';
import { checkRestoreTarget } from '../../../src/daemon/services/vms/restore-check.js';
import type { VmServiceDeps } from '../../../src/daemon/services/vms/types.js';
import { warmTemplateKey } from '../../../src/daemon/services/vms/warm-key.js';
import type { Image } from '../../../src/model/image.js';
import type { Snapshot } from '../../../src/model/snapshot.js';

const dir = mkdtempSync(join(tmpdir(), 'bgr-warm-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const kernelPath = join(dir, 'vmlinux');
writeFileSync(kernelPath, 'kernel-1');
const rootfsPath = join(dir, 'rootfs.ext4');
writeFileSync(rootfsPath, 'root');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const snapshot = (vmm: Partial<Snapshot['vmm']>): Snapshot =>
  ({ name: 'base', vmm: { kind: 'qemu', version: '7.2.0', ...vmm } }) as Snapshot;

describe('checkRestoreTarget', () => {
  it('passes the kernel and machine the snapshot ran on', async () => {
    await checkRestoreTarget(snapshot({ kernelSha256: sha('kernel-1'), machine: 'microvm' }), {
      kernelPath,
      machine: 'microvm',
    });
  });

  it('refuses another machine type, another kernel, a missing kernel and a snapshot without the record', async () => {
    const s = snapshot({ kernelSha256: sha('kernel-1'), machine: 'microvm' });
    await expect(checkRestoreTarget(s, { kernelPath, machine: 'q35' })).rejects.toThrow(
      'snapshot base cannot be restored here: it ran on the microvm machine type, this VM would run on q35',
    );
    await expect(
      checkRestoreTarget(snapshot({ kernelSha256: sha('kernel-0'), machine: 'microvm' }), {
        kernelPath,
        machine: 'microvm',
      }),
    ).rejects.toThrow(/its kernel changed/);
    await expect(
      checkRestoreTarget(s, { kernelPath: join(dir, 'gone'), machine: 'microvm' }),
    ).rejects.toThrow(/sha256 missing/);
    await expect(checkRestoreTarget(snapshot({}), { kernelPath, machine: 'microvm' })).rejects.toThrow(
      /does not record the kernel and machine type/,
    );
  });

  it("through the daemon's digest cache: an unchanged kernel is read once, a rewritten one is refused", async () => {
    const path = join(dir, 'vmlinux-cached');
    writeFileSync(path, 'kernel-1');
    // Older than the cache's racy window (a ctime no user can set back), so its digest may be kept.
    await new Promise((r) => setTimeout(r, 1_200));
    let reads = 0;
    const cache = createDigestCache(async (p) => {
      reads++;
      return sha256File(p);
    });
    const s = snapshot({ kernelSha256: sha('kernel-1'), machine: 'microvm' });
    const check = () =>
      checkRestoreTarget(s, { kernelPath: path, machine: 'microvm' }, (p) => cache.sha256(p));
    await check();
    await check();
    expect(reads).toBe(1);
    writeFileSync(path, 'kernel-2');
    await expect(check()).rejects.toThrow(/its kernel changed/);
    expect(reads).toBe(2);
  });
});

describe('warmTemplateKey', () => {
  const deps = {
    config: parseConfig(''),
    vmm: async () => ({ kind: 'qemu', accel: 'tcg', agentTransport: 'virtio-serial' }),
    kernels: {
      ensure: async () => {
        throw new Error('the image carries its kernel');
      },
    },
  } as unknown as Pick<VmServiceDeps, 'vmm' | 'kernels' | 'config'>;
  const image = {
    id: 'img-1',
    updatedAt: '2026-01-01T00:00:00Z',
    artifacts: { rootfsPath, kernelPath },
  } as unknown as Image;
  const spec = {
    vcpu: 1,
    memoryMib: 256,
    diskSizeBytes: 1 << 26,
    systemOverlaySizeBytes: 1 << 26,
    nat: false,
  };
  const key = (i: Image, s = spec) => warmTemplateKey(deps, i, s, {});

  it('is the same for the same inputs and differs when the spec, the image or its files change', async () => {
    const k = await key(image);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(await key(image)).toBe(k);
    expect(await key(image, { ...spec, memoryMib: 288 })).not.toBe(k);
    expect(await key(image, { ...spec, nat: true })).not.toBe(k);
    expect(await key({ ...image, updatedAt: '2026-02-01T00:00:00Z' })).not.toBe(k);
    utimesSync(rootfsPath, new Date(2030, 0, 1), new Date(2030, 0, 1));
    const afterRootfs = await key(image);
    expect(afterRootfs).not.toBe(k);
    writeFileSync(kernelPath, 'kernel-2');
    expect(await key(image)).not.toBe(afterRootfs);
  });
});

describe('the template VMs tag', () => {
  it('is refused from clients: the daemon deletes VMs carrying it at its start', async () => {
    const { vmCreateParamsSchema } = await import('../../../src/rpc/methods/vm.js');
    expect(vmCreateParamsSchema.safeParse({ createdBy: 'banger-warm' }).success).toBe(false);
    expect(vmCreateParamsSchema.safeParse({ createdBy: 'mcp' }).success).toBe(true);
  });
});
