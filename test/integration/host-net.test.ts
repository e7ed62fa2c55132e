import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFileCidLeaseStore,
  createFileIpLeaseStore,
  createHostNetwork,
  createInProcessPrivOps,
  createTapPool,
  ensureBridge,
  ensureNat,
  listLinks,
  listNftRules,
  type PrivOps,
  planNat,
  readLink,
  teardownAll,
  teardownBridge,
  teardownNat,
} from '../../src/host/index.js';
import type { TeardownIdentity } from '../../src/model/identity.js';
import { createNetnsFixture } from '../fixtures/netns.js';

// Topology (all in namespaces this file creates):
//   guest ns: eth0 172.30.0.2/24 --veth-- "tap-fc-0900" on the bridge in host ns (stands in for a VM's tap,
//   which has no carrier without a VMM) ; host ns: bridge 172.30.0.1/24, up0 10.99.0.1/24 --veth--
//   upstream ns: eth0 10.99.0.2/24. The upstream has no route back to 172.30.0.0/24, so only MASQUERADE
//   lets the guest's connection complete, and the upstream sees 10.99.0.1.
const fx = createNetnsFixture();
const runner = fx.runner;
const token = fx.id.slice(6);
const bridge = { bridge_name: `br-fc-${token}`, bridge_ip: '172.30.0.1', cidr: 24, adopt_bridge: false };
const GUEST_TAP = 'tap-fc-0900';
let hostNs: string;
let upNs: string;
let guestNs: string;
let priv: PrivOps;

const SERVER = `const s=require('net').createServer(c=>c.end(c.remoteAddress.replace(/^::ffff:/,'')));
s.listen(8080,'10.99.0.2',()=>console.log('ready'));`;
const CLIENT = `const c=require('net').connect(8080,'10.99.0.2');let d='';c.on('data',x=>d+=x);
c.on('end',()=>process.stdout.write(d));c.on('error',e=>{console.error(e.message);process.exit(1)});`;

async function startServer(): Promise<ChildProcess> {
  const child = runner.spawn([process.execPath, '-e', SERVER], { netns: upNs, pipe: true });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return child;
}

/** What the upstream saw as the client's address. */
async function connectFromGuest(): Promise<string> {
  const res = await runner.run([process.execPath, '-e', CLIENT], { netns: guestNs, timeoutMs: 30_000 });
  return res.stdout.trim();
}

/** banger's nft tables in the host namespace (iptables-nft's own `ip nat`/`ip filter` are not ours). */
async function bangerTables(): Promise<string> {
  const tables = await fx.exec(hostNs, ['nft', 'list', 'tables']);
  return tables
    .split('\n')
    .filter((l) => l.includes('banger'))
    .join('\n');
}

beforeAll(async () => {
  const stateDir = await fx.tempDir();
  priv = createInProcessPrivOps({ runner, stateDir });
  hostNs = await fx.createNetns('host');
  upNs = await fx.createNetns('up');
  guestNs = await fx.createNetns('guest');
  const ip = (ns: string, ...args: string[]) => runner.run(['ip', '-n', ns, ...args]);
  await ip(hostNs, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', upNs);
  await ip(hostNs, 'addr', 'add', '10.99.0.1/24', 'dev', 'up0');
  await ip(hostNs, 'link', 'set', 'up0', 'up');
  await ip(upNs, 'addr', 'add', '10.99.0.2/24', 'dev', 'eth0');
  await ip(upNs, 'link', 'set', 'eth0', 'up');
  await ip(hostNs, 'route', 'add', 'default', 'via', '10.99.0.2');
  await ip(hostNs, 'link', 'add', GUEST_TAP, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guestNs);
  await ip(guestNs, 'addr', 'add', '172.30.0.2/24', 'dev', 'eth0');
  await ip(guestNs, 'link', 'set', 'eth0', 'up');
  await ip(guestNs, 'route', 'add', 'default', 'via', '172.30.0.1');
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

describe('bridge', () => {
  it('is created with its address, read back with ip -j, and ensuring again changes nothing', async () => {
    const id = await ensureBridge({ priv, runner }, bridge, hostNs);
    expect(id).toEqual({ kind: 'bridge', name: bridge.bridge_name, netns: hostNs });
    await ensureBridge({ priv, runner }, bridge, hostNs);
    const link = await readLink(runner, bridge.bridge_name, hostNs);
    expect(link).toMatchObject({ kind: 'bridge', up: true, addresses: ['172.30.0.1/24'] });
    await runner.run(['ip', '-n', hostNs, 'link', 'set', GUEST_TAP, 'master', bridge.bridge_name, 'up']);
  });

  it('refuses to take over a device of another kind that has the bridge name', async () => {
    const name = `br-fc-${token}x`;
    await runner.run([
      'ip',
      '-n',
      hostNs,
      'link',
      'add',
      name,
      'type',
      'veth',
      'peer',
      'name',
      `vp-${token}`,
    ]);
    await expect(ensureBridge({ priv, runner }, { ...bridge, bridge_name: name }, hostNs)).rejects.toThrow(
      /not a bridge/,
    );
    // Not ours (no mark): teardown of an identity naming it leaves it in place.
    await teardownBridge(priv, { kind: 'bridge', name, netns: hostNs });
    expect(await readLink(runner, name, hostNs)).toMatchObject({ kind: 'veth' });
    await runner.run(['ip', '-n', hostNs, 'link', 'del', name]);
  });

  it('refuses a bridge that is not banger-managed', async () => {
    await expect(
      ensureBridge({ priv, runner }, { ...bridge, bridge_name: 'docker0' }, hostNs),
    ).rejects.toMatchObject({ code: 'bad_request' });
  });
});

describe('tap pool', () => {
  const taps = async () =>
    (await listLinks(runner, hostNs))
      .filter((l) => l.kind === 'tun')
      .map((l) => `${l.name}@${l.master}`)
      .sort();

  it('keeps warm taps on the bridge, hands them out, refills on demand and trims on release', async () => {
    const pool = createTapPool({ priv, runner, bridge: bridge.bridge_name, size: 2, netns: hostNs });
    await pool.fill();
    const on = `@${bridge.bridge_name}`;
    expect(await taps()).toEqual([`tap-fc-0001${on}`, `tap-fc-0002${on}`]);
    const a = await pool.acquire();
    const b = await pool.acquire();
    const c = await pool.acquire();
    expect([a.name, b.name, c.name]).toEqual(['tap-fc-0001', 'tap-fc-0002', 'tap-fc-0003']);
    expect(c).toEqual({ kind: 'tap', name: 'tap-fc-0003', netns: hostNs });
    await pool.release(c);
    await pool.release(a);
    await pool.release(b);
    // Two idle taps is the pool's size: the third release deleted its tap.
    expect(await taps()).toEqual([`tap-fc-0001${on}`, `tap-fc-0003${on}`]);
    await pool.drain();
    expect(await taps()).toEqual([]);
  });

  it('refills in the background after an acquire, and drain waits for the refill', async () => {
    const pool = createTapPool({ priv, runner, bridge: bridge.bridge_name, size: 2, netns: hostNs });
    const on = `@${bridge.bridge_name}`;
    const a = await pool.acquire();
    expect(a.name).toBe('tap-fc-0001');
    pool.refill();
    pool.refill(); // one refill at a time: the second call joins the first
    // Drain waits for the refill (two idle taps made), then deletes the idle ones: the leased tap stays.
    await pool.drain();
    expect(await taps()).toEqual([`tap-fc-0001${on}`]);
    pool.refill();
    const b = await pool.acquire(); // behind the refill's lock: an idle tap it made
    expect(b.name).toBe('tap-fc-0002');
    await pool.release(a);
    await pool.release(b);
    await pool.drain();
    expect(await taps()).toEqual([]);
  });

  it('gives concurrent acquires distinct taps', async () => {
    const pool = createTapPool({ priv, runner, bridge: bridge.bridge_name, size: 0, netns: hostNs });
    const got = await Promise.all([1, 2, 3, 4].map(() => pool.acquire()));
    expect(new Set(got.map((t) => t.name)).size).toBe(4);
    await Promise.all(got.map((t) => pool.release(t)));
    expect(await taps()).toEqual([]);
  });

  it('never hands out a tap leased by a VM that survived a daemon restart', async () => {
    const first = createTapPool({ priv, runner, bridge: bridge.bridge_name, size: 1, netns: hostNs });
    const held = await first.acquire();
    const second = createTapPool({
      priv,
      runner,
      bridge: bridge.bridge_name,
      size: 1,
      netns: hostNs,
      leased: [held.name],
    });
    const next = await second.acquire();
    expect(next.name).not.toBe(held.name);
    await teardownAll({ priv }, [held, next]);
    expect(await taps()).toEqual([]);
  });
});

describe('NAT', () => {
  it('masquerades the guest behind the host with nft, in banger table only, and removes it all', async () => {
    const server = await startServer();
    try {
      const table = `banger_${token}`;
      const id = await planNat({ runner }, { tap: GUEST_TAP, guestIp: '172.30.0.2', netns: hostNs, table });
      expect(id).toMatchObject({ kind: 'nat', backend: 'nft', uplink: 'up0', table });
      await ensureNat(priv, id);
      await ensureNat(priv, id);
      expect(await listNftRules(runner, table, hostNs)).toHaveLength(3);
      expect(await fx.exec(hostNs, ['sysctl', '-n', 'net.ipv4.ip_forward'])).toBe('1\n');
      expect(await connectFromGuest()).toBe('10.99.0.1');
      await teardownNat(priv, id);
      expect(await bangerTables()).toBe('');
      await teardownNat(priv, id);
    } finally {
      server.kill();
    }
  });

  it('keeps other guests rules when one guest is torn down', async () => {
    const table = `banger_${token}`;
    const one = await planNat({ runner }, { tap: GUEST_TAP, guestIp: '172.30.0.2', netns: hostNs, table });
    const two = { ...one, tap: 'tap-fc-0901', guestIp: '172.30.0.3' };
    await Promise.all([ensureNat(priv, one), ensureNat(priv, two)]);
    await teardownNat(priv, one);
    const left = await listNftRules(runner, table, hostNs);
    expect(left?.map((r) => r.comment)).toEqual(Array(3).fill('banger:tap-fc-0901:172.30.0.3'));
    await teardownNat(priv, two);
    expect(await bangerTables()).toBe('');
  });

  it('falls back to iptables with the same behaviour and leaves no banger rule behind', async () => {
    const server = await startServer();
    try {
      const id = await planNat(
        { runner },
        { tap: GUEST_TAP, guestIp: '172.30.0.2', netns: hostNs, backend: 'iptables' },
      );
      await ensureNat(priv, id);
      await ensureNat(priv, id);
      const saved = await fx.exec(hostNs, ['iptables-save']);
      expect(saved.match(/banger:tap-fc-0900:172\.30\.0\.2/g)).toHaveLength(3);
      expect(await connectFromGuest()).toBe('10.99.0.1');
      await teardownNat(priv, id);
      await teardownNat(priv, id);
      expect(await fx.exec(hostNs, ['iptables-save'])).not.toContain('banger:');
    } finally {
      server.kill();
    }
  });
});

describe('teardown from recorded identities (crash safety)', () => {
  it('removes what exists and ignores what does not, then leaves nothing', async () => {
    const pool = createTapPool({ priv, runner, bridge: bridge.bridge_name, size: 0, netns: hostNs });
    const tap = await pool.acquire();
    const nat = await planNat({ runner }, { tap: tap.name, guestIp: '172.30.0.9', netns: hostNs });
    await ensureNat(priv, nat);
    // What a crashed daemon would have recorded: some of it was never created.
    const recorded: TeardownIdentity[] = [
      { kind: 'bridge', name: bridge.bridge_name, netns: hostNs },
      tap,
      { kind: 'tap', name: 'tap-fc-0777', netns: hostNs },
      nat,
      { ...nat, guestIp: '172.30.0.77', tap: 'tap-fc-0777' },
    ];
    await teardownAll({ priv }, recorded);
    await teardownAll({ priv }, recorded);
    const left = (await listLinks(runner, hostNs)).map((l) => l.name).sort();
    expect(left).toEqual(['lo', GUEST_TAP, 'up0']);
    expect(await bangerTables()).toBe('');
    await teardownBridge(priv, { kind: 'bridge', name: bridge.bridge_name, netns: hostNs });
  });
});

describe('HostNetwork, as a VM service uses it', () => {
  it('brings a guest online from config and leaves nothing after teardown of its recorded identities', async () => {
    const stateDir = await fx.tempDir();
    const net = createHostNetwork({
      runner,
      priv,
      config: { ...bridge, tap_pool_size: 1, netns: hostNs },
      leaseStore: createFileIpLeaseStore(join(stateDir, 'ip-leases.json')),
      cidLeaseStore: createFileCidLeaseStore(join(stateDir, 'cid-leases.json')),
    });
    const recorded: TeardownIdentity[] = [];
    await net.ensureBridge();
    await runner.run(['ip', '-n', hostNs, 'link', 'set', GUEST_TAP, 'master', bridge.bridge_name, 'up']);
    await net.taps.fill();
    const { address, identity: ipId } = await net.ips.allocate('vm-1');
    recorded.push(ipId);
    expect(address).toBe('172.30.0.2');
    const tap = await net.taps.acquire();
    recorded.push(tap);
    const nat = await net.planNat(tap.name, address);
    recorded.push(nat);
    await net.ensureNat(nat);
    const server = await startServer();
    try {
      expect(await connectFromGuest()).toBe('10.99.0.1');
    } finally {
      server.kill();
    }
    await teardownAll({ priv, ips: net.ips }, recorded);
    await net.taps.drain();
    expect(await net.ips.leases()).toEqual({});
    expect(await bangerTables()).toBe('');
    expect((await listLinks(runner, hostNs)).filter((l) => l.kind === 'tun')).toEqual([]);
    await teardownBridge(priv, { kind: 'bridge', name: bridge.bridge_name, netns: hostNs });
  });
});
