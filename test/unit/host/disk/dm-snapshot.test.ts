import { existsSync, lstatSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dmSnapshotStrategy } from '../../../../src/host/disk/index.js';
import { createInProcessPrivOps } from '../../../../src/host/priv/index.js';
import { teardownAll } from '../../../../src/host/teardown.js';
import { createRecordingRunner } from '../../../fixtures/recording-runner.js';

// device-mapper does not exist on this host, so the dm-snapshot strategy is checked through the commands
// it issues, against a stateful fake of losetup and dmsetup.
function fakeDmHost() {
  const loops = new Map<string, string>();
  const dm = new Set<string>();
  let next = 7;
  const runner = createRecordingRunner([
    [
      /^losetup --find --show/,
      (argv) => {
        const dev = `/dev/loop${next++}`;
        loops.set(dev, argv[argv.length - 1]!);
        return { stdout: `${dev}\n` };
      },
    ],
    [
      /^losetup -J -l$/,
      () => ({
        stdout: JSON.stringify({
          loopdevices: [...loops].map(([name, file]) => ({ name, 'back-file': file })),
        }),
      }),
    ],
    [/^losetup -d /, (argv) => (loops.delete(argv[2]!) ? {} : { exitCode: 1, stderr: 'No such device' })],
    [/^dmsetup info /, (argv) => (dm.has(argv[2]!) ? {} : { exitCode: 1, stderr: 'Device does not exist.' })],
    [
      /^dmsetup create /,
      (argv) => {
        dm.add(argv[2]!);
        return {};
      },
    ],
    [
      /^dmsetup remove /,
      (argv) => {
        dm.delete(argv[3]!);
        return {};
      },
    ],
  ]);
  return { runner, loops, dm };
}

describe('dm-snapshot strategy', () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'bgr-h-unit-')));
  const stateDir = join(root, 'state');
  const vmDir = join(stateDir, 'vms', 'vm1');
  const imagePath = join(stateDir, 'images', 'img', 'rootfs.ext4');
  mkdirSync(vmDir, { recursive: true });
  mkdirSync(join(stateDir, 'images', 'img'), { recursive: true });
  writeFileSync(imagePath, Buffer.alloc(1024 * 1024));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const input = { imagePath, vmDir, vmId: 'vm1', overlayBytes: 64 * 1024 * 1024 };

  it('plans every identity before any side effect, with loops findable by per-VM backing file', () => {
    expect(dmSnapshotStrategy.plan(input)).toEqual({
      strategy: 'dm-snapshot',
      path: '/dev/mapper/banger-vm1',
      format: 'raw',
      identities: [
        { kind: 'file', path: join(vmDir, 'rootfs-base.ext4') },
        { kind: 'file', path: join(vmDir, 'rootfs.cow') },
        { kind: 'loop', device: '', backingFile: join(vmDir, 'rootfs-base.ext4') },
        { kind: 'loop', device: '', backingFile: join(vmDir, 'rootfs.cow') },
        { kind: 'dm', name: 'banger-vm1' },
      ],
    });
  });

  it('attaches a read-only base loop, a COW loop and a snapshot, then tears down in reverse', async () => {
    const host = fakeDmHost();
    const priv = createInProcessPrivOps({ runner: host.runner, stateDir });
    const disk = await dmSnapshotStrategy.create({ runner: host.runner, priv, stateDir }, input);
    const base = join(vmDir, 'rootfs-base.ext4');
    const cow = join(vmDir, 'rootfs.cow');
    expect(host.runner.commands()).toEqual([
      // First the plan is cleared of crash leftovers (none here).
      'dmsetup info banger-vm1',
      'losetup -J -l',
      'losetup -J -l',
      `losetup --find --show --read-only ${base}`,
      `losetup --find --show ${cow}`,
      'dmsetup info banger-vm1',
      'dmsetup create banger-vm1 --table 0 2048 snapshot /dev/loop7 /dev/loop8 P 8',
    ]);
    expect(disk.path).toBe('/dev/mapper/banger-vm1');
    expect(disk.identities.filter((i) => i.kind === 'loop')).toEqual([
      { kind: 'loop', device: '/dev/loop7', backingFile: base },
      { kind: 'loop', device: '/dev/loop8', backingFile: cow },
    ]);
    expect(lstatSync(cow).size).toBe(input.overlayBytes);
    expect(lstatSync(cow).blocks).toBe(0);

    host.runner.calls.length = 0;
    await teardownAll({ priv, vmDir }, disk.identities);
    expect(host.runner.commands()).toEqual([
      'dmsetup info banger-vm1',
      'dmsetup remove --retry banger-vm1',
      'losetup -J -l',
      'losetup -d /dev/loop8',
      'losetup -J -l',
      'losetup -d /dev/loop7',
    ]);
    expect(existsSync(cow) || existsSync(base)).toBe(false);
    expect(existsSync(imagePath)).toBe(true);
    expect(host.loops.size + host.dm.size).toBe(0);
  });

  it('tears down from the recorded plan alone after a crash, finding loops by backing file', async () => {
    const host = fakeDmHost();
    const priv = createInProcessPrivOps({ runner: host.runner, stateDir });
    const plan = dmSnapshotStrategy.plan(input);
    await dmSnapshotStrategy.create({ runner: host.runner, priv, stateDir }, input);
    host.loops.set('/dev/loop99', imagePath); // another VM's loop over the same image must survive
    await teardownAll({ priv, vmDir }, plan.identities);
    expect([...host.loops]).toEqual([['/dev/loop99', imagePath]]);
    expect(host.dm.size).toBe(0);
    // Twice is fine: everything is already gone.
    await teardownAll({ priv, vmDir }, plan.identities);
  });

  it('clears what a crashed attempt left before creating again', async () => {
    const host = fakeDmHost();
    const priv = createInProcessPrivOps({ runner: host.runner, stateDir });
    const deps = { runner: host.runner, priv, stateDir };
    await dmSnapshotStrategy.create(deps, input);
    const disk = await dmSnapshotStrategy.create(deps, input);
    expect(host.loops.size).toBe(2);
    expect([...host.dm]).toEqual(['banger-vm1']);
    await teardownAll({ priv, vmDir }, disk.identities);
  });

  it('rolls back what it made when the snapshot cannot be created', async () => {
    const host = fakeDmHost();
    const failing = createRecordingRunner([
      [/^dmsetup create /, { exitCode: 1, stderr: '/dev/mapper/control: open failed' }],
    ]);
    // Everything but `dmsetup create` goes to the stateful fake.
    const runner = {
      ...failing,
      run: async (argv: readonly string[], o?: { allowFailure?: boolean }) =>
        /^dmsetup create/.test(argv.join(' ')) ? failing.run(argv, o) : host.runner.run(argv, o),
    };
    const priv = createInProcessPrivOps({ runner, stateDir });
    await expect(dmSnapshotStrategy.create({ runner, priv, stateDir }, input)).rejects.toThrow(
      /dmsetup create/,
    );
    expect(host.loops.size).toBe(0);
    expect(existsSync(join(vmDir, 'rootfs.cow'))).toBe(false);
  });
});
