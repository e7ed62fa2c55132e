/**
 * The kernel store on a real filesystem: all-or-nothing installs, refusal to overwrite, per-name locking,
 * damaged entries reported (not fatal for a listing), and crash leftovers swept.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createKernelStore,
  detectCapabilities,
  type KernelManifest,
  type KernelStore,
} from '../../src/kernel/index.js';

function manifest(name: string): KernelManifest {
  return {
    schemaVersion: 1,
    name,
    distro: 'test',
    arch: 'x86_64',
    version: '6.12.0',
    source: 'test',
    importedAt: new Date().toISOString(),
    files: {},
    capabilities: detectCapabilities(undefined),
  };
}

async function fill(dir: string, name: string): Promise<KernelManifest> {
  await writeFile(join(dir, 'vmlinux'), 'elf');
  return manifest(name);
}

describe('kernel store', () => {
  let root: string;
  let store: KernelStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'banger-kernel-store-'));
    store = createKernelStore({ kernelsDir: join(root, 'kernels') });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('installs, refuses to overwrite without force, replaces with force, removes', async () => {
    const k = await store.install('k1', {}, (d) => fill(d, 'k1'));
    expect(k.kernelPath).toBe(join(root, 'kernels', 'k1', 'vmlinux'));
    await expect(store.install('k1', {}, (d) => fill(d, 'k1'))).rejects.toMatchObject({
      code: 'already_exists',
    });
    const replaced = await store.install('k1', { force: true }, async (d) => {
      await writeFile(join(d, 'vmlinuz'), 'bz');
      return { ...manifest('k1'), version: '6.13.0' };
    });
    expect(replaced.manifest.version).toBe('6.13.0');
    expect(replaced.kernelPath).toBe(join(root, 'kernels', 'k1', 'vmlinuz'));
    expect(await readdir(join(root, 'kernels'))).toEqual(['k1']);
    await store.remove('k1');
    await expect(store.remove('k1')).rejects.toMatchObject({ code: 'not_found' });
    await expect(store.get('k1')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('removes staging when filling fails and keeps an existing kernel intact', async () => {
    await store.install('k1', {}, (d) => fill(d, 'k1'));
    await expect(
      store.install('k1', { force: true }, async (d) => {
        await writeFile(join(d, 'vmlinux'), 'half');
        throw new Error('download died');
      }),
    ).rejects.toThrow('download died');
    expect(await readdir(join(root, 'kernels'))).toEqual(['k1']);
    expect((await store.get('k1')).manifest.version).toBe('6.12.0');
  });

  it('serializes concurrent installs of one name', async () => {
    const results = await Promise.allSettled([
      store.install('k2', {}, (d) => fill(d, 'k2')),
      store.install('k2', {}, (d) => fill(d, 'k2')),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('validates names', async () => {
    await expect(store.install('../evil', {}, (d) => fill(d, 'x'))).rejects.toMatchObject({
      code: 'bad_request',
    });
    await expect(store.get('-rf')).rejects.toMatchObject({ code: 'bad_request' });
  });

  it('lists damaged entries apart and sweeps crash leftovers', async () => {
    await store.install('good', {}, (d) => fill(d, 'good'));
    await mkdir(join(root, 'kernels', 'broken'));
    await mkdir(join(root, 'kernels', '.staging-x-1234'));
    const { kernels, broken } = await store.list();
    expect(kernels.map((k) => k.manifest.name)).toEqual(['good']);
    expect(broken).toEqual([{ name: 'broken', reason: expect.stringContaining('manifest.json') as string }]);
    await expect(store.get('broken')).rejects.toMatchObject({
      code: 'operation_failed',
      hint: expect.stringContaining('kernel rm broken') as string,
    });
    await store.sweep();
    expect((await readdir(join(root, 'kernels'))).sort()).toEqual(['broken', 'good']);
  });
});
