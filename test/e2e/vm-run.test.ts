/**
 * `banger vm …` end to end: the CLI, a real daemon, QEMU TCG booting the Debian cloud kernel + banger's
 * initramfs, a busybox userland root (the Alpine minirootfs where ../shared has it, else the busybox rootfs
 * any Debian host builds; plus the agent and its init shim) registered as an image, the bridge,
 * taps and guest IPs inside a namespace this file creates (config `netns`), the agent over virtio-serial.
 * Faults: the daemon SIGKILLed with a VM running (adopted on restart), and with the VMM gone too (cleaned).
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listLinks } from '../../src/host/index.js';
import { type BangerInstance, processAlive, REPO_ROOT, waitUntil } from '../fixtures/banger-instance.js';
import {
  createGuestInstance,
  registerGuestImage,
  requireGuestHost,
  teardownGuestInstance,
} from '../fixtures/guest-instance.js';
import {
  buildGuestRoot,
  type GuestRootSource,
  guestRootSource,
  PRINT_VERSION_ID,
} from '../fixtures/guest-root.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

const fx = createNetnsFixture();
const runner = fx.runner;

await requireGuestHost(runner);

describe('banger vm under QEMU TCG', () => {
  let inst: BangerInstance;
  let ns: string;
  let root: GuestRootSource;

  const cli = async (args: string[]) => {
    const r = await inst.cli(args);
    return r;
  };
  const vmsDir = () => join(inst.home, 'state', 'vms');
  const qemus = () => processesNaming(vmsDir());

  beforeAll(async () => {
    // default_dns: the guest's resolv.conf names it (checked in the named-VM case; nothing answers there).
    const g = await createGuestInstance(fx, 'e2e', ['default_dns = "10.53.0.9"']);
    ({ inst, ns } = g);
    root = await guestRootSource();
    // Registered directly in the store: this file tests VMs, not image import.
    registerGuestImage(g, 'alpine', await buildGuestRoot(runner, g.work), {
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=from-image'],
      workingDir: '/root',
    });
    // An empty root: banger's initramfs finds no init there and powers the guest off (a failed boot).
    const empty = join(g.work, 'empty.ext4');
    await runner.run(['truncate', '-s', '16M', empty]);
    await runner.run(['mkfs.ext4', '-q', '-F', empty]);
    registerGuestImage(g, 'broken', empty);
  });

  afterAll(() => teardownGuestInstance(fx, inst));

  it('vm run -- cmd prints its output and exits with its code; --rm leaves nothing', async () => {
    const r = await cli([
      'vm',
      'run',
      '--rm',
      '--',
      'sh',
      '-c',
      'echo hi; echo "$GREETING $(pwd) $(hostname -s)" >&2; exit 3',
    ]);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stdout).toBe('hi'); // the fixture strips the final newline
    expect(r.stderr).toMatch(/from-image \/root [a-z]+-[a-z]+/);
    expect(JSON.parse((await cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
    expect(await qemus()).toEqual([]);
  });

  it('vm run --rm keeps a VM whose boot failed, and says how to look and delete', async () => {
    const r = await cli(['vm', 'run', '--rm', '--image', 'broken', '--name', 'nope-boot', '--', 'true']);
    expect(r.exitCode).toBe(1);
    // Failing fast: the wait ended when the VMM exited, not at the agent timeout (which says "timed out").
    expect(r.stderr).toContain('the VMM exited during boot');
    expect(r.stderr).not.toMatch(/timed out/i);
    expect(r.stderr).toContain('kept despite --rm');
    expect(r.stderr).toContain('banger vm logs nope-boot');
    expect(r.stderr).toContain('banger vm delete nope-boot');
    const vm = JSON.parse((await cli(['vm', 'show', 'nope-boot', '--json'])).stdout);
    expect(vm.state).toBe('error');
    expect((await cli(['vm', 'logs', 'nope-boot'])).stdout).toContain('not found in the root filesystem');
    expect((await cli(['vm', 'delete', 'nope-boot'])).exitCode).toBe(0);
    expect(await qemus()).toEqual([]);
  });

  it('vm run IMAGE PATH -- cmd copies the workspace in and runs there', async () => {
    const ws = await fx.tempDir();
    await mkdir(join(ws, 'src'));
    writeFileSync(join(ws, 'src', 'hello.txt'), 'hello from the host\n');
    const r = await cli(['vm', 'run', '--rm', 'alpine', ws, '--', 'sh', '-c', 'pwd; cat src/hello.txt']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('/root/repo\nhello from the host');
    const missing = await cli(['vm', 'run', '--rm', 'alpine', 'a', 'b', '--', 'true']);
    expect(missing.stderr).toContain('at most IMAGE and PATH');
  });

  it('a named VM: run, exec with stdin, stop, start, delete', async () => {
    const r = await cli(['vm', 'run', '--name', 'keep', 'alpine', '--', ...PRINT_VERSION_ID]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(root.versionId);
    const show = JSON.parse((await cli(['vm', 'show', 'keep', '--json'])).stdout);
    expect(show.state).toBe('running');
    expect(show.runtime.guestIp).toMatch(/^172\.28\.0\.\d+$/);
    const ip = await cli(['vm', 'exec', 'keep', '--', 'sh', '-c', 'ip -4 -o addr show eth0; hostname']);
    expect(ip.stdout).toContain(show.runtime.guestIp);
    expect(ip.stdout).toContain('keep');
    const resolv = await cli(['vm', 'exec', 'keep', '--', 'cat', '/etc/resolv.conf']);
    expect(resolv.stdout.split('\n').filter((l) => l.startsWith('nameserver'))).toEqual([
      'nameserver 10.53.0.9',
    ]);
    expect((await cli(['vm', 'stop', 'keep'])).exitCode).toBe(0);
    expect(await qemus()).toEqual([]);
    expect((await cli(['vm', 'exec', 'keep', '--', 'true'])).stderr).toContain('not running');
    expect((await cli(['vm', 'start', 'keep'])).exitCode).toBe(0);
    expect((await cli(['vm', 'exec', 'keep', '--', ...PRINT_VERSION_ID])).stdout.trim()).toBe(root.versionId);
    const logs = await cli(['vm', 'logs', 'keep']);
    expect(logs.stdout.length).toBeGreaterThan(0);
    expect((await cli(['vm', 'delete', 'keep'])).exitCode).toBe(0);
    expect(await qemus()).toEqual([]);
  });

  it('a work disk made before host seeding (no marker) is seeded by the guest at its first mount', async () => {
    expect(
      (await cli(['vm', 'create', '--name', 'legacy', '--image', 'alpine', '--no-start'])).exitCode,
    ).toBe(0);
    const show = JSON.parse((await cli(['vm', 'show', 'legacy', '--json'])).stdout);
    // As banger made work disks before: an empty ext4, root dir 0755, no marker.
    await runner.run([
      'mkfs.ext4',
      '-F',
      '-q',
      '-E',
      'root_owner=0:0',
      join(show.runtime.vmDir, 'work.ext4'),
    ]);
    expect((await cli(['vm', 'start', 'legacy'])).exitCode).toBe(0);
    const r = await cli([
      'vm',
      'exec',
      'legacy',
      '--',
      'sh',
      '-c',
      'grep -c " /root " /proc/mounts; stat -c %a /root; ls -A /root',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const [mounts, mode, ...entries] = r.stdout.split('\n');
    expect([mounts, mode]).toEqual(['1', '700']); // mounted once; the image's /root mode copied over
    expect(entries).toContain('.banger-seeded');
    expect((await cli(['vm', 'delete', 'legacy'])).exitCode).toBe(0);
  });

  /** The CLI as a child we can signal, with what it printed so far. */
  const started = (args: string[]) => {
    const child = execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), ...args], {
      env: inst.env,
      reject: false,
      timeout: 300_000,
    });
    const seen = { out: '', err: '' };
    child.stdout?.on('data', (d: Buffer) => {
      seen.out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      seen.err += d.toString();
    });
    return { child, seen };
  };

  /** `vm run --rm` of a shell that loops until killed, with the given SIGINT trap, once it says it is ready. */
  const looping = async (trap: string) => {
    const script = `trap "${trap}" INT; echo ready; while :; do sleep 1; done`;
    const run = started(['vm', 'run', '--rm', '--', 'sh', '-c', script]);
    await waitUntil(() => run.seen.out.includes('ready'), 120_000);
    return run;
  };

  it("Ctrl-C reaches the guest's command: its trap runs and its exit code comes back; --rm cleans up", async () => {
    const { child, seen } = await looping('echo got-int; exit 42');
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, seen.err).toBe(42);
    expect(seen.out).toBe('ready\ngot-int\n');
    expect(JSON.parse((await cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
  });

  // At the VMM start and during the wait for the agent (once taken for a failed boot, and the VM kept).
  for (const stage of ['boot', 'agent']) {
    it(`Ctrl-C at the ${stage} stage cancels the run (130) and leaves nothing`, async () => {
      const { child, seen } = started(['vm', 'run', '--rm', '--', 'echo', 'never']);
      await waitUntil(() => seen.err.includes(`• ${stage}`), 120_000);
      child.kill('SIGINT');
      const r = await child;
      expect(r.exitCode, seen.err).toBe(130);
      expect(seen.err).toContain('interrupted by SIGINT');
      expect(seen.err).not.toContain('kept');
      expect(seen.out).toBe('');
      expect(JSON.parse((await cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
      await waitUntil(async () => (await qemus()).length === 0);
    });
  }

  it('a second Ctrl-C gives up on a command that shrugs off the first: killed, 130, and --rm still cleans up', async () => {
    // The first SIGINT only makes the loop say so; the second must end the call.
    const { child, seen } = await looping('echo shrugged');
    child.kill('SIGINT');
    await waitUntil(() => seen.out.includes('shrugged'), 60_000);
    expect(child.exitCode).toBeNull();
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, seen.err).toBe(130);
    expect(seen.err).toContain('second Ctrl-C');
    await waitUntil(
      async () => JSON.parse((await cli(['vm', 'list', '--json'])).stdout).length === 0,
      60_000,
    );
    await waitUntil(async () => (await qemus()).length === 0);
  });

  it('daemon SIGKILLed with a VM running: the VM is adopted; with its VMM gone too: cleaned', async () => {
    const d = await cli(['vm', 'run', '-d', '--name', 'survivor']);
    expect(d.exitCode, d.stderr).toBe(0);
    const [vmm] = await qemus();
    expect(vmm).toBeDefined();
    const pid = inst.daemonPid() as number;
    process.kill(pid, 'SIGKILL');
    await waitUntil(() => !processAlive(pid));
    // The next command starts a new daemon, which adopts the VM.
    const again = await cli(['vm', 'exec', 'survivor', '--', 'echo', 'still here']);
    expect(again.stdout, again.stderr).toBe('still here');
    expect((await qemus()).map((p) => p.pid)).toEqual([vmm?.pid]);

    const pid2 = inst.daemonPid() as number;
    process.kill(pid2, 'SIGKILL');
    process.kill(vmm?.pid as number, 'SIGKILL');
    await waitUntil(() => !processAlive(pid2) && !processAlive(vmm?.pid as number));
    const show = JSON.parse((await cli(['vm', 'show', 'survivor', '--json'])).stdout);
    expect(show.state).toBe('stopped');
    // Only what outlives a stop: the two disks in the VM dir and the IP and vsock CID leases.
    const kept = show.runtime.identities as { kind: string; path?: string }[];
    expect(kept.map((i) => i.kind).sort()).toEqual(['cid', 'file', 'file', 'ip']);
    expect(kept.every((i) => i.kind !== 'file' || !i.path?.includes('/run/'))).toBe(true);
    const taps = (await listLinks(runner, ns)).filter((l) => l.name.startsWith('tap-fc-'));
    expect(taps.length).toBeLessThanOrEqual(1); // the pool's one idle tap
    expect((await cli(['vm', 'delete', 'survivor'])).exitCode).toBe(0);
  });

  for (const [stage, expected] of [
    ['tap', 'stopped'],
    ['root-disk', 'stopped'],
    ['vmm', 'running'],
  ] as const) {
    it(`daemon SIGKILLed at the ${stage} checkpoint of a start: ${expected === 'running' ? 'adopted' : 'cleaned'}`, async () => {
      const paused = join(inst.home, 'state', 'paused');
      const old = inst.daemonPid();
      if (old) {
        process.kill(old, 'SIGKILL');
        await waitUntil(() => !processAlive(old));
      }
      const name = `crash-${stage}`;
      // A fresh daemon with the hook armed: the CLI starts it with its own environment.
      const pending = inst.cli(['vm', 'create', '--name', name, '--nat'], { BANGER_TEST_PAUSE_AT: stage });
      await waitUntil(() => existsSync(paused), 120_000);
      const pid = inst.daemonPid() as number;
      process.kill(pid, 'SIGKILL');
      await waitUntil(() => !processAlive(pid));
      expect((await pending).exitCode).not.toBe(0);
      rmSync(paused);

      const show = JSON.parse((await cli(['vm', 'show', name, '--json'])).stdout); // a new daemon reconciles
      expect(show.state).toBe(expected);
      const running = await qemus();
      expect(running.length).toBe(expected === 'running' ? 1 : 0);
      const rules = await runner.run(['nft', 'list', 'ruleset'], { netns: ns, allowFailure: true });
      expect(rules.stdout.includes('banger:')).toBe(expected === 'running');
      if (expected === 'running') {
        expect((await cli(['vm', 'exec', name, '--', 'true'])).exitCode).toBe(0);
      }
      expect((await cli(['vm', 'delete', name])).exitCode).toBe(0);
      expect(await qemus()).toEqual([]);
      const after = await runner.run(['nft', 'list', 'ruleset'], { netns: ns, allowFailure: true });
      expect(after.stdout.includes('banger:')).toBe(false);
      const taps = (await listLinks(runner, ns)).filter((l) => l.name.startsWith('tap-fc-'));
      expect(taps.length).toBeLessThanOrEqual(1);
    });
  }

  it('a graceful daemon stop removes the idle taps and keeps a running VM and its tap; the next daemon refills', async () => {
    expect((await cli(['vm', 'run', '-d', '--name', 'stays'])).exitCode).toBe(0);
    const vmTap = JSON.parse((await cli(['vm', 'show', 'stays', '--json'])).stdout).runtime.identities.find(
      (i: { kind: string }) => i.kind === 'tap',
    )?.name;
    const taps = async () =>
      (await listLinks(runner, ns)).filter((l) => l.name.startsWith('tap-fc-')).map((l) => l.name);
    // A daemon that starts where the bridge exists fills the pool: the VM's tap and one idle.
    expect((await cli(['daemon', 'stop'])).exitCode).toBe(0);
    expect(JSON.parse((await cli(['vm', 'show', 'stays', '--json'])).stdout).state).toBe('running');
    expect((await taps()).length).toBe(2);
    expect((await cli(['daemon', 'stop'])).exitCode).toBe(0);
    expect(await taps()).toEqual([vmTap]); // the idle one is gone, the VM's stays
    expect((await listLinks(runner, ns)).some((l) => l.name === `br-fc-${fx.id.slice(6)}`)).toBe(true);
    expect((await cli(['vm', 'exec', 'stays', '--', 'true'])).exitCode).toBe(0); // adopted by the next daemon
    expect((await taps()).length).toBe(2);
    expect((await cli(['vm', 'delete', 'stays'])).exitCode).toBe(0);
  });
});
