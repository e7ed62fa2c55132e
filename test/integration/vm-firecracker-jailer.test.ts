/**
 * jailer_chroot_base through the user path: config.toml sets it (with jailer_enabled and jailer_bin), the
 * daemon runs a VM with BANGER_VMM=firecracker under the jailer, and the chroot lands under that base,
 * is where the guest is reached, and is gone after `vm delete`. A base another user could steer (a
 * symlink, not root's, writable by others) is refused with a message naming the key. Firecracker and its
 * jailer cannot run here: the fake Firecracker (checked against firecracker-api.yaml) runs the real agent
 * as its stand-in guest, and a stand-in jailer (fixtures/firecracker-fake/jailer.ts) follows the real
 * one's argv, chroot layout, netns and privilege drop.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBinaryPath } from '../../src/guest/index.js';
import { type BangerInstance, createInstance, REPO_ROOT } from '../fixtures/banger-instance.js';
import { setupFirecrackerInstance } from '../fixtures/firecracker-fake/instance.js';
import { writeStandinJailer } from '../fixtures/firecracker-fake/jailer.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

const fx = createNetnsFixture();

async function probe(): Promise<string | undefined> {
  if (!existsSync(agentBinaryPath())) return `the agent is not built (${agentBinaryPath()}): npm run build`;
  if (!existsSync(join(REPO_ROOT, 'dist'))) return 'the CLI is not built: npm run build';
  if (process.getuid?.() !== 0) return 'not root (the jailer is root only, and taps need it)';
  return undefined;
}
const skipReason = await probe();
if (skipReason) console.warn(`jailer tests skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)(
  'jailer_chroot_base: Firecracker under the (stand-in) jailer',
  () => {
    let inst: BangerInstance;
    let ns: string;
    let work: string;
    let base: string;
    let jailerCalls: string;
    let env: Record<string, string>;
    const configPath = () => join(inst.home, 'config', 'config.toml');
    const cli = (args: string[]) => inst.cli(args, env);

    /** Points jailer_chroot_base elsewhere and restarts the daemon so it reads the config again. */
    async function useBase(path: string): Promise<void> {
      const text = readFileSync(configPath(), 'utf8').replace(
        /^jailer_chroot_base = .*$/m,
        `jailer_chroot_base = "${path}"`,
      );
      await writeFile(configPath(), text);
      expect((await cli(['daemon', 'stop'])).exitCode).toBe(0);
    }

    beforeAll(async () => {
      ns = await fx.createNetns('fj');
      work = await fx.tempDir();
      inst = createInstance();
      // The chroot base shares a filesystem with the images and VM disks (hard links), as the docs require.
      base = join(inst.home, 'chroots');
      jailerCalls = join(work, 'jailer.calls');
      const jailer = join(work, 'jailer');
      await writeStandinJailer(jailer, jailerCalls);
      env = await setupFirecrackerInstance({
        fx,
        ns,
        inst,
        bridgeIp: '172.29.4.1',
        imageName: 'tiny',
        callsFile: join(work, 'calls.jsonl'),
        jailer: { bin: jailer, chrootBase: base },
      });
    });

    afterAll(async () => {
      if (inst) {
        const list = await cli(['vm', 'list', '--json']).catch(() => undefined);
        for (const vm of JSON.parse(list?.stdout || '[]') as { id: string }[])
          await cli(['vm', 'delete', vm.id]);
        await cli(['daemon', 'stop']).catch(() => {});
        for (const p of await processesNaming(inst.home)) process.kill(p.pid, 'SIGKILL');
        await inst.cleanup();
      }
      await fx.cleanup();
      await fx.assertNoLeftovers();
    });

    it('builds the chroot under the configured base, reaches the guest through it, and removes it at delete', async () => {
      const created = await cli(['vm', 'create', '--name', 'fcj', '--image', 'tiny']);
      expect(created.exitCode, created.stderr).toBe(0);

      // The daemon drove the jailer with the configured base, the VM's name as id, and the VMs' netns.
      const call = readFileSync(jailerCalls, 'utf8').trim().split('\n').at(-1) ?? '';
      expect(call).toContain(`--chroot-base-dir ${base} `);
      expect(call).toContain('--id fcj ');
      expect(call).toContain(`--netns /var/run/netns/${ns} `);
      // The chroot is the jailer's layout under that base: the copied exec file, the staged kernel and disk,
      // and the sockets Firecracker made inside it. Nothing went to the default <state>/jail.
      const root = join(base, 'firecracker', 'fcj', 'root');
      for (const f of ['firecracker', 'kernel', 'disk0', 'run/firecracker.socket', 'vsock.sock', 'dev/kvm'])
        expect(existsSync(join(root, f)), f).toBe(true);
      expect(existsSync(join(inst.home, 'state', 'jail'))).toBe(false);
      // The VMM the daemon recorded is the process the jailer exec'd in that chroot (same pid: no fork).
      const shown = JSON.parse((await cli(['vm', 'show', 'fcj', '--json'])).stdout) as { id: string };
      const handles = JSON.parse(
        readFileSync(join(inst.home, 'state', 'vms', shown.id, 'handles.json'), 'utf8'),
      ) as { identities: { kind: string; pid?: number }[] };
      const vmmPid = handles.identities.find((i) => i.kind === 'process')?.pid;
      expect((await processesNaming(root)).map((p) => p.pid)).toContain(vmmPid);

      // The guest agent answers through the vsock socket inside the chroot.
      const exec = await cli(['vm', 'exec', 'fcj', '--', 'sh', '-c', 'echo jailed; exit 3']);
      expect(exec.stdout).toContain('jailed');
      expect(exec.exitCode, exec.stderr).toBe(3);

      // A snapshot under the jailer is refused (Firecracker would resolve its paths in the chroot); the VM
      // runs on and no snapshot is left.
      const snap = await cli(['vm', 'snapshot', 'fcj', 'jailed']);
      expect(snap.exitCode).not.toBe(0);
      expect(snap.stderr).toContain('snapshots of a VM under the jailer are not built yet');
      expect(JSON.parse((await cli(['snapshot', 'list', '--json'])).stdout)).toEqual([]);
      expect((await cli(['vm', 'exec', 'fcj', '--', 'true'])).exitCode).toBe(0);

      expect((await cli(['vm', 'delete', 'fcj'])).exitCode).toBe(0);
      // Nothing of the VM is left under the base, and no process of it runs.
      expect(existsSync(join(base, 'firecracker', 'fcj'))).toBe(false);
      expect(await readdir(join(base, 'firecracker'))).toEqual([]);
      expect(await processesNaming(base)).toEqual([]);
      expect(JSON.parse((await cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
    });

    it('refuses a chroot base that is a symlink, not root-owned, or writable by others, naming the key', async () => {
      const real = join(inst.home, 'real-chroots');
      await mkdir(real, { mode: 0o700 });
      const cases: { path: string; prepare: () => Promise<void>; message: RegExp }[] = [
        {
          path: join(inst.home, 'link-chroots'),
          prepare: () => symlink(real, join(inst.home, 'link-chroots')),
          message: /jailer_chroot_base .*link-chroots is a symlink/,
        },
        {
          path: join(inst.home, 'user-chroots'),
          prepare: async () => {
            await mkdir(join(inst.home, 'user-chroots'), { mode: 0o700 });
            await chown(join(inst.home, 'user-chroots'), 1000, 1000);
          },
          message: /jailer_chroot_base .*user-chroots is owned by uid 1000, not root/,
        },
        {
          path: join(inst.home, 'open-chroots'),
          prepare: async () => {
            await mkdir(join(inst.home, 'open-chroots'));
            await chmod(join(inst.home, 'open-chroots'), 0o777);
          },
          message: /jailer_chroot_base .*open-chroots is writable by group or others/,
        },
      ];
      for (const c of cases) {
        await c.prepare();
        await useBase(c.path);
        const r = await cli(['vm', 'create', '--name', 'fcbad', '--image', 'tiny']);
        expect(r.exitCode).not.toBe(0);
        expect(r.stderr).toMatch(c.message);
        // Refused before anything was built: nothing under the base or its target, no VM, no process.
        expect(await readdir(real)).toEqual([]);
        expect(await processesNaming(c.path)).toEqual([]);
        // The VM is kept in `error` with the reason, as any failed start, and deletes cleanly.
        const list = JSON.parse((await cli(['vm', 'list', '--json'])).stdout) as {
          name: string;
          state: string;
          runtime: { lastError?: string };
        }[];
        expect(list.map((vm) => [vm.name, vm.state])).toEqual([['fcbad', 'error']]);
        expect(list[0]?.runtime.lastError).toMatch(c.message);
        expect((await cli(['vm', 'delete', 'fcbad'])).exitCode).toBe(0);
        await rm(c.path, { recursive: true, force: true });
      }
      expect(await processesNaming(inst.home)).toEqual([]);
    });
  },
);
