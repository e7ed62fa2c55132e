import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { vmPaths } from '../../src/daemon/services/vms/index.js';
import { agentBinaryPath } from '../../src/guest/index.js';
import { waitUntil } from '../fixtures/banger-instance.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { createStandinVmm, hostAgentGuest } from '../fixtures/standin-vmm.js';
import { addImage, buildVmHarness, type VmHarness } from '../fixtures/vm-harness.js';

// vm prune, vm set, vm ports and banger's ssh_config, on the VM service over real parts (SQLite store,
// bridge/taps in a namespace this file creates, real ext4 work disks, a stand-in VMM process), and for
// ports the real banger-agent run on the host in that namespace.
const fx = createNetnsFixture();
const runner = fx.runner;
const bridge = `br-fc-${fx.id.slice(6)}`;
const bridgeIp = '172.30.0.1';
/** Each harness's fresh state dir is the same banger instance: they share the bridge in one namespace. */
const instanceId = randomBytes(16).toString('hex');
let ns: string;
let root: string;
let imagePath: string;
let n = 0;
const open: VmHarness[] = [];

beforeAll(async () => {
  ns = await fx.createNetns('vmx');
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

function harness(extra: Partial<Parameters<typeof buildVmHarness>[0]> = {}): VmHarness {
  const stateDir = join(root, `s${n++}`);
  const h = buildVmHarness({ stateDir, netns: ns, bridge, bridgeIp, instanceId, ...extra });
  addImage(h.store, 'tiny', imagePath);
  open.push(h);
  return h;
}

const MiB = 1024 * 1024;

describe('vm prune', () => {
  it('deletes created, stopped and error VMs with everything they own, and keeps running ones', async () => {
    const h = harness();
    const up = await h.service.create({ name: 'up', image: 'tiny' });
    const down = await h.service.create({ name: 'down', image: 'tiny' });
    await h.service.stop('down');
    const fresh = await h.service.create({ name: 'fresh', image: 'tiny', noStart: true });
    const broken = await h.service.create({ name: 'broken', image: 'tiny', noStart: true });
    h.store.vms.update(broken.id, 'error', { ...broken.runtime, lastError: 'test' });

    // Only the ids given (what the user confirmed): a running one among them is skipped.
    const some = await h.service.prune([fresh.id, up.id]);
    expect(some.map((v) => v.name)).toEqual(['fresh']);

    const rest = await h.service.prune();
    expect(rest.map((v) => v.name).sort()).toEqual(['broken', 'down']);
    expect(h.store.vms.list().map((v) => v.name)).toEqual(['up']);
    expect(h.store.vms.findById(up.id)?.state).toBe('running');
    for (const gone of [down, fresh, broken])
      expect(existsSync(vmPaths(h.deps.vmsDir, gone.id).dir)).toBe(false);
    const owners = Object.values(await h.deps.network.ips.leases());
    expect(owners).toEqual([up.id]);
    expect(await h.service.prune()).toEqual([]);
  });

  it('keeps a VM that is started while the prune is under way', async () => {
    const h = harness();
    const vm = await h.service.create({ name: 'racer', image: 'tiny' });
    await h.service.stop('racer');
    // Both in one tick: the prune lists the VM as stopped before the start takes its lock.
    const [started, pruned] = await Promise.all([h.service.start('racer'), h.service.prune()]);
    expect(started.state).toBe('running');
    expect(pruned).toEqual([]);
    expect(h.store.vms.findById(vm.id)?.state).toBe('running');
    expect(existsSync(vmPaths(h.deps.vmsDir, vm.id).dir)).toBe(true);
  });
});

describe('vm set', () => {
  it('changes a stopped VM, grows its work disk offline and refuses to shrink it', async () => {
    const h = harness();
    const vm = await h.service.create({ name: 'sizy', image: 'tiny' });
    await expect(h.service.set('sizy', { vcpu: 2 })).rejects.toMatchObject({
      code: 'bad_request',
      message: expect.stringContaining('stop it first'),
    });
    await h.service.stop('sizy');
    const disk = vmPaths(h.deps.vmsDir, vm.id).workDisk;
    expect(statSync(disk).size).toBe(32 * MiB);

    const changed = await h.service.set('sizy', { vcpu: 2, memoryMib: 256, diskSizeBytes: 64 * MiB });
    expect(changed.spec).toMatchObject({ vcpu: 2, memoryMib: 256, diskSizeBytes: 64 * MiB });
    expect(h.store.vms.findById(vm.id)?.spec).toEqual(changed.spec); // persisted
    expect(statSync(disk).size).toBe(64 * MiB);
    // The filesystem itself grew and is clean.
    const dump = await runner.run(['dumpe2fs', '-h', disk]);
    const blocks = Number(/Block count:\s+(\d+)/.exec(dump.stdout)?.[1]);
    const blockSize = Number(/Block size:\s+(\d+)/.exec(dump.stdout)?.[1]);
    expect(blocks * blockSize).toBe(64 * MiB);
    expect((await runner.run(['e2fsck', '-fn', disk], { allowFailure: true })).exitCode).toBe(0);

    await expect(h.service.set('sizy', { diskSizeBytes: 48 * MiB })).rejects.toMatchObject({
      code: 'bad_request',
      message: expect.stringContaining('cannot shrink'),
    });
    await expect(h.service.set('sizy', {})).rejects.toMatchObject({ code: 'bad_request' });
    expect(statSync(disk).size).toBe(64 * MiB);

    // The next start boots with the new spec.
    const started = await h.service.start('sizy');
    expect(started.spec.vcpu).toBe(2);
    expect(started.state).toBe('running');
  });

  it('a created VM without a work disk yet gets the new size at its first start', async () => {
    const h = harness();
    const vm = await h.service.create({ name: 'later', image: 'tiny', noStart: true });
    const disk = vmPaths(h.deps.vmsDir, vm.id).workDisk;
    await h.service.set('later', { diskSizeBytes: 40 * MiB });
    expect(statSync(disk).size).toBe(40 * MiB);
    expect(h.store.vms.findById(vm.id)?.spec.diskSizeBytes).toBe(40 * MiB);
  });
});

describe("banger's ssh_config", () => {
  it('names every VM with an address, and forgets deleted ones', async () => {
    const h = harness();
    const configPath = join(root, `ssh${n}`, 'ssh_config');
    h.deps.ssh = { keyPath: join(root, 'key'), knownHostsPath: join(root, 'kh'), configPath };
    const vm = await h.service.create({ name: 'sshy', image: 'tiny' });
    const text = readFileSync(configPath, 'utf8');
    expect(text).toContain(`Host sshy.vm\n  HostName ${vm.runtime.guestIp}\n`);
    expect(text).toContain(`Host *.vm\n  User root\n  IdentityFile "${join(root, 'key')}"`);
    expect(text).toContain(`UserKnownHostsFile "${join(root, 'kh')}"`);
    // `ssh NAME.vm` must trust only the key pinned through the agent, as `vm ssh` does: no accept-new.
    expect(text).toContain('  StrictHostKeyChecking yes\n  HostKeyAlgorithms ssh-ed25519\n');
    expect(text).not.toContain('accept-new');
    const resolved = (await runner.run(['ssh', '-G', '-F', configPath, 'sshy.vm'])).stdout.split('\n');
    expect(resolved).toContain(`hostname ${vm.runtime.guestIp}`);
    expect(resolved).toContain('stricthostkeychecking true');
    expect(resolved).toContain(`userknownhostsfile ${join(root, 'kh')}`);
    expect(resolved).toContain('hostkeyalgorithms ssh-ed25519');
    expect((await h.service.sshConfig()).text).toBe(text);
    await h.service.delete('sshy');
    expect(readFileSync(configPath, 'utf8')).not.toContain('sshy');
  });
});

describe('vm ports through the real agent (run on the host as the stand-in guest)', () => {
  const agent = agentBinaryPath();
  const skip = !existsSync(agent) ? `agent not built (${agent}); npm run build` : undefined;
  it.skipIf(skip)('lists TCP and UDP listeners with the guest IP and the owning process', async () => {
    const h = harness({ vmm: createStandinVmm(runner, ns, { agentBinary: agent }), guest: hostAgentGuest() });
    const vm = await h.service.create({ name: 'porty', image: 'tiny' });
    // Listeners in the guest's network namespace (the stand-in guest is the host in that namespace).
    const tcp = runner.spawn(['socat', 'TCP-LISTEN:8123,bind=0.0.0.0,fork,reuseaddr', 'SYSTEM:true'], {
      netns: ns,
    });
    const udp = runner.spawn(['socat', '-u', 'UDP-RECV:5353', 'OPEN:/dev/null'], { netns: ns });
    // The stand-in guest is the namespace itself: give it the guest's address, so the daemon's HTTP probe
    // reaches its listeners there as it reaches a real guest over the bridge.
    await runner.run(['ip', 'addr', 'add', `${vm.runtime.guestIp}/32`, 'dev', 'lo'], { netns: ns });
    // An HTTP server (any request gets a 200), and one that floods without ever speaking HTTP.
    const web = runner.spawn(
      [
        'socat',
        'TCP-LISTEN:8124,bind=0.0.0.0,fork,reuseaddr',
        'SYSTEM:printf "HTTP/1.0 200 OK\\r\\n\\r\\nhi"',
      ],
      { netns: ns },
    );
    const flood = runner.spawn(['socat', 'TCP-LISTEN:8125,bind=0.0.0.0,fork,reuseaddr', 'SYSTEM:yes'], {
      netns: ns,
    });
    try {
      let ports: Awaited<ReturnType<typeof h.service.ports>>['ports'] = [];
      await waitUntil(async () => {
        ports = (await h.service.ports('porty')).ports;
        // The HTTP probe is best-effort within its own bound (PROBE_TIMEOUT_MS): on a loaded host one call's
        // probe of the HTTP server can run out before socat forks its answer, so wait for a call where it did.
        return (
          [8123, 5353, 8124, 8125].every((n) => ports.some((p) => p.port === n)) &&
          ports.some((p) => p.port === 8124 && p.url !== undefined)
        );
        // A guard, not a timing: the stand-in agent names owners by scanning the whole host's /proc, and each
        // call also runs the HTTP probe in the namespace (a node process): both slow on a loaded host.
      }, 60_000);
      expect(ports).toContainEqual({
        protocol: 'tcp',
        address: '0.0.0.0',
        port: 8123,
        endpoint: 'porty.vm:8123',
        ipEndpoint: `${vm.runtime.guestIp}:8123`,
        process: 'socat',
      });
      expect(ports).toContainEqual({
        protocol: 'udp',
        address: '0.0.0.0',
        port: 5353,
        endpoint: 'porty.vm:5353',
        ipEndpoint: `${vm.runtime.guestIp}:5353`,
        process: 'socat',
      });
      expect(ports.find((p) => p.port === 8124)?.url).toBe('http://porty.vm:8124/');
      // The probe read a few bytes of the flood and moved on: no link, and the call came back.
      expect(ports.find((p) => p.port === 8125)?.url).toBeUndefined();
    } finally {
      for (const p of [tcp, udp, web, flood]) p.kill('SIGKILL');
      await runner.run(['ip', 'addr', 'del', `${vm.runtime.guestIp}/32`, 'dev', 'lo'], { netns: ns });
    }
    await h.service.stop('porty');
    await expect(h.service.ports('porty')).rejects.toMatchObject({ code: 'not_running' });
  });
});
