import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSnapshotService } from '../../src/daemon/services/snapshots/index.js';
import { agentBinaryPath } from '../../src/guest/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { createStandinVmm, hostAgentGuest } from '../fixtures/standin-vmm.js';
import { addImage, buildVmHarness, type VmHarness } from '../fixtures/vm-harness.js';

// The snapshot service over real parts (SQLite, copy-on-write files, a stand-in VMM process that is
// really stopped while paused): what a snapshot cut short leaves, and what a full disk leaves. The
// snapshot of a real guest (QEMU TCG, the fake Firecracker) is test/e2e/backend-contract.test.ts's.
const fx = createNetnsFixture();
const runner = fx.runner;
const bridge = `br-fc-sn${fx.id.slice(6)}`;
const bridgeIp = '172.31.9.1';
const instanceId = randomBytes(16).toString('hex');
const agent = agentBinaryPath();
let ns: string;
let root: string;
let imagePath: string;
let n = 0;
const open: VmHarness[] = [];

beforeAll(async () => {
  if (!existsSync(agent)) throw new Error(`the agent is not built (${agent}): make -C agent`);
  ns = await fx.createNetns('snp');
  root = await fx.tempDir();
  imagePath = join(root, 'tiny.ext4');
  await runner.run(['truncate', '-s', '24M', imagePath]);
  await runner.run(['mkfs.ext4', '-F', '-q', imagePath]);
});

afterEach(async () => {
  for (const h of open.splice(0)) await h.discard();
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

function setup(snapshotsDir?: string) {
  const stateDir = join(root, `s${n++}`);
  const h = buildVmHarness({
    stateDir,
    netns: ns,
    bridge,
    bridgeIp,
    instanceId,
    vmm: createStandinVmm(runner, ns, { agentBinary: agent }),
    guest: hostAgentGuest(),
  });
  addImage(h.store, 'tiny', imagePath);
  open.push(h);
  const dir = snapshotsDir ?? join(stateDir, 'snapshots');
  const snapshots = createSnapshotService({
    store: h.store,
    vms: h.service,
    runner,
    snapshotsDir: dir,
    vmsDir: h.deps.vmsDir,
    vmmKind: async () => 'qemu',
    log: pino({ level: 'silent' }),
  });
  return { h, snapshots, dir };
}

describe('snapshots', () => {
  it('a running VM is paused while saved and runs after; a paused one stays paused', async () => {
    const { h, snapshots } = setup();
    await h.service.create({ name: 'src', image: 'tiny' });
    const snap = await snapshots.create('src', 'first');
    // The stand-in saves its /proc status as its "memory": it was stopped (paused) when saved.
    expect(readFileSync(join(snap.dir, 'memory'), 'utf8')).toMatch(/^State:\s+T/m);
    expect(h.service.get('src').state).toBe('running');
    expect(snap.files.map((f) => f.role)).toEqual(['memory', 'root-disk', 'work-disk']);
    await h.service.pause('src');
    await snapshots.create('src', 'while-paused');
    expect(h.service.get('src').state).toBe('paused');
    expect(snapshots.list().map((s) => s.name)).toEqual(['first', 'while-paused']);
    await expect(snapshots.create('src', 'first')).rejects.toMatchObject({ code: 'already_exists' });
    await h.service.stop('src');
    await expect(snapshots.create('src', 'stopped')).rejects.toMatchObject({ code: 'not_running' });
    expect(snapshots.list()).toHaveLength(2);
  });

  it('reconcile removes what a snapshot cut short left: a creating row and its temporary directory, or an unnamed digest directory', async () => {
    const { h, snapshots, dir } = setup();
    const vm = await h.service.create({ name: 'crash', image: 'tiny' });
    const ok = await snapshots.create('crash', 'kept');
    // As a SIGKILL leaves them: the row (written first) and a half-written temporary directory ...
    const tmp = join(dir, '.tmp-0123456789abcdef');
    h.store.snapshots.insert({
      ...ok,
      id: '0123456789abcdef',
      name: 'cut',
      state: 'creating',
      dir: tmp,
      digest: '',
      files: [],
      sizeBytes: 0,
      source: { vmId: vm.id, vmName: vm.name, imageId: vm.imageId },
    });
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'memory'), 'half');
    // ... and a directory renamed into place whose row never said so.
    const orphan = join(dir, 'f'.repeat(64));
    mkdirSync(orphan);
    const report = await snapshots.reconcile();
    expect(report.removed.sort()).toEqual(['cut', 'f'.repeat(64)].sort());
    expect(readdirSync(dir)).toEqual([ok.digest]);
    expect(snapshots.list().map((s) => s.name)).toEqual(['kept']);
    expect((await snapshots.verify('kept')).name).toBe('kept');
  });

  it('a full disk leaves no snapshot: no row, no directory, and the VM runs on', async () => {
    const small = join(root, `full${n}`);
    mkdirSync(small);
    // 256 KiB: the stand-in's memory file fits, the disk copies do not.
    await runner.run(['mount', '-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'banger-test-full', small]);
    try {
      const { h, snapshots } = setup(join(small, 'snapshots'));
      await h.service.create({ name: 'full', image: 'tiny' });
      // Some allocated blocks in the root copy, so the sparse copy cannot fit.
      const err = await snapshots.create('full', 'nope').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'operation_failed' });
      expect((err as Error).message).toMatch(/snapshot of VM full failed: .*No space left on device/s);
      expect(h.store.snapshots.list()).toEqual([]);
      expect(readdirSync(join(small, 'snapshots'))).toEqual([]);
      expect(h.service.get('full').state).toBe('running');
    } finally {
      for (const h of open.splice(0)) await h.discard();
      await runner.run(['umount', small]);
    }
  });
});
