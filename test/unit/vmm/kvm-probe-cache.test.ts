import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKvmProbeCache, kvmProbeKey, probeKvm } from '../../../src/vmm/index.js';

describe('KVM probe cache', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bgr-kvmcache-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('remembers verdicts per key in a JSON file and treats a corrupt file as empty', async () => {
    const file = join(dir, 'state', 'kvm-probe.json');
    const cache = createKvmProbeCache(file);
    expect(await cache.get('k')).toBeUndefined();
    await cache.set('k', { usable: false, reason: 'nope' });
    expect(await createKvmProbeCache(file).get('k')).toEqual({ usable: false, reason: 'nope' });
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ k: { usable: false, reason: 'nope' } });
    await writeFile(file, '{not json');
    expect(await cache.get('k')).toBeUndefined();
  });

  it('keys by kernel content and QEMU version, and answers from the cache without booting', async () => {
    const kernel = join(dir, 'vmlinuz');
    await writeFile(kernel, 'kernel-a');
    const key = await kvmProbeKey(kernel, '7.2.22');
    expect(key).not.toBe(await kvmProbeKey(kernel, '8.0.0'));
    await writeFile(kernel, 'kernel-b');
    expect(await kvmProbeKey(kernel, '7.2.22')).not.toBe(key);

    const cache = createKvmProbeCache(join(dir, 'c.json'));
    await cache.set(await kvmProbeKey(kernel, '7.2.22'), { usable: true, reason: 'cached' });
    const runner = {
      run: async () => {
        throw new Error('must not run');
      },
      spawn: () => {
        throw new Error('must not boot');
      },
    };
    const verdict = await probeKvm({
      kernel,
      cache,
      runner,
      host: { kvmDevice: 'present', qemu: { path: '/usr/bin/qemu', version: '7.2.22' } },
    });
    expect(verdict).toEqual({ usable: true, reason: 'cached' });
  });

  it('answers without booting when /dev/kvm is missing or closed', async () => {
    expect(await probeKvm({ kernel: '/nonexistent', host: { kvmDevice: 'absent' } })).toEqual({
      usable: false,
      reason: 'no /dev/kvm on this host',
    });
    expect((await probeKvm({ kernel: '/nonexistent', host: { kvmDevice: 'no-access' } })).reason).toMatch(
      /not readable and writable/,
    );
  });
});
