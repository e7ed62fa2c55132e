import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type CowProbe,
  chooseCowStrategy,
  copyStrategy,
  createInProcessPrivOps,
  qcow2Strategy,
  reflinkStrategy,
  teardownAll,
  writeQcow2Overlay,
} from '../../../../src/host/index.js';
import { createRecordingRunner } from '../../../fixtures/recording-runner.js';

const probes = (available: Record<string, boolean>): CowProbe[] =>
  Object.entries(available).map(([strategy, ok]) => ({
    strategy: strategy as CowProbe['strategy'],
    available: ok,
    ...(ok ? {} : { reason: `${strategy} missing` }),
  }));

describe('chooseCowStrategy', () => {
  const none = probes({ 'dm-snapshot': false, reflink: false, qcow2: true, copy: true });

  it('auto picks the first usable strategy, skipping qcow2 for Firecracker', () => {
    expect(chooseCowStrategy('auto', none, 'qemu').name).toBe('qcow2');
    expect(chooseCowStrategy('auto', none, 'firecracker').name).toBe('copy');
    const all = probes({ 'dm-snapshot': true, reflink: true, qcow2: true, copy: true });
    expect(chooseCowStrategy('auto', all, 'qemu').name).toBe('dm-snapshot');
  });

  it('refuses a configured strategy the host cannot do, with the probe reason', () => {
    expect(() => chooseCowStrategy('reflink', none, 'qemu')).toThrow(/reflink missing/);
    expect(() => chooseCowStrategy('qcow2', none, 'firecracker')).toThrow(/firecracker cannot read qcow2/);
    expect(chooseCowStrategy('copy', none, 'firecracker').name).toBe('copy');
  });
});

describe('single-file strategies', () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'bgr-h-unit-')));
  const vmDir = join(root, 'vms', 'vm1');
  mkdirSync(vmDir, { recursive: true });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const input = { imagePath: '/img/rootfs.ext4', vmDir, vmId: 'vm1', overlayBytes: 0 };

  it('generate the reflink and sparse-copy commands and report format and teardown', async () => {
    const runner = createRecordingRunner();
    const priv = createInProcessPrivOps({ runner, stateDir: root });
    const deps = { runner, priv, stateDir: root };
    const disks = [await reflinkStrategy.create(deps, input), await copyStrategy.create(deps, input)];
    expect(runner.commands()).toEqual([
      `cp --reflink=always -- /img/rootfs.ext4 ${vmDir}/rootfs.ext4`,
      `cp --sparse=always -- /img/rootfs.ext4 ${vmDir}/rootfs.ext4`,
    ]);
    expect(disks.map((d) => [d.format, d.identities])).toEqual([
      ['raw', [{ kind: 'file', path: `${vmDir}/rootfs.ext4` }]],
      ['raw', [{ kind: 'file', path: `${vmDir}/rootfs.ext4` }]],
    ]);
  });

  it('write the qcow2 overlay in-process (no tool run) and leave no file when the image is missing', async () => {
    const runner = createRecordingRunner();
    const priv = createInProcessPrivOps({ runner, stateDir: root });
    const image = join(root, 'image.ext4');
    writeFileSync(image, Buffer.alloc(1024 * 1024));
    const disk = await qcow2Strategy.create({ runner, priv, stateDir: root }, { ...input, imagePath: image });
    expect(runner.commands()).toEqual([]);
    expect([disk.format, disk.identities]).toEqual([
      'qcow2',
      [{ kind: 'file', path: `${vmDir}/rootfs.qcow2` }],
    ]);
    rmSync(disk.path);
    await expect(
      qcow2Strategy.create(
        { runner, priv, stateDir: root },
        { ...input, imagePath: join(root, 'gone.ext4') },
      ),
    ).rejects.toThrow(/ENOENT/);
    expect(existsSync(`${vmDir}/rootfs.qcow2`)).toBe(false);
  });

  it('write a qcow2 overlay of the same few clusters for a 1 MiB and an 8 GiB image', async () => {
    const sizes: number[] = [];
    for (const bytes of [1024 * 1024, 8 * 1024 ** 3]) {
      const image = join(root, `sparse-${bytes}.ext4`);
      writeFileSync(image, '');
      truncateSync(image, bytes);
      const dest = join(root, `overlay-${bytes}.qcow2`);
      await writeQcow2Overlay(dest, { path: image, format: 'raw' });
      const header = readFileSync(dest).subarray(0, 64);
      expect(header.subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
      expect(header.readBigUInt64BE(24)).toBe(BigInt(bytes)); // the guest sees the image's size
      sizes.push(statSync(dest).size);
    }
    expect(sizes).toEqual([4 * 65536, 4 * 65536]);
  });

  it('over a qcow2 backing file give the guest its virtual size (from its header), not its file length', async () => {
    const raw = join(root, 'base-raw.ext4');
    writeFileSync(raw, '');
    truncateSync(raw, 8 * 1024 * 1024);
    const mid = join(root, 'mid.qcow2');
    await writeQcow2Overlay(mid, { path: raw, format: 'raw' });
    expect(statSync(mid).size).toBeLessThan(8 * 1024 * 1024);
    const top = join(root, 'top.qcow2');
    await writeQcow2Overlay(top, { path: mid, format: 'qcow2' });
    expect(readFileSync(top).readBigUInt64BE(24)).toBe(BigInt(8 * 1024 * 1024));
    const notQcow2 = join(root, 'top-bad.qcow2');
    await expect(writeQcow2Overlay(notQcow2, { path: raw, format: 'qcow2' })).rejects.toThrow(
      /not a qcow2 file/,
    );
  });

  it('refuse a backing path QEMU could not store', async () => {
    const dest = join(root, 'long.qcow2');
    await expect(writeQcow2Overlay(dest, { path: `/${'a'.repeat(1100)}`, format: 'raw' })).rejects.toThrow(
      /too long/,
    );
    expect(existsSync(dest)).toBe(false);
  });

  it('leave no partial file when the tool fails', async () => {
    const runner = createRecordingRunner([
      [
        /^cp /,
        (argv) => {
          writeFileSync(argv[argv.length - 1]!, 'partial');
          return { exitCode: 1, stderr: 'EOPNOTSUPP' };
        },
      ],
    ]);
    const priv = createInProcessPrivOps({ runner, stateDir: root });
    await expect(reflinkStrategy.create({ runner, priv, stateDir: root }, input)).rejects.toThrow(
      /EOPNOTSUPP/,
    );
    expect(existsSync(`${vmDir}/rootfs.ext4`)).toBe(false);
    await teardownAll({ priv, vmDir }, reflinkStrategy.plan(input).identities);
  });
});
