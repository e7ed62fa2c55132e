import type { Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createInProcessPrivOps,
  createTapPool,
  ensureBridge,
  type LinkState,
  listLinks,
  type PrivOps,
  readLink,
  type TapPool,
  teardownAll,
} from '../../src/host/index.js';
import type { TeardownIdentity } from '../../src/model/identity.js';
import { createNetnsFixture } from '../fixtures/netns.js';

// The hostile corpus for links: a namespace where banger shares a bridge with taps it did not make
// (another program's, another banger instance's) and meets bridges it did not make. banger must hand
// out, change and delete only links that carry its own mark.
const fx = createNetnsFixture();
const runner = fx.runner;
const token = fx.id.slice(6);
const bridge = { bridge_name: `br-fc-${token}`, bridge_ip: '172.31.0.1', cidr: 24, adopt_bridge: false };
let ns: string;
/** Two banger instances: two state dirs, so two instance ids and two marks. */
let privA: PrivOps;
let privB: PrivOps;

const ip = (...args: string[]) => runner.run(['ip', '-n', ns, ...args]);
const link = async (name: string) => readLink(runner, name, ns);
/** Every tap of the namespace as `name@master~alias`, sorted. */
const taps = async () =>
  (await listLinks(runner, ns))
    .filter((l) => l.kind === 'tun')
    .map((l) => `${l.name}@${l.master}~${l.alias ?? ''}`)
    .sort();
const shape = (l: LinkState | undefined) => l && { up: l.up, addresses: l.addresses, alias: l.alias };

/** A tap made the way any other program would: `ip tuntap add`, attached to the bridge, up. */
async function foreignTap(name: string, alias?: string): Promise<void> {
  await ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
  await ip('link', 'set', 'dev', name, 'master', bridge.bridge_name, 'up');
  if (alias) await ip('link', 'set', 'dev', name, 'alias', alias);
}

function capturingLog(): { log: Pick<Logger, 'warn'>; warned: () => string[] } {
  const lines: string[] = [];
  const log = {
    warn: (obj: object, msg: string) => lines.push(`${JSON.stringify(obj)} ${msg}`),
  } as unknown as Pick<Logger, 'warn'>;
  return { log, warned: () => lines };
}

const pool = (priv: PrivOps, size: number, log?: Pick<Logger, 'warn'>): TapPool =>
  createTapPool({ priv, runner, bridge: bridge.bridge_name, size, netns: ns, log });

beforeAll(async () => {
  ns = await fx.createNetns('host');
  privA = createInProcessPrivOps({ runner, stateDir: await fx.tempDir() });
  privB = createInProcessPrivOps({ runner, stateDir: await fx.tempDir() });
  await ensureBridge({ priv: privA, runner }, bridge, ns);
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

describe('taps banger did not make', () => {
  it('a foreign tap-fc-0007 on the bridge survives fill, acquire, drain and teardown of an identity naming it', async () => {
    await foreignTap('tap-fc-0007');
    // Also one where the pool would start numbering, and one that only looks like a banger mark.
    await foreignTap('tap-fc-0001');
    await foreignTap('tap-fc-0002', `banger:${'0'.repeat(32)}-forged`);
    const foreign = await taps();
    const { log, warned } = capturingLog();
    const a = pool(privA, 2, log);
    await a.fill();
    const names = (await taps()).map((t) => t.split('@')[0]);
    expect(names).toEqual(['tap-fc-0001', 'tap-fc-0002', 'tap-fc-0003', 'tap-fc-0004', 'tap-fc-0007']);
    const mark = await privA.linkMark();
    const on = `@${bridge.bridge_name}~${mark}`;
    // Two idle taps of ours, under names that collide with nothing.
    expect(await taps()).toEqual([...foreign, `tap-fc-0003${on}`, `tap-fc-0004${on}`].sort());
    const got = await Promise.all([a.acquire(), a.acquire(), a.acquire()]);
    expect(got.map((t) => t.name).sort()).toEqual(['tap-fc-0003', 'tap-fc-0004', 'tap-fc-0005']);
    for (const t of got) await a.release(t);
    await a.drain(); // what `banger daemon stop` does
    expect(await taps()).toEqual(foreign);

    // A recorded identity that names a foreign tap (a crash record, a reused name): refused and logged.
    const named: TeardownIdentity[] = ['tap-fc-0007', 'tap-fc-0001', 'tap-fc-0002'].map((name) => ({
      kind: 'tap',
      name,
      netns: ns,
    }));
    await teardownAll({ priv: privA, log }, named);
    await a.release({ kind: 'tap', name: 'tap-fc-0007', netns: ns });
    expect(await taps()).toEqual(foreign);
    expect(warned().filter((w) => w.includes('"tap-fc-0007"') && w.includes('not banger-made'))).toHaveLength(
      2,
    );

    // Asked to create a tap under a foreign name, the privileged layer refuses and changes nothing.
    await expect(
      privA.createTap({ name: 'tap-fc-0007', bridge: bridge.bridge_name, netns: ns }),
    ).rejects.toMatchObject({
      code: 'already_exists',
      message: expect.stringContaining('banger did not make it'),
    });
    expect(await privA.deleteTap({ name: 'tap-fc-0007', netns: ns })).toBe('foreign');
    expect(await taps()).toEqual(foreign);
    for (const name of ['tap-fc-0007', 'tap-fc-0001', 'tap-fc-0002']) await ip('link', 'del', name);
  });

  it('two instances on one bridge never hand out or delete each other’s taps', async () => {
    const { log, warned } = capturingLog();
    const a = pool(privA, 2);
    const b = pool(privB, 2, log);
    await a.fill();
    await b.fill();
    expect(await taps()).toHaveLength(4);
    const [markA, markB] = [await privA.linkMark(), await privB.linkMark()];
    expect(markA).not.toBe(markB);
    const on = (m: string) => `@${bridge.bridge_name}~${m}`;
    expect(await taps()).toEqual([
      `tap-fc-0001${on(markA)}`,
      `tap-fc-0002${on(markA)}`,
      `tap-fc-0003${on(markB)}`,
      `tap-fc-0004${on(markB)}`,
    ]);
    const held = await a.acquire();
    expect(held.name).toBe('tap-fc-0001');
    const fromB = await Promise.all([b.acquire(), b.acquire(), b.acquire()]);
    expect(fromB.map((t) => t.name).sort()).toEqual(['tap-fc-0003', 'tap-fc-0004', 'tap-fc-0005']);
    for (const t of fromB) await b.release(t);
    await b.drain();
    // B's teardown of an identity naming A's tap leaves it: it is another banger's.
    await teardownAll({ priv: privB, log }, [held]);
    expect(warned().join('\n')).toContain('"tap-fc-0001"');
    expect(await taps()).toEqual([`tap-fc-0001${on(markA)}`, `tap-fc-0002${on(markA)}`]);
    await a.release(held);
    await a.drain();
    expect(await taps()).toEqual([]);
  });
});

describe('bridges banger did not make', () => {
  const name = `br-fc-${token}f`;
  const foreign = { ...bridge, bridge_name: name, bridge_ip: '172.31.1.1' };

  it('is refused without adopt_bridge, and neither re-addressed, set up nor marked', async () => {
    await ip('link', 'add', 'name', name, 'type', 'bridge');
    await ip('addr', 'add', '172.31.1.1/24', 'dev', name);
    const before = shape(await link(name));
    expect(before).toEqual({ up: false, addresses: ['172.31.1.1/24'], alias: undefined });
    for (const config of [foreign, { ...foreign, bridge_ip: '172.31.9.1' }]) {
      const err = await ensureBridge({ priv: privA, runner }, config, ns).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'already_exists',
        message: expect.stringContaining(`bridge ${name} exists but banger did not make it`),
        hint: expect.stringMatching(/bridge_name .*adopt_bridge = true/),
      });
    }
    expect(shape(await link(name))).toEqual(before);
  });

  it('with adopt_bridge is used as it is: never re-addressed, set up or deleted', async () => {
    const adopt = { ...foreign, adopt_bridge: true };
    // Down, so unusable: banger says what to do rather than setting it up itself.
    await expect(ensureBridge({ priv: privA, runner }, adopt, ns)).rejects.toMatchObject({
      code: 'operation_failed',
      message: expect.stringContaining('adopted'),
    });
    await ip('link', 'set', name, 'up');
    await expect(
      ensureBridge({ priv: privA, runner }, { ...adopt, bridge_ip: '172.31.9.1' }, ns),
    ).rejects.toMatchObject({
      message: expect.stringContaining('172.31.9.1/24'),
    });
    const before = shape(await link(name));
    expect(await ensureBridge({ priv: privA, runner }, adopt, ns)).toEqual({
      kind: 'bridge',
      name,
      netns: ns,
    });
    const p = createTapPool({ priv: privA, runner, bridge: name, size: 1, netns: ns });
    await p.fill();
    const tap = await p.acquire();
    expect(await link(tap.name)).toMatchObject({ master: name, alias: await privA.linkMark() });
    await p.release(tap);
    await p.drain();
    await teardownAll({ priv: privA }, [{ kind: 'bridge', name, netns: ns }]);
    expect(shape(await link(name))).toEqual(before);
    expect(await privA.deleteBridge({ name, netns: ns })).toBe('foreign');
    await ip('link', 'del', name);
  });
});

describe('links banger made', () => {
  it('are marked at creation and still cleaned up, by their own instance only', async () => {
    const name = `br-fc-${token}m`;
    const own = { ...bridge, bridge_name: name, bridge_ip: '172.31.2.1' };
    const id = await ensureBridge({ priv: privA, runner }, own, ns);
    expect((await link(name))?.alias).toMatch(/^banger:[0-9a-f]{32}$/);
    expect(await link(name)).toMatchObject({
      up: true,
      addresses: ['172.31.2.1/24'],
      alias: await privA.linkMark(),
    });
    const p = createTapPool({ priv: privA, runner, bridge: name, size: 1, netns: ns });
    const tap = await p.acquire();
    // Another instance refuses both, without adopt_bridge even to use the bridge.
    await expect(ensureBridge({ priv: privB, runner }, own, ns)).rejects.toMatchObject({
      message: expect.stringContaining('another banger instance made it'),
    });
    await teardownAll({ priv: privB }, [id, tap]);
    expect(await link(name)).toBeDefined();
    expect(await link(tap.name)).toBeDefined();
    await teardownAll({ priv: privA }, [id, tap]);
    expect(await link(name)).toBeUndefined();
    expect(await link(tap.name)).toBeUndefined();
  });
});
