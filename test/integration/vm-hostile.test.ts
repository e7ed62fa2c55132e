/**
 * The hostile corpus of the VM service's teardown: records and processes that banger did not make, or that
 * someone edited, must never steer what banger kills or removes. Real parts throughout: the service over a
 * SQLite store, taps in a namespace this file creates, a stand-in VMM that is a real detached process, and
 * real bystander processes (one of uid 65534) that must outlive every delete and reconcile.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { vmPaths } from '../../src/daemon/services/vms/index.js';
import { processExited, processStartTime } from '../../src/host/index.js';
import { waitUntil } from '../fixtures/banger-instance.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { crashWorker } from '../fixtures/vm-crash.js';
import { addImage, buildVmHarness, type VmHarness } from '../fixtures/vm-harness.js';

const fx = createNetnsFixture();
const runner = fx.runner;
const bridge = `br-fc-${fx.id.slice(6)}`;
const bridgeIp = '172.30.0.1';
let ns: string;
let root: string;
let imagePath: string;
let n = 0;
const bystanders: ChildProcess[] = [];
const harnesses: VmHarness[] = [];

beforeAll(async () => {
  ns = await fx.createNetns('hostile');
  root = realpathSync(await fx.tempDir());
  imagePath = join(root, 'tiny.ext4');
  await runner.run(['truncate', '-s', '24M', imagePath]);
  await runner.run(['mkfs.ext4', '-F', '-q', imagePath]);
});

afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.discard().catch(() => {});
  for (const c of bystanders.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

/** Every state dir of this file is one banger instance (one link mark), so they share the file's bridge. */
const instanceId = randomBytes(16).toString('hex');

/** The service over a fresh (or given) state dir, its warnings collected. */
function open(stateDir = join(root, `s${n++}`)): { h: VmHarness; stateDir: string; warnings: string[] } {
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
  const h = buildVmHarness({ stateDir, netns: ns, bridge, bridgeIp, log, instanceId });
  addImage(h.store, 'tiny', imagePath);
  harnesses.push(h);
  return { h, stateDir, warnings };
}

/** Closes a harness as a daemon exit does: VMs keep running. */
async function closeHarness(h: VmHarness): Promise<void> {
  harnesses.splice(harnesses.indexOf(h), 1);
  await h.close();
}

/**
 * A process that is not a VMM of ours, with `args` in its argv (node: `sleep` refuses arguments that are
 * not numbers). `asNobody` runs it as uid 65534 through setpriv, which execs it in place.
 */
async function bystander(args: string[], asNobody = false): Promise<{ pid: number; startTime: number }> {
  const argv = [process.execPath, '-e', 'setTimeout(() => {}, 600000)', ...args];
  const child = runner.spawn(
    asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv,
  );
  bystanders.push(child);
  const pid = child.pid as number;
  const node = realpathSync(process.execPath);
  await waitUntil(() => {
    try {
      return readlinkSync(`/proc/${pid}/exe`) === node;
    } catch {
      return false;
    }
  });
  return { pid, startTime: processStartTime(pid) as number };
}

const alive = (p: { pid: number; startTime: number }) => !processExited(p.pid, p.startTime);

describe('processes banger did not start', () => {
  it('a process of uid 65534, and one of ours, naming a VM run dir in their argv survive reconcile and delete', async () => {
    const { h, stateDir } = open();
    const idle = await h.service.create({ name: 'idle', image: 'tiny', noStart: true });
    const live = await h.service.create({ name: 'live', image: 'tiny' });
    const vmmPid = (live.runtime.identities.find((i) => i.kind === 'process') as { pid: number }).pid;
    const nobody = await bystander([join(vmPaths(h.deps.vmsDir, idle.id).run, 'x')], true);
    const ours = await bystander([`${vmPaths(h.deps.vmsDir, live.id).run}/qmp.sock`]);
    expect(readFileSync(`/proc/${nobody.pid}/status`, 'utf8')).toMatch(/^Uid:\s+65534\s/m);

    // A daemon start: reconcile looks at every VM, the idle one included.
    await closeHarness(h);
    const again = open(stateDir).h;
    await again.service.reconcile();
    expect(alive(nobody) && alive(ours)).toBe(true);

    await again.service.delete('idle');
    await again.service.delete('live');
    expect(again.store.vms.list()).toEqual([]);
    await waitUntil(() => processExited(vmmPid, processStartTime(vmmPid) ?? -1));
    expect(alive(nobody), 'uid 65534 bystander').toBe(true);
    expect(alive(ours), 'bystander of ours').toBe(true);
  });
});

describe('edited handles.json and store mirror', () => {
  it('a process identity pointing at another live program of ours (right pid and start time) is not signalled', async () => {
    const { h, stateDir, warnings } = open();
    const vm = await h.service.create({ name: 'forged', image: 'tiny' });
    const handlesPath = vmPaths(h.deps.vmsDir, vm.id).handles;
    const real = vm.runtime.identities.find((i) => i.kind === 'process');
    if (real?.kind !== 'process') throw new Error('no process identity');
    await closeHarness(h);
    process.kill(real.pid, 'SIGKILL'); // the VMM dies with the daemon away: reconcile will tear down
    await waitUntil(() => processExited(real.pid, real.startTime));

    // Pid reuse, faked: the record now names live programs of ours. One runs the same executable (node)
    // without the VMM's argument; one holds the argument whole but runs another executable (sh).
    const sameExe = await bystander(['/tmp/not-the-vm']);
    const shell = runner.spawn(['/bin/sh', '-c', 'while :; do sleep 1; done', real.arg]);
    bystanders.push(shell);
    const sameArg = { pid: shell.pid as number, startTime: processStartTime(shell.pid as number) as number };
    const handles = JSON.parse(readFileSync(handlesPath, 'utf8'));
    handles.identities = handles.identities.flatMap((i: { kind: string }) =>
      i.kind === 'process'
        ? [
            { ...real, ...sameExe },
            { ...real, ...sameArg },
          ]
        : [i],
    );
    delete handles.vmm;
    writeFileSync(handlesPath, JSON.stringify(handles));

    const again = open(stateDir);
    const report = await again.h.service.reconcile();
    expect(report.cleaned).toEqual(['forged']);
    expect(alive(sameExe), 'same executable, other argv').toBe(true);
    expect(alive(sameArg), 'same argument, other executable').toBe(true);
    expect(again.warnings.join('\n')).toMatch(/not the recorded process: its argv has no argument/);
    expect(again.warnings.join('\n')).toMatch(/not the recorded process: its executable is/);
    await again.h.service.delete('forged');
    expect(alive(sameExe) && alive(sameArg)).toBe(true);
    expect(warnings).toEqual([]);
  });

  for (const where of ['handles.json', 'store mirror'] as const) {
    it(`malformed identities and file identities outside the VM dir (${where}) are refused; their targets survive`, async () => {
      const { h, stateDir } = open();
      const vm = await h.service.create({ name: 'files', image: 'tiny', noStart: true });
      const paths = vmPaths(h.deps.vmsDir, vm.id);
      const victim = await bystander(['/tmp/victim']);
      // Files outside the VM's directory: up and out with '..', elsewhere in the state dir, through a symlink.
      const outside = join(stateDir, 'outside');
      mkdirSync(outside);
      for (const f of ['dotdot', 'absolute', 'through-link']) writeFileSync(join(outside, f), f);
      symlinkSync(outside, join(paths.dir, 'escape'));
      const hostile = [
        { kind: 'file', path: `${paths.dir}/../../outside/dotdot` },
        { kind: 'file', path: join(outside, 'absolute') },
        { kind: 'file', path: join(stateDir, 'banger.db') },
        { kind: 'file', path: join(paths.dir, 'escape', 'through-link') },
        { kind: 'file', path: 'relative/work.ext4' },
        { kind: 'process', pid: victim.pid },
        { kind: 'process', pid: victim.pid, startTime: victim.startTime },
        { kind: 'pidfile', path: join(outside, 'vmm.pid'), arg: 'x' },
        { kind: 'bogus', path: join(outside, 'absolute') },
        { kind: 'tap' },
      ];
      await closeHarness(h);
      const raw = new (await import('better-sqlite3')).default(join(stateDir, 'banger.db'));
      if (where === 'handles.json') {
        const handles = JSON.parse(readFileSync(paths.handles, 'utf8'));
        handles.identities.push(...hostile);
        writeFileSync(paths.handles, JSON.stringify(handles));
      } else {
        writeFileSync(paths.handles, '{"vmId": "x", "identi'); // corrupt: the mirror is used
        const row = raw.prepare('SELECT runtime_json FROM vms WHERE id = ?').get(vm.id) as {
          runtime_json: string;
        };
        const runtime = JSON.parse(row.runtime_json);
        runtime.identities.push(...hostile);
        raw.prepare('UPDATE vms SET runtime_json = ? WHERE id = ?').run(JSON.stringify(runtime), vm.id);
      }
      raw.close();

      const again = open(stateDir);
      await again.h.service.reconcile();
      await again.h.service.delete('files');
      expect(again.h.store.vms.list()).toEqual([]);
      expect(existsSync(paths.dir)).toBe(false);
      for (const f of ['dotdot', 'absolute', 'through-link'])
        expect(readFileSync(join(outside, f), 'utf8'), f).toBe(f);
      expect(existsSync(join(stateDir, 'banger.db'))).toBe(true);
      expect(alive(victim)).toBe(true);
      const log = again.warnings.join('\n');
      // Every hostile entry was refused with its reason (the symlink one at teardown, once resolved).
      expect(log).toMatch(/refused/);
      expect(log).toContain('through-link');
      expect(log).toMatch(/outside/);
      expect(log).toMatch(/startTime/);
    });
  }
});

describe('a VMM spawned but never recorded (the daemon died in between)', () => {
  for (const jailedArgv of [false, true]) {
    const how = jailedArgv ? 'argv without the run dir, as a jailed Firecracker' : 'argv naming its run dir';
    it(`is found through its pidfile and torn down at reconcile (${how})`, async () => {
      const stateDir = join(root, `s${n++}`);
      open(stateDir); // the image row
      await closeHarness(harnesses[harnesses.length - 1] as VmHarness);
      await crashWorker({
        stateDir,
        netns: ns,
        bridge,
        bridgeIp,
        action: 'create',
        name: 'orphan',
        pauseAt: 'vmm-spawned',
        jailedArgv,
      });
      const { h } = open(stateDir);
      const vm = h.store.vms.findByName('orphan');
      if (!vm) throw new Error('no VM row');
      const pidFile = join(vmPaths(h.deps.vmsDir, vm.id).run, 'vmm.pid');
      const [pid, startTime] = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number) as [
        number,
        number,
      ];
      expect(alive({ pid, startTime }), 'the spawned VMM runs on after the crash').toBe(true);
      expect(vm.runtime.identities.filter((i) => i.kind === 'process')).toEqual([]);

      const report = await h.service.reconcile();
      expect(report.errors).toEqual([]);
      await waitUntil(() => processExited(pid, startTime));
      const after = h.store.vms.findById(vm.id);
      expect(after?.state).not.toBe('running');
      expect(
        after?.runtime.identities.filter((i) => i.kind !== 'file' && i.kind !== 'ip' && i.kind !== 'cid'),
      ).toEqual([]);
      await h.service.delete('orphan');
    });
  }
});
