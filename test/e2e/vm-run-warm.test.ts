/**
 * `vm run` from a snapshot and from the image's warm template, end to end under QEMU TCG: the built CLI, a
 * real daemon, the test kernel + banger's initramfs, the busybox guest root with the agent (the same set-up
 * as backend-contract.test.ts). The warm run must print what the cold one printed and exit the same way;
 * --cold boots; a changed spec or rootfs does not use the stale template (which a newer one replaces);
 * --from-snapshot restores with its own identity, and each of its refusals (missing, tampered, another QEMU,
 * kernel or machine type) leaves no VM. Bridge, taps and leases live in a namespace this file creates;
 * nothing may be left behind.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBinaryPath } from '../../src/guest/index.js';
import {
  type BangerInstance,
  createInstance,
  processAlive,
  REPO_ROOT,
  waitUntil,
} from '../fixtures/banger-instance.js';
import { buildGuestRoot, registerImage, writeInstanceConfig } from '../fixtures/guest-root.js';
import { ensureTestKernel } from '../fixtures/kernel.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

type CliResult = { stdout: string; stderr: string; exitCode: number };
interface ShownVm {
  name: string;
  createdBy?: string;
  runtime: { guestIp?: string; forkOf?: { snapshotName: string } };
}
interface Template {
  name: string;
  spec: { memoryMib: number };
}

const fx = createNetnsFixture();
// Under TCG a template is a whole cold boot plus a memory save: generous, the host is shared.
const TEMPLATE_WAIT_MS = 420_000;
const COMMAND = ['sh', '-c', 'echo out; echo err >&2; cat /etc/hostname >/dev/null; ls / | wc -l; exit 3'];

describe('vm run: --from-snapshot and warm templates under QEMU TCG', () => {
  let inst: BangerInstance;
  let ns: string;
  let rootfs: string;
  const vmsDir = () => join(inst.home, 'state', 'vms');
  const cli = async (args: string[]): Promise<CliResult> => {
    const r = await inst.cli(args);
    return r;
  };
  const config = (warm: boolean) =>
    writeInstanceConfig(inst.home, ns, fx.id.slice(6), [`warm_templates = ${warm}`]);
  const templates = async (): Promise<Template[]> => {
    const r = await cli(['image', 'show', 'guest', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { warmTemplates: Template[] }).warmTemplates;
  };
  const vms = async (): Promise<ShownVm[]> => JSON.parse((await cli(['vm', 'list', '--json'])).stdout);
  const show = async (name: string): Promise<ShownVm> => {
    const r = await cli(['vm', 'show', name, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as ShownVm;
  };
  /** Waits until no template is being made (no throwaway VM) and `check` holds. */
  const settled = async (check: (t: Template[]) => boolean) =>
    waitUntil(
      async () => (await vms()).every((v) => v.createdBy !== 'banger-warm') && check(await templates()),
      TEMPLATE_WAIT_MS,
    );
  const editSnapshot = (name: string, path: string, value: string) => {
    const db = new Database(join(inst.home, 'state', 'banger.db'));
    try {
      db.prepare('UPDATE snapshots SET meta_json = json_set(meta_json, ?, ?) WHERE name = ?').run(
        path,
        value,
        name,
      );
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    if (!existsSync(agentBinaryPath())) throw new Error(`the agent is not built (${agentBinaryPath()})`);
    if (!existsSync(join(REPO_ROOT, 'dist'))) throw new Error('the CLI is not built: npm run build');
    ns = await fx.createNetns('wr');
    inst = createInstance();
    await mkdir(join(inst.home, 'config'), { recursive: true });
    await mkdir(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
    const kernel = await ensureTestKernel();
    rootfs = await buildGuestRoot(fx.runner, await fx.tempDir());
    config(true);
    registerImage(inst.home, {
      name: 'guest',
      rootfsPath: rootfs,
      kernelPath: kernel.kernelPath,
      initrdPath: kernel.initrdPath,
    });
  });

  afterAll(async () => {
    if (inst) {
      for (const vm of await vms().catch(() => [])) await cli(['vm', 'delete', vm.name]);
      await cli(['daemon', 'stop']);
      const left = await processesNaming(vmsDir());
      for (const p of left) process.kill(p.pid, 'SIGKILL');
      await inst.cleanup();
      expect(left).toEqual([]);
    }
    await fx.cleanup();
    await fx.assertNoLeftovers();
  });

  it('a cold run makes the template afterwards; the warm run prints the same and exits the same; --cold boots', {
    timeout: 900_000,
  }, async () => {
    expect(await templates()).toEqual([]);
    expect((await cli(['image', 'show', 'guest'])).stdout).toContain('warm template: none');
    const cold = await cli(['vm', 'run', '--rm', 'guest', '--', ...COMMAND]);
    expect(cold.exitCode, cold.stderr).toBe(3);
    expect(cold.stdout).toMatch(/^out\n\d+$/);
    expect(cold.stderr).toContain('err');
    // Made in the background after the run, from a VM of its own (deleted once snapshotted).
    await settled((t) => t.length === 1);
    const [template] = await templates();
    expect((await cli(['image', 'show', 'guest'])).stdout).toContain(`warm template: ${template?.name}`);
    // Not a user's snapshot.
    expect(JSON.parse((await cli(['snapshot', 'list', '--json'])).stdout)).toEqual([]);

    const warm = await cli(['vm', 'run', '--rm', 'guest', '--', ...COMMAND]);
    expect(warm.exitCode, warm.stderr).toBe(3);
    expect(warm.stdout).toBe(cold.stdout);
    expect(warm.stderr).toContain('err');

    // A kept warm VM: restored from the template (its fork), with its own name, address and hostname.
    expect((await cli(['vm', 'run', '-d', '--name', 'w1', 'guest'])).exitCode).toBe(0);
    expect((await cli(['vm', 'run', '-d', '--name', 'w2', 'guest'])).exitCode).toBe(0);
    const [w1, w2] = [await show('w1'), await show('w2')];
    expect(w1.runtime.forkOf?.snapshotName).toBe(template?.name);
    expect(w2.runtime.forkOf?.snapshotName).toBe(template?.name);
    expect(w1.runtime.guestIp).not.toBe(w2.runtime.guestIp);
    expect((await cli(['vm', 'exec', 'w1', '--', 'hostname'])).stdout).toBe('w1');
    const ping = await cli([
      'vm',
      'exec',
      'w1',
      '--',
      'ping',
      '-c',
      '1',
      '-W',
      '10',
      w2.runtime.guestIp ?? '',
    ]);
    expect(ping.exitCode, ping.stdout + ping.stderr).toBe(0);

    // The template's RAM is a file of its own, which the forks map copy-on-write: the stream holds the
    // device state only, each fork's QEMU maps the file private (rw-p), and the forks writing their memory
    // (dd fills a 32 MiB buffer) leave the file's content, and so its recorded digest, unchanged.
    const snap = JSON.parse((await cli(['snapshot', 'show', template?.name ?? '', '--json'])).stdout) as {
      dir: string;
      files: { name: string; role: string; sizeBytes: number; sha256: string }[];
    };
    expect(snap.files.map((f) => f.role)).toEqual(['memory', 'ram', 'root-disk', 'work-disk']);
    const ram = snap.files.find((f) => f.role === 'ram');
    const stream = snap.files.find((f) => f.role === 'memory');
    expect(ram?.sizeBytes).toBe(256 * 1024 * 1024);
    expect(stream?.sizeBytes).toBeLessThan(4 * 1024 * 1024);
    const ramPath = join(snap.dir, ram?.name ?? '');
    const sha = () => createHash('sha256').update(readFileSync(ramPath)).digest('hex');
    expect(sha()).toBe(ram?.sha256);
    for (const name of ['w1', 'w2']) {
      const dd = await cli([
        'vm',
        'exec',
        name,
        '--',
        'dd',
        'if=/dev/urandom',
        'of=/dev/null',
        'bs=32M',
        'count=1',
      ]);
      expect(dd.exitCode, dd.stderr).toBe(0);
    }
    const qemus = await processesNaming(vmsDir());
    expect(qemus.length).toBe(2);
    for (const q of qemus) {
      const maps = readFileSync(`/proc/${q.pid}/maps`, 'utf8').split('\n');
      const mapped = maps.filter((l) => l.endsWith(` ${ramPath}`));
      expect(mapped.length).toBeGreaterThan(0);
      for (const l of mapped) expect(l.split(/\s+/)[1]).toMatch(/^r.-p$/);
    }
    expect(sha()).toBe(ram?.sha256);
    expect((await cli(['snapshot', 'show', template?.name ?? '', '--verify'])).exitCode).toBe(0);
    // The template is in use: kept by a prune.
    for (const name of ['w1', 'w2']) expect((await cli(['vm', 'delete', name])).exitCode).toBe(0);

    expect((await cli(['vm', 'run', '-d', '--cold', '--name', 'c1', 'guest'])).exitCode).toBe(0);
    expect((await show('c1')).runtime.forkOf).toBeUndefined();
    expect((await cli(['vm', 'delete', 'c1'])).exitCode).toBe(0);
    // --cold makes no template either (it asked for a boot, not for background work).
    expect(await vms()).toEqual([]);
  });

  it('a changed spec does not use the template; a changed rootfs makes a new one and the stale one goes', {
    timeout: 1_200_000,
  }, async () => {
    const [before] = await templates();
    expect((await cli(['vm', 'run', '-d', '--memory', '288', '--name', 'm1', 'guest'])).exitCode).toBe(0);
    expect((await show('m1')).runtime.forkOf).toBeUndefined();
    expect((await cli(['vm', 'exec', 'm1', '--', 'sh', '-c', 'grep MemTotal /proc/meminfo'])).exitCode).toBe(
      0,
    );
    expect((await cli(['vm', 'delete', 'm1'])).exitCode).toBe(0);
    // Its own template, beside the first (another spec).
    await settled((t) => t.length === 2);
    expect((await templates()).map((t) => t.spec.memoryMib).sort()).toEqual([256, 288]);

    // The image's rootfs changed (a rebuilt file): the key differs, the run boots, and the new template
    // replaces the stale one of the same spec.
    const now = new Date();
    utimesSync(rootfs, now, now);
    const r = await cli(['vm', 'run', '-d', '--name', 'r1', 'guest']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await show('r1')).runtime.forkOf).toBeUndefined();
    expect((await cli(['vm', 'delete', 'r1'])).exitCode).toBe(0);
    await settled((t) => t.length === 2 && !t.some((x) => x.name === before?.name));
    const dirs = readdirSync(join(inst.home, 'state', 'snapshots'));
    expect(dirs.length).toBe(2);
  });

  it('warm_templates = false: vm run boots even where a template exists', { timeout: 600_000 }, async () => {
    expect((await cli(['daemon', 'stop'])).exitCode).toBe(0);
    config(false);
    try {
      expect((await cli(['vm', 'run', '-d', '--name', 'off1', 'guest'])).exitCode).toBe(0);
      expect((await show('off1')).runtime.forkOf).toBeUndefined();
      expect((await cli(['vm', 'delete', 'off1'])).exitCode).toBe(0);
      expect((await vms()).filter((v) => v.createdBy === 'banger-warm')).toEqual([]);
    } finally {
      expect((await cli(['daemon', 'stop'])).exitCode).toBe(0);
      config(true);
    }
  });

  it('--from-snapshot: restored with its own identity, the command runs; each refusal leaves no VM', {
    timeout: 900_000,
  }, async () => {
    expect((await cli(['vm', 'create', '--name', 'src', '--image', 'guest'])).exitCode).toBe(0);
    expect(
      (await cli(['vm', 'exec', 'src', '--', 'sh', '-c', 'echo from-src > /root/before; sync'])).exitCode,
    ).toBe(0);
    expect((await cli(['vm', 'snapshot', 'src', 'base'])).exitCode).toBe(0);
    const show1 = JSON.parse((await cli(['snapshot', 'show', 'base', '--json'])).stdout) as {
      dir: string;
      vmm: { version: string; kernelSha256?: string; machine?: string };
    };
    expect(show1.vmm.kernelSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(show1.vmm.machine).toBe('microvm');

    const ran = await cli([
      'vm',
      'run',
      '--rm',
      '--name',
      'fs1',
      '--from-snapshot',
      'base',
      '--',
      'sh',
      '-c',
      'cat /root/before; hostname; exit 4',
    ]);
    expect(ran, ran.stderr).toMatchObject({ exitCode: 4, stdout: 'from-src\nfs1' });
    expect((await vms()).map((v) => v.name)).toEqual(['src']);

    const vmsBefore = readdirSync(vmsDir()).sort();
    const refused = async (args: string[], message: string) => {
      const r = await cli(['vm', 'run', '--rm', '--name', 'bad', ...args, '--', 'true']);
      expect(r.exitCode, r.stdout).not.toBe(0);
      expect(r.stderr).toContain(message);
      expect((await vms()).map((v) => v.name)).toEqual(['src']);
      expect(readdirSync(vmsDir()).sort()).toEqual(vmsBefore);
    };
    await refused(['--from-snapshot', 'nope'], 'snapshot "nope" not found');
    await refused(
      ['--from-snapshot', 'base', '--vcpu', '2'],
      '--from-snapshot takes the image, size and network',
    );
    await refused(['--from-snapshot', 'base', '--cold'], '--cold and --from-snapshot cannot be combined');

    editSnapshot('base', '$.vmm.kernelSha256', '0'.repeat(64));
    await refused(['--from-snapshot', 'base'], 'cannot be restored here: its kernel changed');
    editSnapshot('base', '$.vmm.kernelSha256', show1.vmm.kernelSha256 ?? '');
    editSnapshot('base', '$.vmm.machine', 'q35');
    await refused(
      ['--from-snapshot', 'base'],
      'it ran on the q35 machine type, this VM would run on microvm',
    );
    editSnapshot('base', '$.vmm.machine', 'microvm');
    editSnapshot('base', '$.vmm.version', '0.0.1');
    await refused(
      ['--from-snapshot', 'base'],
      `saved by QEMU 0.0.1 and this host runs QEMU ${show1.vmm.version}`,
    );
    editSnapshot('base', '$.vmm.version', show1.vmm.version);

    const memPath = join(show1.dir, 'memory');
    const mem = readFileSync(memPath);
    mem[mem.length >> 1] = (mem[mem.length >> 1] as number) ^ 0xff;
    writeFileSync(memPath, mem);
    await refused(['--from-snapshot', 'base'], 'memory changed since it was saved');

    expect((await cli(['vm', 'delete', 'src'])).exitCode).toBe(0);
    expect((await cli(['snapshot', 'rm', 'base'])).exitCode).toBe(0);
    expect(await processesNaming(vmsDir())).toEqual([]);
  });

  it('a daemon SIGKILLed during a warm restore (QEMU up, identity not yet applied): the next daemon deletes the VM', {
    timeout: 600_000,
  }, async () => {
    expect((await templates()).length).toBeGreaterThan(0);
    const paused = join(inst.home, 'state', 'paused');
    const old = inst.daemonPid();
    if (old) {
      process.kill(old, 'SIGKILL');
      await waitUntil(() => !processAlive(old));
    }
    const dirsBefore = readdirSync(vmsDir()).sort();
    // A fresh daemon with the crash hook armed at the `vmm` checkpoint: QEMU restored and running, its row
    // says running, the guest still has the template's address and hostname.
    const pending = inst.cli(['vm', 'run', '-d', '--name', 'cut', 'guest'], { BANGER_TEST_PAUSE_AT: 'vmm' });
    await waitUntil(() => existsSync(paused), 300_000);
    expect((await processesNaming(vmsDir())).length).toBe(1);
    const pid = inst.daemonPid() as number;
    process.kill(pid, 'SIGKILL');
    await waitUntil(() => !processAlive(pid));
    expect((await pending).exitCode).not.toBe(0);
    rmSync(paused);

    // The next daemon's reconcile: no VM, no VM directory, no QEMU, no IP or CID lease of it.
    expect((await vms()).map((v) => v.name)).toEqual([]);
    expect(readdirSync(vmsDir()).sort()).toEqual(dirsBefore);
    expect(await processesNaming(vmsDir())).toEqual([]);
    for (const f of ['ip-leases.json', 'cid-leases.json']) {
      const path = join(inst.home, 'state', f);
      const leases = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')).leases ?? {}) : {};
      expect(Object.keys(leases), f).toEqual([]);
    }
    // And the next warm run works (its tap from the pool the reconcile refilled; afterAll checks for leaks).
    const again = await cli(['vm', 'run', '--rm', 'guest', '--', 'hostname']);
    expect(again.exitCode, again.stderr).toBe(0);
  });
});
