import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Guest, type VmmPort, vmPaths } from '../../src/daemon/services/vms/index.js';
import { agentBinaryPath } from '../../src/guest/index.js';
import { listLinks } from '../../src/host/index.js';
import { BootFailedError } from '../../src/model/errors.js';
import type { VM } from '../../src/model/vm.js';
import { errorFromWire, errorToWire } from '../../src/rpc/wire.js';
import { waitUntil } from '../fixtures/banger-instance.js';
import { debugfsWrite, mkfsFrom } from '../fixtures/crafted-ext4.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';
import { createStandinVmm, hostAgentGuest, STANDIN_CRASH_CODE } from '../fixtures/standin-vmm.js';
import { crashWorker } from '../fixtures/vm-crash.js';
import { addImage, buildVmHarness, type VmHarness } from '../fixtures/vm-harness.js';

// The VM service over real parts: a SQLite store, bridge/taps/NAT in a namespace this file creates,
// copy-on-write files, and a stand-in VMM that is a real detached process (test/fixtures/standin-vmm.ts)
// until src/vmm lands. Crash tests SIGKILL a service process at each checkpoint and reconcile after it.
const fx = createNetnsFixture();
const runner = fx.runner;
const token = fx.id.slice(6);
const bridge = `br-fc-${token}`;
const bridgeIp = '172.29.0.1';
/** Each test's fresh state dir is the same banger instance: they share the bridge in one namespace. */
const instanceId = randomBytes(16).toString('hex');
let ns: string;
let root: string;
let imagePath: string;
let n = 0;

beforeAll(async () => {
  ns = await fx.createNetns('vms');
  await fx.addClosedUplink(ns); // NAT needs an uplink; nothing leaves the namespace
  root = await fx.tempDir();
  imagePath = join(root, 'tiny.ext4');
  await runner.run(['truncate', '-s', '24M', imagePath]);
  await runner.run(['mkfs.ext4', '-F', '-q', imagePath]);
});

// Whatever a test left (it failed half-way), the next one starts clean: the namespace is shared.
afterEach(async () => {
  for (const dir of stateDirs.splice(0)) {
    const h = open(dir);
    await h.service.reconcile().catch(() => {});
    await h.discard();
  }
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

const stateDirs: string[] = [];

/** A fresh state dir with the tiny image registered. */
function freshState(): string {
  const dir = join(root, `s${n++}`);
  stateDirs.push(dir);
  const h = buildVmHarness({ stateDir: dir, netns: ns, bridge, bridgeIp, instanceId });
  addImage(h.store, 'tiny', imagePath);
  h.store.db.close();
  return dir;
}

const open = (stateDir: string) => buildVmHarness({ stateDir, netns: ns, bridge, bridgeIp });

async function taps(): Promise<{ name: string; master?: string }[]> {
  return (await listLinks(runner, ns)).filter((l) => l.name.startsWith('tap-fc-'));
}

async function natRules(): Promise<string> {
  const res = await runner.run(['nft', 'list', 'ruleset'], { netns: ns, allowFailure: true });
  return res.stdout
    .split('\n')
    .filter((l) => l.includes('banger:'))
    .join('\n');
}

/**
 * The host and the store agree: every VM the store calls running has a live process and its tap; every
 * other VM holds nothing but its files and IP lease; no process runs from any VM dir of a VM that is not
 * running; no directory without a row; no lease without a VM; no NAT rule but those of running VMs.
 */
async function assertConsistent(h: VmHarness): Promise<void> {
  const vms = h.store.vms.list();
  const vmsDir = h.deps.vmsDir;
  for (const vm of vms) {
    // Leases (IP, vsock CID) and the VM's files last as long as the VM; the rest only while it runs.
    const runtimeKinds = vm.runtime.identities
      .map((i) => i.kind)
      .filter((k) => k !== 'file' && k !== 'ip' && k !== 'cid');
    const procs = await processesNaming(vmPaths(vmsDir, vm.id).run);
    if (vm.state === 'running') {
      expect(procs.length, `${vm.name} running but no process`).toBe(1);
    } else {
      expect(runtimeKinds, `${vm.name} (${vm.state}) still holds runtime identities`).toEqual([]);
      expect(procs, `${vm.name} (${vm.state}) still has a process`).toEqual([]);
    }
  }
  const ids = new Set(vms.map((v) => v.id));
  expect(readdirSync(vmsDir).filter((d) => !ids.has(d))).toEqual([]);
  expect(await processesNaming(vmsDir)).toHaveLength(vms.filter((v) => v.state === 'running').length);
  const leases = { ...(await h.deps.network.ips.leases()), ...(await h.deps.network.cids.leases()) };
  for (const [what, owner] of Object.entries(leases))
    expect(ids.has(owner), `lease ${what} of ${owner}`).toBe(true);
  const running = vms.filter((v) => v.state === 'running');
  const leasedTaps = running.flatMap((v) => v.runtime.identities.filter((i) => i.kind === 'tap'));
  const idle = (await taps()).filter((t) => !leasedTaps.some((l) => l.name === t.name));
  expect(
    idle.length,
    `idle taps beyond the pool size: ${JSON.stringify(await taps())} leased ${JSON.stringify(leasedTaps)}`,
  ).toBeLessThanOrEqual(1);
  const rules = await natRules();
  const natVms = running.filter((v) => v.spec.nat);
  if (natVms.length === 0) expect(rules).toBe('');
}

/** The process has exited (reaped, or a zombie). */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

async function wipe(h: VmHarness): Promise<void> {
  for (const vm of h.store.vms.list()) await h.service.delete(vm.id);
  await assertConsistent(h);
  await h.deps.network.taps.drain();
  await h.close();
}

describe('VM lifecycle', () => {
  it('create with NAT, stop, start again, delete: state and host agree at every step', async () => {
    const h = open(freshState());
    const vm = await h.service.create({ name: 'life', image: 'tiny', nat: true });
    expect(vm.state).toBe('running');
    expect(vm.runtime.guestIp).toMatch(/^172\.29\.0\.\d+$/);
    const tap = vm.runtime.identities.find((i) => i.kind === 'tap');
    expect((await taps()).map((t) => t.name)).toContain(tap?.name);
    expect(await natRules()).toContain(`banger:${tap?.name}:${vm.runtime.guestIp}`);
    const handles = JSON.parse(readFileSync(vmPaths(h.deps.vmsDir, vm.id).handles, 'utf8'));
    expect(handles.identities).toEqual(vm.runtime.identities);
    await assertConsistent(h);
    // The work disk was made with the image's /root in it (this image has none: an empty 0700 root) and
    // the marker that tells the guest it only has to mount it; the scratch dir it was seeded from is gone.
    const workDisk = vmPaths(h.deps.vmsDir, vm.id).workDisk;
    const listing = (await runner.run(['debugfs', '-R', 'ls -l /', workDisk])).stdout;
    expect(listing).toMatch(/40700 \(2\)\s+0\s+0\s.*\s\.$/m);
    expect(listing).toContain('.banger-seeded');
    // It is a copy of the image's template for that size; the scratch dir the template was seeded from is gone.
    expect(readdirSync(join(h.deps.stateDir, 'work-templates')).filter((n) => n.endsWith('.ext4'))).toEqual([
      expect.stringMatching(/^img-tiny-.*\.ext4$/),
    ]);

    const stopped = await h.service.stop('life');
    expect(stopped.state).toBe('stopped');
    expect(stopped.runtime.identities.map((i) => i.kind).sort()).toEqual(['cid', 'file', 'file', 'ip']);
    expect(await natRules()).toBe('');
    await assertConsistent(h);

    const again = await h.service.start('lif'); // unique prefix
    expect(again.state).toBe('running');
    expect(again.runtime.guestIp).toBe(vm.runtime.guestIp); // the lease outlives a stop
    await h.service.delete('life');
    expect(h.store.vms.list()).toEqual([]);
    expect(existsSync(vmPaths(h.deps.vmsDir, vm.id).dir)).toBe(false);
    await wipe(h);
  });

  it('delete without wait answers with the VMM gone and the VM deleting; the name is free after the teardown', async () => {
    const h = open(freshState());
    const vm = await h.service.create({ name: 'early', image: 'tiny' });
    const vmm = vm.runtime.identities.find((i) => i.kind === 'process');
    expect(vmm).toBeDefined();
    await h.service.delete('early', { wait: false });
    const listed = h.store.vms.findById(vm.id);
    // Either still tearing down (deleting) or already done: never running, never a half state.
    if (listed) expect(listed.state).toBe('deleting');
    if (vmm?.kind === 'process') expect(gone(vmm.pid)).toBe(true);
    // A start meanwhile waits for the VM's lock, which the teardown holds: then the VM is gone.
    if (listed) await expect(h.service.start(vm.id)).rejects.toMatchObject({ code: 'not_found' });
    await h.service.settleDeletes();
    expect(h.store.vms.list()).toEqual([]);
    expect(existsSync(vmPaths(h.deps.vmsDir, vm.id).dir)).toBe(false);
    const again = await h.service.create({ name: 'early', image: 'tiny', noStart: true });
    expect(again.name).toBe('early');
    await wipe(h);
  });

  it('makes work disks from one template per image and size, renewed when the image is rebuilt', async () => {
    const dir = freshState();
    const image = join(root, 'templated.ext4');
    const tree = join(root, 'templated-tree');
    mkdirSync(join(tree, 'root'), { recursive: true, mode: 0o700 });
    writeFileSync(join(tree, 'root', '.profile'), 'first\n');
    await mkfsFrom(tree, image, '24M');
    const h = open(dir);
    addImage(h.store, 'templated', image);
    const entries = () => readdirSync(join(dir, 'work-templates')).sort();
    const templates = () => entries().filter((n) => n.endsWith('.ext4'));
    const a = await h.service.create({ name: 'ta', image: 'templated', noStart: true });
    expect(templates()).toHaveLength(1);
    // After a create, a spare copy of the template is made in the background; the next create renames it
    // into place (no copy on its path): b's work disk is that very file.
    const spare = join(dir, 'work-templates', `${templates()[0]}.spare`);
    await waitUntil(() => existsSync(spare), 60_000);
    const spareInode = statSync(spare).ino;
    const b = await h.service.create({ name: 'tb', image: 'templated', noStart: true });
    expect(statSync(vmPaths(h.deps.vmsDir, b.id).workDisk).ino).toBe(spareInode);
    expect(templates()).toHaveLength(1);
    const profile = async (id: string) =>
      (await runner.run(['debugfs', '-R', 'cat /.profile', vmPaths(h.deps.vmsDir, id).workDisk])).stdout;
    expect(await profile(a.id)).toBe('first\n');
    expect(await profile(b.id)).toBe('first\n');
    // A VM's disk is its own: a write to one is not in the other, nor in the template.
    await runner.run(['debugfs', '-w', '-R', 'rm /.profile', vmPaths(h.deps.vmsDir, a.id).workDisk]);
    expect(await profile(b.id)).toBe('first\n');
    const old = templates();
    await waitUntil(() => existsSync(spare), 60_000);
    // The image is rebuilt with another /root: the next VM gets it, and the old template is gone, its spare too.
    writeFileSync(join(tree, 'root', '.profile'), 'second\n');
    await mkfsFrom(tree, image, '25M');
    const c = await h.service.create({ name: 'tc', image: 'templated', noStart: true });
    expect(await profile(c.id)).toBe('second\n');
    expect(templates()).toHaveLength(1);
    expect(templates()).not.toEqual(old);
    expect(entries().filter((n) => n.startsWith(old[0] as string))).toEqual([]);
    for (const vm of [a, b, c]) await h.service.delete(vm.id);
    await wipe(h);
  });

  it('removes the work-disk template and its spare of an image removed or rebuilt, at once and at the next start', async () => {
    const dir = freshState();
    const image = join(root, 'pruned.ext4');
    const tree = join(root, 'pruned-tree');
    mkdirSync(join(tree, 'root'), { recursive: true, mode: 0o700 });
    await mkfsFrom(tree, image, '24M');
    let h = open(dir);
    addImage(h.store, 'pruned', image);
    const entries = () => readdirSync(join(dir, 'work-templates')).sort();
    const vm = await h.service.create({ name: 'pa', image: 'pruned', noStart: true });
    const [template] = entries().filter((n) => n.endsWith('.ext4'));
    await waitUntil(() => entries().includes(`${template}.spare`), 60_000);
    // tiny's template stays; nothing of a live image goes.
    const tiny = await h.service.create({ name: 'pt', image: 'tiny', noStart: true });
    await waitUntil(() => entries().filter((n) => n.endsWith('.spare')).length === 2, 60_000);
    expect(await h.service.pruneWorkTemplates()).toEqual([]);

    // Rebuilt with no VM made since: the old template and its spare go at the next daemon start.
    await mkfsFrom(tree, image, '25M');
    await h.service.delete(vm.id);
    await h.close();
    h = open(dir);
    await h.service.reconcile();
    expect(entries().filter((n) => n.startsWith(template as string))).toEqual([]);
    expect(entries().filter((n) => n.startsWith('img-tiny-'))).toHaveLength(2);

    // Removed: what the new rootfs's create made (template and spare) goes with it.
    const again = await h.service.create({ name: 'pb', image: 'pruned', noStart: true });
    await waitUntil(() => entries().filter((n) => n.endsWith('.spare')).length === 2, 60_000);
    await h.service.delete(again.id);
    const id = h.store.images.getByName('pruned').id;
    h.store.images.delete(id);
    const removed = await h.service.pruneWorkTemplates();
    expect(removed.sort()).toEqual([expect.stringMatching(/\.ext4$/), expect.stringMatching(/\.spare$/)]);
    expect(entries().filter((n) => n.startsWith(id))).toEqual([]);
    expect(entries().filter((n) => n.startsWith('img-tiny-'))).toHaveLength(2);
    await h.service.delete(tiny.id);
    await wipe(h);
  });

  it("seeds the work disk from the image's /root, and never from the host when /root is a symlink", async () => {
    const dir = freshState();
    const tree = join(root, 'hostile-tree');
    mkdirSync(tree, { recursive: true });
    symlinkSync('/etc', join(tree, 'root')); // a hostile image: its /root points at the host's /etc
    const hostile = join(root, 'hostile.ext4');
    await runner.run(['truncate', '-s', '24M', hostile]);
    await runner.run(['mkfs.ext4', '-F', '-q', '-d', tree, hostile]);
    const h = open(dir);
    addImage(h.store, 'hostile', hostile);
    const vm = await h.service.create({ name: 'hostile', image: 'hostile', noStart: true });
    const listing = (await runner.run(['debugfs', '-R', 'ls -l /', vmPaths(h.deps.vmsDir, vm.id).workDisk]))
      .stdout;
    expect(listing).toContain('.banger-seeded');
    expect(listing).not.toContain('passwd');
    await h.service.delete(vm.id);
    await wipe(h);
  });

  it('never writes a host file from a crafted /root (a symlink, then a second entry of its name)', async () => {
    // The reproduction: vm create --no-start on an image whose /root/aaaa -> a 0600 host file, plus
    // a regular file linked in as a second "aaaa". The seed is refused; the guest seeds the disk instead.
    const dir = freshState();
    const victim = join(root, 'victim-secret');
    writeFileSync(victim, 'host secret\n', { mode: 0o600 });
    const tree = join(root, 'dup-tree');
    mkdirSync(join(tree, 'root'), { recursive: true });
    mkdirSync(join(tree, 'src'), { recursive: true });
    symlinkSync(victim, join(tree, 'root', 'aaaa'));
    writeFileSync(join(tree, 'src', 'aaaa'), 'PWNED\n', { mode: 0o644 });
    const evil = join(root, 'evil.ext4');
    await mkfsFrom(tree, evil, '24M');
    await debugfsWrite(evil, 'ln /src/aaaa /root');
    const h = open(dir);
    addImage(h.store, 'evil', evil);
    const vm = await h.service.create({ name: 'evil', image: 'evil', noStart: true });
    expect(readFileSync(victim, 'utf8')).toBe('host secret\n');
    expect(statSync(victim).mode & 0o777).toBe(0o600);
    const listing = (await runner.run(['debugfs', '-R', 'ls -l /', vmPaths(h.deps.vmsDir, vm.id).workDisk]))
      .stdout;
    expect(listing).not.toContain('.banger-seeded');
    expect(listing).not.toContain('aaaa');
    await h.service.delete(vm.id);
    await wipe(h);
  });

  it('generates DNS-label names and refuses a taken one', async () => {
    const h = open(freshState());
    const a = await h.service.create({ image: 'tiny', noStart: true });
    expect(a.name).toMatch(/^[a-z]+-[a-z]+(-\d+)?$/);
    expect(a.state).toBe('created');
    await expect(h.service.create({ name: a.name, image: 'tiny' })).rejects.toMatchObject({
      code: 'already_exists',
    });
    await expect(h.service.create({ name: 'Bad_Name', image: 'tiny' })).rejects.toMatchObject({
      code: 'bad_request',
    });
    await expect(h.service.stop('nope')).rejects.toMatchObject({ code: 'not_found' });
    await wipe(h);
  });

  it('four VMs started concurrently get distinct names, IPs and taps, and all clean up', async () => {
    const h = open(freshState());
    const vms = await Promise.all([0, 1, 2, 3].map(() => h.service.create({ image: 'tiny' })));
    const distinct = (f: (v: VM) => unknown) => new Set(vms.map(f)).size;
    expect(distinct((v) => v.name)).toBe(4);
    expect(distinct((v) => v.runtime.guestIp)).toBe(4);
    expect(distinct((v) => JSON.stringify(v.runtime.identities.find((i) => i.kind === 'tap')))).toBe(4);
    expect(vms.every((v) => v.state === 'running')).toBe(true);
    await assertConsistent(h);
    await wipe(h);
  });

  it.each([
    ['is killed by a signal', 'SIGKILL', 'VMM exited (SIGKILL)'],
    ['exits with a non-zero code', 'SIGUSR1', `VMM exited (code ${STANDIN_CRASH_CODE})`],
  ] as const)(
    'a VMM that %s is torn down and the VM left in error, naming it',
    async (_, signal, lastError) => {
      const h = open(freshState());
      const vm = await h.service.create({ name: 'dies', image: 'tiny' });
      const proc = vm.runtime.identities.find((i) => i.kind === 'process') as unknown as { pid: number };
      process.kill(proc.pid, signal);
      await waitUntil(() => h.store.vms.findById(vm.id)?.state !== 'running');
      // What lasts as long as the VM: its IP and vsock CID leases and its two disk files.
      await waitUntil(() => (h.store.vms.findById(vm.id)?.runtime.identities.length ?? 0) <= 4);
      const after = h.store.vms.findById(vm.id);
      expect(after?.state).toBe('error');
      expect(after?.runtime.lastError).toBe(lastError);
      expect(h.service.get('dies').state).toBe('error');
      await assertConsistent(h);
      await wipe(h);
    },
  );

  it('a restarted service adopts a live VM and cleans one whose VMM is gone', async () => {
    const dir = freshState();
    const first = open(dir);
    const live = await first.service.create({ name: 'stays', image: 'tiny', nat: true });
    const dead = await first.service.create({ name: 'gone', image: 'tiny' });
    await first.close(); // like a daemon exit: VMs keep running
    const deadPid = (dead.runtime.identities.find((i) => i.kind === 'process') as unknown as { pid: number })
      .pid;
    process.kill(deadPid, 'SIGKILL');
    await waitUntil(() => gone(deadPid));

    const second = open(dir);
    const report = await second.service.reconcile();
    expect(report.adopted).toEqual(['stays']);
    expect(report.cleaned).toEqual(['gone']);
    expect(second.store.vms.findById(live.id)?.state).toBe('running');
    expect(second.store.vms.findById(dead.id)?.state).toBe('stopped');
    await assertConsistent(second);
    // The adopted VM is fully manageable.
    expect((await second.service.stop('stays')).state).toBe('stopped');
    await wipe(second);
  });
});

describe('exec through the real agent (run on the host as the stand-in guest)', () => {
  const agent = agentBinaryPath();
  const skip = !existsSync(agent) ? `agent not built (${agent}); npm run build` : undefined;
  it.skipIf(skip)(
    'streams stdout and stderr, returns the exit code, applies the image Env and WorkingDir',
    async () => {
      const dir = freshState();
      const h = buildVmHarness({
        stateDir: dir,
        netns: ns,
        bridge,
        bridgeIp,
        vmm: createStandinVmm(runner, ns, { agentBinary: agent }),
        guest: hostAgentGuest(),
      });
      const vm = await h.service.create({ name: 'execy', image: 'tiny' });
      const collect = () => {
        const chunks: Buffer[] = [];
        const stream = new PassThrough();
        stream.on('data', (d: Buffer) => chunks.push(d));
        return { stream, text: () => Buffer.concat(chunks).toString() };
      };
      const out = collect();
      const err = collect();
      const r = await h.service.exec(
        'execy',
        {
          argv: ['sh', '-c', 'echo hi; echo "$FOO $BAR $(pwd)"; echo oops >&2; exit 3'],
          env: { BAR: 'mine' },
        },
        { stdout: out.stream, stderr: err.stream },
      );
      expect(r).toEqual({ exitCode: 3, signal: null });
      expect(out.text()).toBe('hi\nfrom-image mine /tmp\n');
      expect(err.text()).toBe('oops\n');
      await expect(
        h.service
          .exec(vm.id, { argv: ['true'] }, { stdout: out.stream, stderr: err.stream })
          .then(() =>
            h.service
              .stop(vm.id)
              .then(() =>
                h.service.exec(vm.id, { argv: ['true'] }, { stdout: out.stream, stderr: err.stream }),
              ),
          ),
      ).rejects.toMatchObject({ code: 'not_running' });
      await wipe(h);
    },
  );
});

/** A guest that never answers on its agent channel; like the real client it honours the wait's bound and cancel. */
const silentGuest: Guest = {
  waitForAgent: (_endpoint, { timeoutMs, signal }) =>
    new Promise((_resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          reject(signal.reason);
        },
        { once: true },
      );
    }),
};

/** The stand-in VMM whose guest powers off during boot (no init, a panic), after a last word on its console. */
function poweringOff(lastWord: string): VmmPort {
  const base = createStandinVmm(runner, ns);
  return {
    ...base,
    async start(spec, opts) {
      const instance = await base.start(spec, opts);
      appendFileSync(instance.consoleLogPath, `${lastWord}\n`);
      void instance.kill();
      return instance;
    },
  };
}

/** Collects what a command writes. */
function collected() {
  const chunks: Buffer[] = [];
  const stream = new PassThrough();
  stream.on('data', (d: Buffer) => chunks.push(d));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

describe('vm run as one service operation', () => {
  it('runs the command through the real agent, returns its exit code and output, and --rm deletes the VM', async () => {
    const h = buildVmHarness({
      stateDir: freshState(),
      netns: ns,
      bridge,
      bridgeIp,
      vmm: createStandinVmm(runner, ns, { agentBinary: agentBinaryPath() }),
      guest: hostAgentGuest(),
    });
    const out = collected();
    const err = collected();
    const r = await h.service.run(
      {
        create: { name: 'runner', image: 'tiny' },
        exec: { argv: ['sh', '-c', 'echo hi; echo "$FOO" >&2; exit 3'] },
        rm: true,
      },
      { stdout: out.stream, stderr: err.stream },
    );
    expect(r.exit).toEqual({ exitCode: 3, signal: null });
    expect(r.deleted).toBe(true);
    expect(r.vm.name).toBe('runner');
    expect(out.text()).toBe('hi\n');
    expect(err.text()).toBe('from-image\n');
    expect(h.store.vms.list()).toEqual([]);
    expect(existsSync(vmPaths(h.deps.vmsDir, r.vm.id).dir)).toBe(false);
    await wipe(h);
  });

  it('a boot that failed comes back typed (code, VM, console log) and the VM is kept, also with --rm', async () => {
    const h = buildVmHarness({
      stateDir: freshState(),
      netns: ns,
      bridge,
      bridgeIp,
      vmm: poweringOff('Kernel panic - not syncing: no init found'),
      guest: silentGuest,
    });
    const io = { stdout: new PassThrough(), stderr: new PassThrough() };
    const kept = await h.service
      .run({ create: { name: 'nope-rm', image: 'tiny' }, exec: { argv: ['true'] }, rm: true }, io)
      .catch((e: unknown) => e);
    expect(kept).toBeInstanceOf(BootFailedError);
    const failure = kept as BootFailedError;
    expect(failure.code).toBe('boot_failed');
    const vm = h.store.vms.findByName('nope-rm');
    expect(vm?.state).toBe('error');
    expect(failure.boot).toEqual({
      vmId: vm?.id,
      vmName: 'nope-rm',
      logPath: h.service.logPath('nope-rm'),
      keptDespiteRm: true,
    });
    expect(readFileSync(failure.boot.logPath, 'utf8')).toContain('no init found');
    expect(failure.hint).toContain('banger vm delete nope-rm');

    // Without --rm the same failure, with nothing kept "despite" anything; the type survives the wire.
    const plain = await h.service
      .run({ create: { name: 'nope', image: 'tiny' }, exec: { argv: ['true'] } }, io)
      .catch((e: unknown) => e);
    const wired = errorFromWire(JSON.parse(JSON.stringify(errorToWire(plain as BootFailedError))));
    expect(wired).toBeInstanceOf(BootFailedError);
    expect((wired as BootFailedError).boot).toMatchObject({ vmName: 'nope', keptDespiteRm: false });
    expect(h.store.vms.findByName('nope')?.state).toBe('error');
    await assertConsistent(h);
    await wipe(h);
  });

  it('a workspace that is not there is refused before any VM is made', async () => {
    const h = open(freshState());
    const io = { stdout: new PassThrough(), stderr: new PassThrough() };
    await expect(
      h.service.run(
        {
          create: { name: 'nows', image: 'tiny' },
          exec: { argv: ['true'] },
          workspace: { path: join(root, 'missing') },
          rm: true,
        },
        io,
      ),
    ).rejects.toMatchObject({ code: 'bad_request', message: expect.stringContaining('does not exist') });
    expect(h.store.vms.list()).toEqual([]);
    await wipe(h);
  });

  it('the workspace lands where the command runs (real agent), and --rm deletes a VM whose copy failed', async () => {
    const ws = join(root, 'ws-repo');
    mkdirSync(join(ws, 'src'), { recursive: true });
    writeFileSync(join(ws, 'src', 'a.txt'), 'tracked\n');
    writeFileSync(join(ws, '.gitignore'), 'build/\n');
    mkdirSync(join(ws, 'build'));
    writeFileSync(join(ws, 'build', 'out.o'), 'ignored');
    const git = (...args: string[]) =>
      runner.run(['git', '-C', ws, '-c', 'user.name=t', '-c', 'user.email=t@e', ...args]);
    await git('init', '-q', '-b', 'main');
    await git('add', '.');
    await git('commit', '-q', '-m', 'one');
    writeFileSync(join(ws, 'new.txt'), 'untracked\n');
    const guestDir = join(root, 'guest-repo');
    const harness = (workspaceDir: string) =>
      buildVmHarness({
        stateDir: freshState(),
        netns: ns,
        bridge,
        bridgeIp,
        vmm: createStandinVmm(runner, ns, { agentBinary: agentBinaryPath() }),
        guest: hostAgentGuest(),
        workspaceDir,
      });
    const h = harness(guestDir);
    const out = collected();
    const r = await h.service.run(
      {
        create: { name: 'wsrun', image: 'tiny' },
        exec: { argv: ['sh', '-c', 'pwd; git status --porcelain; ls build 2>&1 || true'] },
        workspace: { path: ws, branch: 'feature' },
        rm: true,
      },
      { stdout: out.stream, stderr: new PassThrough() },
    );
    expect(r.exit).toEqual({ exitCode: 0, signal: null });
    const [pwd, ...rest] = out.text().trim().split('\n');
    expect(pwd).toBe(guestDir);
    expect(rest[0]).toBe('?? new.txt');
    expect(rest[1]).toMatch(/No such file/); // ignored: not copied
    expect(r.workspace).toMatchObject({
      guestDir,
      branch: 'feature',
      baseCommit: expect.stringMatching(/^[0-9a-f]{40}$/),
    });
    expect((await runner.run(['git', '-C', guestDir, 'branch', '--show-current'])).stdout.trim()).toBe(
      'feature',
    );
    expect(h.store.vms.list()).toEqual([]);
    await wipe(h);

    // A guest that cannot take the workspace fails the run after the boot: --rm removes the VM.
    const blocked = join(root, 'a-file');
    writeFileSync(blocked, '');
    const h2 = harness(join(blocked, 'repo'));
    await expect(
      h2.service.run(
        {
          create: { name: 'wsfail', image: 'tiny' },
          exec: { argv: ['true'] },
          workspace: { path: ws },
          rm: true,
        },
        { stdout: new PassThrough(), stderr: new PassThrough() },
      ),
    ).rejects.toMatchObject({ code: 'operation_failed' });
    expect(h2.store.vms.list()).toEqual([]);
    await wipe(h2);
  });

  it('a signal forwarded before the command runs cancels the run and keeps nothing, even without --rm', async () => {
    const h = buildVmHarness({ stateDir: freshState(), netns: ns, bridge, bridgeIp, guest: silentGuest });
    const control = new EventEmitter();
    const stages: string[] = [];
    const pending = h.service.run(
      { create: { name: 'interrupted', image: 'tiny' }, exec: { argv: ['true'] } },
      { stdout: new PassThrough(), stderr: new PassThrough() },
      { control, progress: (e) => e.kind === 'stage' && stages.push(e.stage) },
    );
    await waitUntil(() => stages.includes('agent'));
    control.emit('signal', 'INT');
    await expect(pending).rejects.toMatchObject({
      code: 'cancelled',
      message: expect.stringContaining('interrupted by SIGINT'),
    });
    expect(h.store.vms.list()).toEqual([]);
    await wipe(h);
  });

  it('without a command the VM is left running for the caller, --rm or not', async () => {
    const h = open(freshState());
    const r = await h.service.run(
      { create: { name: 'attach', image: 'tiny' }, rm: true },
      { stdout: new PassThrough(), stderr: new PassThrough() },
    );
    expect(r.exit).toBeUndefined();
    expect(r.deleted).toBe(false);
    expect(h.store.vms.findByName('attach')?.state).toBe('running');
    await assertConsistent(h);
    await wipe(h);
  });
});

/** Runs the service in a child process and SIGKILLs it when it reaches `pauseAt`. */
function crashAt(
  stateDir: string,
  action: 'create' | 'stop' | 'delete' | 'delete-nowait',
  pauseAt: string | undefined,
  nat = true,
): Promise<void> {
  return crashWorker({ stateDir, netns: ns, bridge, bridgeIp, action, name: 'crashy', nat, pauseAt });
}

const CREATE_STAGES = ['ip', 'cid', 'tap', 'nat', 'root-disk', 'work-disk', 'vmm', 'ready'];

describe('crash safety: SIGKILL at each checkpoint, then reconcile', () => {
  for (const variant of ['intact', 'handles deleted', 'handles corrupt'] as const) {
    const damage = (h: VmHarness) => {
      for (const vm of h.store.vms.list()) {
        const p = vmPaths(h.deps.vmsDir, vm.id).handles;
        if (variant === 'handles deleted') rmSync(p, { force: true });
        if (variant === 'handles corrupt' && existsSync(p)) writeFileSync(p, '{"vmId": "x", "identi');
      }
    };
    const stages = variant === 'intact' ? CREATE_STAGES : ['nat', 'vmm'];
    for (const stage of stages) {
      it(`create killed after ${stage} (${variant})`, async () => {
        const dir = freshState();
        await crashAt(dir, 'create', stage);
        const h = open(dir);
        damage(h);
        await h.service.reconcile();
        await assertConsistent(h);
        const vm = h.store.vms.findByName('crashy');
        // Once the VMM runs and its handles are written, reconcile adopts it; without handles it cannot.
        const adoptable = (stage === 'vmm' || stage === 'ready') && variant === 'intact';
        if (adoptable) expect(vm?.state).toBe('running');
        else expect(vm?.state).not.toBe('running');
        await wipe(h);
      });
    }
  }

  it('a delete that answered before its teardown, killed mid-teardown: nothing is left after the next start', async () => {
    const dir = freshState();
    await crashAt(dir, 'create', undefined);
    await crashAt(dir, 'delete-nowait', 'destroyed-identities');
    // It had answered (the VM `deleting`) before the kill, which came in the background teardown.
    expect(readFileSync(join(dir, 'answered'), 'utf8')).toBe('deleting');
    const h = open(dir);
    expect(h.store.vms.findByName('crashy')?.state).toBe('deleting');
    const report = await h.service.reconcile();
    expect(report.finishedDeletes).toContain('crashy');
    expect(h.store.vms.list()).toEqual([]);
    await assertConsistent(h);
    await wipe(h);
  });

  for (const [action, stage] of [
    ['stop', 'stopped-vmm'],
    ['delete', 'stopped-vmm'],
    ['delete', 'destroyed-identities'],
  ] as const) {
    it(`${action} killed after ${stage}`, async () => {
      const dir = freshState();
      await crashAt(dir, 'create', undefined);
      await crashAt(dir, action, stage);
      const h = open(dir);
      const report = await h.service.reconcile();
      await assertConsistent(h);
      if (action === 'delete') {
        expect(h.store.vms.list()).toEqual([]);
        expect(report.finishedDeletes).toContain('crashy');
      } else {
        expect(h.store.vms.findByName('crashy')?.state).toBe('stopped');
      }
      await wipe(h);
    });
  }
});
