/**
 * `priv_helper_socket`: the built daemon asks a running bangerd-root for its privileged operations instead
 * of doing them itself. Here the tap pool (created at start, drained at stop) goes through the helper in a
 * namespace this file makes: the taps carry the helper's mark, the helper logs each operation with the
 * daemon's pid, and nothing is left. Without a helper on that socket, the daemon says it cannot reach it.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemotePrivOps, listLinks } from '../../src/host/index.js';
import { type BangerInstance, createInstance, REPO_ROOT } from '../fixtures/banger-instance.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { type RunningPrivHelper, startPrivHelper } from '../fixtures/priv-helper.js';

const fx = createNetnsFixture();
const bridgeName = `br-fc-${fx.id.slice(6)}`;
let ns: string;
let helper: RunningPrivHelper | undefined;
const instances: BangerInstance[] = [];

function instance(extra: string): BangerInstance {
  const inst = createInstance();
  instances.push(inst);
  mkdirSync(join(inst.home, 'config'), { recursive: true });
  mkdirSync(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
  const base = `netns = "${ns}"\nbridge_name = "${bridgeName}"\nbridge_ip = "172.31.9.1"\ntap_pool_size = 2\n`;
  writeFileSync(join(inst.home, 'config', 'config.toml'), base + extra);
  return inst;
}

async function tapsIn(): Promise<{ name: string; alias?: string }[]> {
  return (await listLinks(fx.runner, ns))
    .filter((l) => l.kind === 'tun')
    .map((l) => ({ name: l.name, alias: l.alias }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

beforeAll(async () => {
  ns = await fx.createNetns('dh');
});

afterAll(async () => {
  for (const inst of instances) await inst.cleanup();
  if (helper) expect(await helper.stop()).toEqual({ exitCode: 0, socketLeft: false });
  await fx.cleanup();
  await fx.assertNoLeftovers();
}, 120_000);

describe('a daemon with priv_helper_socket', () => {
  it('fills and drains its tap pool through bangerd-root', async () => {
    const dir = await fx.tempDir();
    chmodSync(dir, 0o711);
    const inst = instance('');
    helper = await startPrivHelper({ owner: 'nobody', dir, stateDir: join(inst.home, 'state') });
    const socket = helper.socketPath;
    writeFileSync(join(inst.home, 'config', 'config.toml'), `priv_helper_socket = "${socket}"\n`, {
      flag: 'a',
    });
    // The bridge a first `vm run` would make, made through the helper too: it carries the helper's mark.
    const remote = createRemotePrivOps({ socketPath: socket });
    await remote.ensureBridge({ name: bridgeName, ip: '172.31.9.1', prefix: 24, netns: ns });
    const mark = await remote.linkMark();

    const r = await inst.cli(['vm', 'list']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await tapsIn()).toEqual([
      { name: 'tap-fc-0001', alias: mark },
      { name: 'tap-fc-0002', alias: mark },
    ]);
    const pid = inst.daemonPid();
    expect(pid).toBeGreaterThan(1);
    const created = helper.log().match(new RegExp(`uid=0 pid=${pid} op=createTap ok`, 'g')) ?? [];
    expect(created).toHaveLength(2);

    const s = await inst.cli(['daemon', 'stop']);
    expect(s.exitCode, s.stderr).toBe(0);
    expect(await tapsIn()).toEqual([]);
    expect(helper.log().match(new RegExp(`pid=${pid} op=deleteTap ok`, 'g'))).toHaveLength(2);
    expect(await remote.deleteBridge({ name: bridgeName, netns: ns })).toBe('deleted');
  }, 180_000);

  it('says it cannot reach bangerd-root when none listens on the socket, and makes no tap itself', async () => {
    const dir = await fx.tempDir();
    const inst = instance(`priv_helper_socket = "${join(dir, 'none.sock')}"\n`);
    await createRemotePrivOps({ socketPath: helper!.socketPath }).ensureBridge({
      name: bridgeName,
      ip: '172.31.9.1',
      prefix: 24,
      netns: ns,
    });
    const r = await inst.cli(['vm', 'list']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await tapsIn()).toEqual([]);
    const log = readFileSync(join(inst.home, 'state', 'bangerd.log'), 'utf8');
    expect(log).toContain(`cannot reach bangerd-root at ${join(dir, 'none.sock')}: ENOENT`);
    const s = await inst.cli(['daemon', 'stop']);
    expect(s.exitCode, s.stderr).toBe(0);
    expect(
      await createRemotePrivOps({ socketPath: helper!.socketPath }).deleteBridge({
        name: bridgeName,
        netns: ns,
      }),
    ).toBe('deleted');
  }, 180_000);

  it('banger doctor reports the posture: root user mode, the split with the helper version, or a helper it cannot reach', async () => {
    const privileges = async (inst: BangerInstance) => {
      const r = await inst.cli(['doctor', '--json']);
      const rows = JSON.parse(r.stdout) as { name: string; status: string; details: string[] }[];
      return { exitCode: r.exitCode, row: rows.find((x) => x.name === 'privileges') };
    };
    const rootMode = createInstance();
    instances.push(rootMode);
    expect((await privileges(rootMode)).row).toMatchObject({
      status: 'WARN',
      details: [expect.stringMatching(/^root user mode/)],
    });
    const split = instance(`priv_helper_socket = "${helper!.socketPath}"\n`);
    const version = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version as string;
    expect((await privileges(split)).row).toEqual({
      name: 'privileges',
      status: 'PASS',
      details: [`split: bangerd-root ${version} on ${helper!.socketPath}, serving uid 65534`],
    });
    // The owner the helper serves: its taps are made for it, and /dev/kvm and /dev/net/tun are judged for it.
    const access = (
      JSON.parse((await split.cli(['doctor', '--json'])).stdout) as { name: string; details: string[] }[]
    ).find((x) => x.name === 'owner access');
    expect(access?.details).toEqual([
      expect.stringMatching(
        /^\/dev\/kvm: (absent, guests run under TCG, slower|nobody \(uid 65534\) can(not)? open it)/,
      ),
      // Judged by the host's real node: Debian's udev makes it 0666, this build host ships it 0600.
      expect.stringMatching(
        /^\/dev\/net\/tun: nobody \(uid 65534\) (can open it|cannot open it \(mode \d+\), so the owner's VMs cannot attach their taps)$/,
      ),
      'taps: bangerd-root makes them owned by nobody (uid 65534)',
    ]);
    const gone = instance(`priv_helper_socket = "${join(await fx.tempDir(), 'gone.sock')}"\n`);
    const res = await privileges(gone);
    expect(res.exitCode).toBe(1);
    expect(res.row).toMatchObject({
      status: 'FAIL',
      details: [expect.stringContaining('cannot reach bangerd-root')],
    });
    expect(helper!.log()).toMatch(/uid=0 pid=\d+ op=hello ok/);
  }, 120_000);
});
