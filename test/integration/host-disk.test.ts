import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachLoop,
  COW_STRATEGIES,
  type CowProbe,
  cowStrategy,
  createInProcessPrivOps,
  createWorkDisk,
  detachLoop,
  growWorkDisk,
  listLoops,
  type PrivOps,
  planLoop,
  probeCowStrategies,
  type Runner,
  teardownAll,
} from '../../src/host/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { hostLacks } from '../fixtures/skip.js';

const fx = createNetnsFixture();
const runner = fx.runner;
const MiB = 1024 * 1024;
let stateDir: string;
let imagePath: string;
let priv: PrivOps;
let probes: CowProbe[];

/** Reads a file out of an ext4 image without mounting it. */
async function readExt4(image: string, path: string): Promise<string> {
  return (await runner.run(['debugfs', '-R', `cat ${path}`, image])).stdout;
}

async function fsckClean(image: string): Promise<boolean> {
  return (await runner.run(['e2fsck', '-fn', image], { allowFailure: true })).exitCode === 0;
}

beforeAll(async () => {
  stateDir = realpathSync(await fx.tempDir());
  priv = createInProcessPrivOps({ runner, stateDir });
  const content = join(stateDir, 'content');
  mkdirSync(content);
  writeFileSync(join(content, 'hello'), 'from the image\n');
  mkdirSync(join(stateDir, 'images'));
  imagePath = join(stateDir, 'images', 'rootfs.ext4');
  writeFileSync(imagePath, '');
  await runner.run(['truncate', '-s', '32M', imagePath]);
  await runner.run(['mkfs.ext4', '-F', '-q', '-d', content, imagePath]);
  probes = await probeCowStrategies({ runner, dir: stateDir });
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

describe('probeCowStrategies', () => {
  it('answers for every strategy, with a reason for each one that cannot work here', () => {
    expect(probes.map((p) => p.strategy)).toEqual([...COW_STRATEGIES]);
    for (const p of probes) expect(p.available || (p.reason ?? '').length > 0).toBe(true);
    expect(probes.find((p) => p.strategy === 'copy')?.available).toBe(true);
  });
});

describe.each(COW_STRATEGIES)('COW strategy %s', (name) => {
  it('gives the VM its own writable disk, leaves the image untouched, and tears down to nothing', async (ctx) => {
    const probe = probes.find((p) => p.strategy === name)!;
    // Only the strategies that need a host capability may be missing; copy and qcow2 must work everywhere.
    if (!probe.available && (name === 'dm-snapshot' || name === 'reflink')) {
      return ctx.skip(hostLacks(name, probe.reason ?? 'probe failed'));
    }
    const vmDir = join(stateDir, 'vms', name);
    mkdirSync(vmDir, { recursive: true });
    const input = { imagePath, vmDir, vmId: `t-${name}`, overlayBytes: 64 * MiB };
    const strategy = cowStrategy(name);
    const plan = strategy.plan(input);
    const disk = await strategy.create({ runner, priv, stateDir }, input);
    expect(disk.path).toBe(plan.path);

    if (disk.format === 'qcow2') {
      const info = JSON.parse((await runner.run(['qemu-img', 'info', '--output=json', disk.path])).stdout);
      expect(info).toMatchObject({
        format: 'qcow2',
        'virtual-size': statSync(imagePath).size,
        'backing-filename': imagePath,
        'backing-filename-format': 'raw',
      });
      // Written in-process, not by qemu-img: QEMU's own checker must find it sound before and after a
      // write through it, and the guest's view must be the image until it writes.
      const check = async () =>
        (await runner.run(['qemu-img', 'check', disk.path], { allowFailure: true })).exitCode;
      expect(await check()).toBe(0);
      expect(
        (await runner.run(['qemu-img', 'compare', disk.path, imagePath], { allowFailure: true })).exitCode,
      ).toBe(0);
      await runner.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0xab 0 64k', disk.path]);
      expect(await check()).toBe(0);
      expect(
        (await runner.run(['qemu-img', 'compare', disk.path, imagePath], { allowFailure: true })).exitCode,
      ).toBe(1);
    } else {
      // Write through the VM's disk and check the image did not see it.
      await runner.run(['debugfs', '-w', '-R', 'rm hello', disk.path]);
      expect(await readExt4(disk.path, 'hello')).toBe('');
    }
    expect(await readExt4(imagePath, 'hello')).toBe('from the image\n');
    expect(await fsckClean(imagePath)).toBe(true);

    await teardownAll({ priv, vmDir }, disk.identities);
    await teardownAll({ priv, vmDir }, plan.identities);
    expect(() => statSync(disk.path)).toThrow();
  });
});

describe('loop devices', () => {
  it('attach over a state-dir file and detach by identity, idempotently', async () => {
    const file = join(stateDir, 'vms', 'loop-a.img');
    mkdirSync(join(stateDir, 'vms'), { recursive: true });
    writeFileSync(file, Buffer.alloc(4 * MiB));
    const id = await attachLoop(priv, file, true);
    expect(id.device).toMatch(/^\/dev\/loop\d+$/);
    expect(await listLoops(runner)).toContainEqual({ device: id.device, backingFile: file });
    await detachLoop(priv, id);
    await detachLoop(priv, id);
    expect((await listLoops(runner)).some((l) => l.backingFile === file)).toBe(false);
  });

  it('are found by backing file after a crash that lost the device number', async () => {
    const file = join(stateDir, 'vms', 'loop-b.img');
    writeFileSync(file, Buffer.alloc(4 * MiB));
    const recorded = planLoop(file);
    await attachLoop(priv, file, false);
    await teardownAll({ priv, vmDir: join(stateDir, 'vms') }, [recorded, { kind: 'file', path: file }]);
    expect((await listLoops(runner)).some((l) => l.backingFile === file)).toBe(false);
    expect(() => statSync(file)).toThrow();
  });

  it('refuse files outside the state dir', async () => {
    await expect(attachLoop(priv, '/etc/hostname', true)).rejects.toMatchObject({ code: 'bad_request' });
  });
});

describe('work disk', () => {
  it('is a sparse root-owned ext4 that grows offline and refuses to shrink', async () => {
    const path = join(stateDir, 'vms', 'work.ext4');
    mkdirSync(join(stateDir, 'vms'), { recursive: true });
    const id = await createWorkDisk(runner, { path, sizeBytes: 64 * MiB });
    expect(id).toEqual({ kind: 'file', path });
    const st = statSync(path);
    expect(st.size).toBe(64 * MiB);
    expect(st.blocks * 512).toBeLessThan(16 * MiB);
    const root = (await runner.run(['debugfs', '-R', 'stat /', path])).stdout;
    expect(root).toMatch(/User:\s+0\s+Group:\s+0/);

    await growWorkDisk(runner, { path, sizeBytes: 128 * MiB });
    const header = (await runner.run(['dumpe2fs', '-h', path])).stdout;
    const blocks = Number(/Block count:\s+(\d+)/.exec(header)?.[1]);
    const blockSize = Number(/Block size:\s+(\d+)/.exec(header)?.[1]);
    expect(blocks * blockSize).toBe(128 * MiB);
    expect(await fsckClean(path)).toBe(true);
    await growWorkDisk(runner, { path, sizeBytes: 128 * MiB });
    await expect(growWorkDisk(runner, { path, sizeBytes: 64 * MiB })).rejects.toMatchObject({
      code: 'bad_request',
    });
    await teardownAll({ priv, vmDir: join(stateDir, 'vms') }, [id]);
  });

  it('grows a disk the guest wrote with e2fsck and resize2fs confined to uid 65534, given the disk as fd 3', async () => {
    const path = join(stateDir, 'vms', 'guest-written.ext4');
    mkdirSync(join(stateDir, 'vms'), { recursive: true });
    const id = await createWorkDisk(runner, { path, sizeBytes: 32 * MiB });
    const seen: { argv: string[]; owner: number; fds: readonly number[] | undefined }[] = [];
    const watching: Runner = {
      ...runner,
      async run(argv, options) {
        // The disk is lent to 65534 only while the tool runs.
        seen.push({ argv: [...argv], owner: statSync(path).uid, fds: options?.passFds });
        return runner.run(argv, options);
      },
    };
    await growWorkDisk(watching, { path, sizeBytes: 48 * MiB });
    const confined = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--no-new-privs', '--'];
    expect(seen.map((s) => s.argv)).toEqual([
      [...confined, 'e2fsck', '-f', '-p', '/dev/fd/3'],
      [...confined, 'resize2fs', '/dev/fd/3'],
    ]);
    for (const s of seen) expect([s.owner, s.fds?.length]).toEqual([65534, 1]);
    const st = statSync(path);
    expect([st.uid, st.gid, st.mode & 0o7777, st.size]).toEqual([0, 0, 0o600, 48 * MiB]);
    expect(await fsckClean(path)).toBe(true);
    await teardownAll({ priv, vmDir: dirname(path) }, [id]);
  });

  it("starts with a seed directory: owners, modes and symlinks kept, its root takes the seed's mode", async () => {
    const seed = join(stateDir, 'seed-root');
    mkdirSync(join(seed, '.config'), { recursive: true });
    writeFileSync(join(seed, '.profile'), 'export A=1\n', { mode: 0o640 });
    chownSync(join(seed, '.config'), 1000, 1001);
    symlinkSync('.profile', join(seed, 'link'));
    chmodSync(seed, 0o700);
    const path = join(stateDir, 'vms', 'seeded.ext4');
    mkdirSync(join(stateDir, 'vms'), { recursive: true });
    const id = await createWorkDisk(runner, { path, sizeBytes: 32 * MiB, seedDir: seed });
    expect(await readExt4(path, '/.profile')).toBe('export A=1\n');
    const listing = (await runner.run(['debugfs', '-R', 'ls -l /', path])).stdout;
    expect(listing).toMatch(/40700 \(2\)\s+0\s+0\s+\d+\s.*\s\.$/m);
    expect(listing).toMatch(/100640 \(1\)\s+0\s+0\s.*\.profile/);
    expect(listing).toMatch(/40755 \(2\)\s+1000\s+1001\s.*\.config/);
    expect(listing).toMatch(/120777 \(7\).*link/);
    expect(await fsckClean(path)).toBe(true);
    await teardownAll({ priv, vmDir: join(stateDir, 'vms') }, [id]);
  });

  it('refuses a seed that does not fit, naming the fix, and leaves no file', async () => {
    const seed = join(stateDir, 'big-root');
    mkdirSync(seed);
    writeFileSync(join(seed, 'big'), Buffer.alloc(40 * MiB, 1));
    const path = join(stateDir, 'vms', 'small.ext4');
    mkdirSync(join(stateDir, 'vms'), { recursive: true });
    await expect(createWorkDisk(runner, { path, sizeBytes: 32 * MiB, seedDir: seed })).rejects.toMatchObject({
      code: 'bad_request',
      hint: expect.stringContaining('--disk-size'),
    });
    expect(existsSync(path)).toBe(false);
  });
});
