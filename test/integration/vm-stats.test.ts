import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createStatsService, type StatsService } from '../../src/daemon/services/stats/index.js';
import { vmPaths } from '../../src/daemon/services/vms/index.js';
import { agentBinaryPath } from '../../src/guest/index.js';
import { CLOCK_TICKS_PER_SECOND, processRssBytes, readProcStat } from '../../src/host/index.js';
import { waitUntil } from '../fixtures/banger-instance.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { createStandinVmm, hostAgentGuest } from '../fixtures/standin-vmm.js';
import { addImage, buildVmHarness, type VmHarness } from '../fixtures/vm-harness.js';

// vm stats / health / ping and the idle rule on the VM service over real parts: the stand-in VMM process
// runs the real banger-agent on the host in a namespace this file creates, so the figures are checked
// against that process's /proc, the disks' allocated blocks and the tap's counters in the namespace.
const fx = createNetnsFixture();
const runner = fx.runner;
const bridge = `br-fc-${fx.id.slice(6)}`;
const bridgeIp = '172.31.8.1';
const instanceId = randomBytes(16).toString('hex');
const agent = agentBinaryPath();
let ns: string;
let root: string;
let imagePath: string;
let n = 0;
const open: { h: VmHarness; stats: StatsService }[] = [];

beforeAll(async () => {
  if (!existsSync(agent)) throw new Error(`the agent is not built (${agent}): make -C agent`);
  ns = await fx.createNetns('sta');
  root = await fx.tempDir();
  imagePath = join(root, 'tiny.ext4');
  await runner.run(['truncate', '-s', '24M', imagePath]);
  await runner.run(['mkfs.ext4', '-F', '-q', imagePath]);
});

afterEach(async () => {
  for (const { h, stats } of open.splice(0)) {
    await stats.close();
    await h.discard();
  }
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

function setup(config = { stats_poll_interval: '30s', auto_stop_stale_after: '0' }) {
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
  const stats = createStatsService({
    vms: h.service,
    config,
    vmsDir: h.deps.vmsDir,
    runner,
    log: pino({ level: 'silent' }),
  });
  open.push({ h, stats });
  return { h, stats };
}

const meminfoKiB = (key: string) =>
  Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);

describe('vm stats', () => {
  it("reports the VMM's CPU and RSS as /proc has them, the disks' allocated bytes, tap bytes and guest memory", async () => {
    const { h, stats } = setup();
    const vm = await h.service.create({ name: 'meter', image: 'tiny' });
    const { pid } = h.service.live('meter');
    const paths = vmPaths(h.deps.vmsDir, vm.id);
    // The root disk's copy-on-write file, as the VM recorded it (the strategy names it).
    const rootFiles = h.service
      .get('meter')
      .runtime.identities.flatMap((i) =>
        i.kind === 'file' && i.path !== paths.workDisk && !i.path.startsWith(`${paths.run}/`) ? [i.path] : [],
      );
    expect(rootFiles).toHaveLength(1);
    const rootDisk = rootFiles[0] as string;
    // Write 4 MiB into it: its allocation must show them.
    await runner.run([
      'dd',
      'if=/dev/urandom',
      `of=${rootDisk}`,
      'bs=1M',
      'count=4',
      'seek=8',
      'conv=notrunc',
    ]);

    const before = readProcStat(pid);
    const rssBefore = processRssBytes(pid) as number;
    const s = await stats.stats('meter');
    const after = readProcStat(pid);
    const rssAfter = processRssBytes(pid) as number;

    expect(before && after).toBeTruthy();
    expect(s.cpu.seconds).toBeGreaterThanOrEqual((before?.cpuTicks ?? 0) / CLOCK_TICKS_PER_SECOND - 0.01);
    expect(s.cpu.seconds).toBeLessThanOrEqual((after?.cpuTicks ?? 0) / CLOCK_TICKS_PER_SECOND + 0.01);
    expect(s.cpu.percent).toBeGreaterThanOrEqual(0);
    expect(s.memory.vmmRssBytes).toBeGreaterThanOrEqual(Math.min(rssBefore, rssAfter) * 0.9);
    expect(s.memory.vmmRssBytes).toBeLessThanOrEqual(Math.max(rssBefore, rssAfter) * 1.1);
    const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const age = uptime - (after?.startTime ?? 0) / CLOCK_TICKS_PER_SECOND;
    expect(Math.abs(s.uptimeSeconds - age)).toBeLessThan(2);

    expect(s.disk.workAllocatedBytes).toBe(statSync(paths.workDisk).blocks * 512);
    expect(s.disk.rootAllocatedBytes).toBe(statSync(rootDisk).blocks * 512);
    expect(s.disk.rootAllocatedBytes).toBeGreaterThanOrEqual(4 * 1024 * 1024);

    const tap = vm.runtime.identities.find((i) => i.kind === 'tap');
    const tapName = tap?.kind === 'tap' ? tap.name : '';
    expect(s.network.tap).toBe(tapName);
    const counters = (
      await runner.run(
        [
          'cat',
          `/sys/class/net/${tapName}/statistics/rx_bytes`,
          `/sys/class/net/${tapName}/statistics/tx_bytes`,
        ],
        { netns: ns },
      )
    ).stdout
      .trim()
      .split('\n')
      .map(Number);
    expect([s.network.fromGuestBytes, s.network.toGuestBytes]).toEqual(counters);

    // The "guest" is this host: its agent reads our /proc/meminfo.
    expect(s.memory.guestTotalBytes).toBe(meminfoKiB('MemTotal') * 1024);
    expect(s.memory.guestAvailableBytes).toBeGreaterThan(0);

    // The next sample's CPU share is over the window since this one.
    const next = await stats.stats('meter');
    expect(next.cpu.windowSeconds).toBeLessThan(s.uptimeSeconds + 5);
    expect(stats.lastSamples().get(vm.id)).toEqual(next);
  });

  it('health and ping go through the agent; a stopped VM is not_running', async () => {
    const { h, stats } = setup();
    await h.service.create({ name: 'pinger', image: 'tiny' });
    const health = await stats.health('pinger');
    expect(health.name).toBe('pinger');
    expect(health.health.version).toMatch(/^\d+\.\d+/);
    expect(health.health.bootPhasesMs.agentStart).toBeGreaterThan(0);
    const ping = await stats.ping('pinger');
    expect(ping.rttMs).toBeGreaterThan(0);
    expect(ping.agentVersion).toBe(health.health.version);
    await h.service.stop('pinger');
    await expect(stats.stats('pinger')).rejects.toMatchObject({ code: 'not_running' });
    await expect(stats.ping('pinger')).rejects.toMatchObject({ code: 'not_running' });
  });
});

describe('the idle rule', () => {
  it('stops a VM untouched for auto_stop_stale_after, with the reason, and keeps a busy one', async () => {
    const { h, stats } = setup({ stats_poll_interval: '1s', auto_stop_stale_after: '5s' });
    await h.service.create({ name: 'idle', image: 'tiny' });
    await h.service.create({ name: 'busy', image: 'tiny' });
    stats.start();
    let busy = true;
    const keepBusy = (async () => {
      while (busy) {
        const out = new PassThrough().resume();
        await h.service.exec('busy', { argv: ['true'] }, { stdout: out, stderr: out });
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    try {
      // Idle past 5 s, then the next poll (1 s) stops it; the bound leaves room for a slow host.
      await waitUntil(() => h.service.get('idle').state === 'stopped', 30_000);
      const stopped = h.service.get('idle');
      expect(stopped.runtime.stopReason).toMatch(
        /idle rule: untouched for \d+s \(auto_stop_stale_after = "5s"\)/,
      );
      expect(h.service.liveIds()).not.toContain(stopped.id);
      // The busy one has been up as long and more: two more polls leave it running.
      await new Promise((r) => setTimeout(r, 2500));
      expect(h.service.get('busy').state).toBe('running');
    } finally {
      busy = false;
      await keepBusy;
    }
    // A start clears the reason, and touches the VM.
    const restarted = await h.service.start('idle');
    expect(restarted.runtime.stopReason).toBeUndefined();
    expect(Date.now() - Date.parse(restarted.lastTouchedAt)).toBeLessThan(5000);
  });

  it('keeps a VM whose one command runs longer than auto_stop_stale_after', async () => {
    const { h, stats } = setup({ stats_poll_interval: '1s', auto_stop_stale_after: '5s' });
    await h.service.create({ name: 'longrun', image: 'tiny' });
    stats.start();
    const out = new PassThrough().resume();
    // 8 s in one exec: polls every second see it untouched since its start for longer than 5 s.
    const r = await h.service.exec('longrun', { argv: ['sleep', '8'] }, { stdout: out, stderr: out });
    expect(r.exitCode).toBe(0);
    expect(h.service.get('longrun').state).toBe('running');
    // Its end counts as a use: the idle clock starts there.
    expect(Date.now() - Date.parse(h.service.get('longrun').lastTouchedAt)).toBeLessThan(3000);
  });

  it('does nothing with auto_stop_stale_after = "0", and polls no more after close()', async () => {
    const { h, stats } = setup({ stats_poll_interval: '1s', auto_stop_stale_after: '0' });
    const vm = await h.service.create({ name: 'forever', image: 'tiny' });
    h.store.vms.touch(vm.id, new Date(Date.now() - 86_400_000));
    stats.start();
    await new Promise((r) => setTimeout(r, 2500));
    expect(h.service.get('forever').state).toBe('running');
    expect(stats.lastSamples().get(vm.id)?.name).toBe('forever');
    await stats.close();
    const last = stats.lastSamples().get(vm.id)?.sampledAt;
    await new Promise((r) => setTimeout(r, 2500));
    expect(stats.lastSamples().get(vm.id)?.sampledAt).toBe(last);
  });
});

describe('pause and resume', () => {
  const procState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
  const echo = async (h: VmHarness, vm: string) => {
    let text = '';
    const out = new PassThrough();
    out.on('data', (d: Buffer) => (text += d.toString()));
    const r = await h.service.exec(vm, { argv: ['echo', 'hi'] }, { stdout: out, stderr: out });
    return { exitCode: r.exitCode, text };
  };

  /** Like a daemon restart: the service closes (its VMs keep running) and a new one opens the same state. */
  const reopen = async (h: VmHarness): Promise<VmHarness> => {
    const i = open.findIndex((o) => o.h === h);
    const { stats } = open.splice(i, 1)[0] as (typeof open)[number];
    await stats.close();
    await h.close();
    const again = buildVmHarness({
      stateDir: h.deps.stateDir,
      netns: ns,
      bridge,
      bridgeIp,
      instanceId,
      vmm: createStandinVmm(runner, ns, { agentBinary: agent }),
      guest: hostAgentGuest(),
    });
    open.push({ h: again, stats });
    return again;
  };

  it('pause freezes the VMM and refuses exec naming resume; resume runs it again; a restarted service adopts it paused', async () => {
    const { h, stats } = setup();
    await h.service.create({ name: 'nap', image: 'tiny' });
    const { pid } = h.service.live('nap');
    expect((await h.service.pause('nap')).state).toBe('paused');
    expect(procState(pid)).toBe('T');
    expect(h.service.list().find((v) => v.name === 'nap')?.state).toBe('paused');
    await expect(echo(h, 'nap')).rejects.toMatchObject({
      code: 'not_running',
      message: 'VM nap is paused',
      hint: 'banger vm resume nap',
    });
    await expect(h.service.start('nap')).rejects.toMatchObject({ hint: 'banger vm resume nap' });
    // A paused VM is still sampled (its VMM and disks), without waiting on a guest that cannot answer.
    const sample = await stats.stats('nap');
    expect(sample.memory.guestTotalBytes).toBeNull();
    // Pausing twice is a no-op.
    expect((await h.service.pause('nap')).state).toBe('paused');

    // A new service over the same store (a daemon restart) adopts it as paused.
    const again = await reopen(h);
    expect((await again.service.reconcile()).adopted).toEqual(['nap']);
    expect(again.service.get('nap').state).toBe('paused');

    expect((await again.service.resume('nap')).state).toBe('running');
    expect(procState(pid)).not.toBe('T');
    expect(await echo(again, 'nap')).toEqual({ exitCode: 0, text: 'hi\n' });
    await expect(again.service.resume('nap')).resolves.toMatchObject({ state: 'running' });
    await again.service.stop('nap');
    await expect(again.service.pause('nap')).rejects.toMatchObject({ code: 'not_running' });
  });

  it('the VMM is the truth at adopt: a VM paused behind the store (daemon killed before its write) is adopted paused', async () => {
    const { h } = setup();
    const vm = await h.service.create({ name: 'lag', image: 'tiny' });
    const { pid } = h.service.live('lag');
    process.kill(pid, 'SIGSTOP'); // what the stand-in's pause does, behind the store's back
    const again = await reopen(h);
    await again.service.reconcile();
    expect(again.store.vms.findById(vm.id)?.state).toBe('paused');
    expect((await again.service.resume('lag')).state).toBe('running');
  });

  it('the idle rule treats a paused VM as idle: it is stopped, with the reason', async () => {
    const { h, stats } = setup({ stats_poll_interval: '1s', auto_stop_stale_after: '3s' });
    const vm = await h.service.create({ name: 'asleep', image: 'tiny' });
    await h.service.pause('asleep');
    stats.start();
    await waitUntil(() => h.service.get('asleep').state === 'stopped', 60_000);
    expect(h.service.get('asleep').runtime.stopReason).toMatch(/idle rule/);
    expect(h.service.liveIds()).not.toContain(vm.id);
  });
});
