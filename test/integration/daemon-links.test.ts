import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessPrivOps, ensureBridge, listLinks, readLink } from '../../src/host/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import { createNetnsFixture } from '../fixtures/netns.js';

// The reproduction, through the built daemon: two banger instances (two BANGER_HOMEs) and a
// foreign tap-fc-0007 share one bridge in a namespace this file creates. `banger daemon stop` drains
// only the stopping instance's own taps, and a daemon never re-addresses a bridge it did not make.
const fx = createNetnsFixture();
const runner = fx.runner;
const bridgeName = `br-fc-${fx.id.slice(6)}`;
const FOREIGN = 'tap-fc-0007';
let ns: string;
const instances: BangerInstance[] = [];

function instance(config: string): BangerInstance {
  const inst = createInstance();
  instances.push(inst);
  mkdirSync(join(inst.home, 'config'), { recursive: true });
  mkdirSync(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
  writeConfig(inst, config);
  return inst;
}

function writeConfig(inst: BangerInstance, extra: string): void {
  const base = `netns = "${ns}"\nbridge_name = "${bridgeName}"\ntap_pool_size = 2\n`;
  writeFileSync(join(inst.home, 'config', 'config.toml'), base + extra);
}

/** The daemon starts on first use; reconcile fills the pool where the bridge exists. */
async function start(inst: BangerInstance): Promise<void> {
  const r = await inst.cli(['vm', 'list']);
  expect(r.exitCode, r.stderr).toBe(0);
}

async function stop(inst: BangerInstance): Promise<void> {
  const r = await inst.cli(['daemon', 'stop']);
  expect(r.exitCode, r.stderr).toBe(0);
}

/** Taps in the namespace as `name~owner`, owner being A, B, or - for a tap without either mark. */
async function taps(marks: Record<string, string>): Promise<string[]> {
  const owner = (alias: string | undefined) => Object.entries(marks).find(([, m]) => m === alias)?.[0] ?? '-';
  return (await listLinks(runner, ns))
    .filter((l) => l.kind === 'tun')
    .map((l) => `${l.name}~${owner(l.alias)}`)
    .sort();
}

beforeAll(async () => {
  ns = await fx.createNetns('host');
});

afterAll(async () => {
  for (const inst of instances) await inst.cleanup();
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

describe('daemon start and stop beside links banger did not make', () => {
  it('drains only its own taps, refuses a bridge it did not make, and adopts one only when told to', async () => {
    const a = instance('bridge_ip = "172.31.5.1"\n');
    // A's bridge, made through A's own privileged operations (as its first `vm run` would).
    const privA = createInProcessPrivOps({ runner, stateDir: join(a.home, 'state') });
    await ensureBridge(
      { priv: privA, runner },
      { bridge_name: bridgeName, bridge_ip: '172.31.5.1', cidr: 24, adopt_bridge: false },
      ns,
    );
    await runner.run(['ip', 'tuntap', 'add', 'dev', FOREIGN, 'mode', 'tap'], { netns: ns });
    await runner.run(['ip', 'link', 'set', 'dev', FOREIGN, 'master', bridgeName, 'up'], { netns: ns });
    const bridgeBefore = await readLink(runner, bridgeName, ns);
    // The bridge carries A's mark, as every link A creates does.
    const marks: Record<string, string> = { A: String(bridgeBefore?.alias) };

    await start(a);
    expect(await taps(marks)).toEqual(['tap-fc-0001~A', 'tap-fc-0002~A', `${FOREIGN}~-`]);
    await stop(a);
    expect(await taps(marks)).toEqual([`${FOREIGN}~-`]);

    // B, on the same bridge_name with another address and no adopt_bridge: refused, bridge untouched.
    const b = instance('bridge_ip = "172.31.6.1"\n');
    await start(b);
    expect(await readLink(runner, bridgeName, ns)).toEqual(bridgeBefore);
    expect(await taps(marks)).toEqual([`${FOREIGN}~-`]);
    const log = readFileSync(join(b.home, 'state', 'bangerd.log'), 'utf8');
    expect(log).toContain(`bridge ${bridgeName} exists but another banger instance made it`);
    await stop(b);

    // With adopt_bridge (and the bridge's own address) B uses it as it is, beside A.
    writeConfig(b, 'bridge_ip = "172.31.5.1"\nadopt_bridge = true\n');
    await start(a);
    await start(b);
    marks.B = await createInProcessPrivOps({ runner, stateDir: join(b.home, 'state') }).linkMark();
    expect(await taps(marks)).toEqual([
      'tap-fc-0001~A',
      'tap-fc-0002~A',
      'tap-fc-0003~B',
      'tap-fc-0004~B',
      `${FOREIGN}~-`,
    ]);
    await stop(b);
    expect(await taps(marks)).toEqual(['tap-fc-0001~A', 'tap-fc-0002~A', `${FOREIGN}~-`]);
    await stop(a);
    expect(await taps(marks)).toEqual([`${FOREIGN}~-`]);
    expect(await readLink(runner, bridgeName, ns)).toEqual(bridgeBefore);
  });
});
