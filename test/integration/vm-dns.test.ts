import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDnsService, type DnsService } from '../../src/daemon/services/dns/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { addImage, buildVmHarness, type VmHarness } from '../fixtures/vm-harness.js';

// The `.vm` DNS server as the daemon wires it (records follow the store's changes), over the VM service
// with real parts and the stand-in VMM, asked by node's resolver (c-ares) on a loopback port.
const fx = createNetnsFixture();
const runner = fx.runner;
const bridge = `br-fc-${fx.id.slice(6)}`;
const bridgeIp = '172.31.7.1';
const instanceId = randomBytes(16).toString('hex');
const log = pino({ level: 'silent' });
let ns: string;
let root: string;
let imagePath: string;
const open: { h: VmHarness; dns: DnsService }[] = [];

beforeAll(async () => {
  ns = await fx.createNetns('dns');
  root = await fx.tempDir();
  imagePath = join(root, 'tiny.ext4');
  await runner.run(['truncate', '-s', '24M', imagePath]);
  await runner.run(['mkfs.ext4', '-F', '-q', imagePath]);
});

afterEach(async () => {
  for (const { h, dns } of open.splice(0)) {
    await dns.close();
    await h.discard();
  }
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

/** A "daemon": the VM service over stateDir, reconciled, then its DNS server (the composition root's order). */
async function daemon(stateDir: string): Promise<{ h: VmHarness; dns: DnsService; resolver: Resolver }> {
  const h = buildVmHarness({ stateDir, netns: ns, bridge, bridgeIp, instanceId });
  addImage(h.store, 'tiny', imagePath);
  const dns = createDnsService({
    config: { dns_addr: '127.0.0.1:0' },
    listVms: () => h.store.vms.list(),
    log,
  });
  h.store.vms.onChange(() => dns.refresh());
  await h.service.reconcile();
  const status = await dns.start();
  if (status.state !== 'serving') throw new Error(`dns not serving: ${JSON.stringify(status)}`);
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([status.address]);
  return { h, dns, resolver };
}

const nx = { code: 'ENOTFOUND' };

describe('the .vm records', () => {
  it('follow start, stop and delete: A for a running VM, NXDOMAIN otherwise', async () => {
    const d = await daemon(join(root, 'life'));
    open.push(d);
    const vm = await d.h.service.create({ name: 'alpha', image: 'tiny' });
    expect(await d.resolver.resolve4('alpha.vm')).toEqual([vm.runtime.guestIp]);
    await expect(d.resolver.resolve6('alpha.vm')).rejects.toMatchObject({ code: 'ENODATA' });
    await d.h.service.stop('alpha');
    await expect(d.resolver.resolve4('alpha.vm')).rejects.toMatchObject(nx);
    const again = await d.h.service.start('alpha');
    expect(await d.resolver.resolve4('alpha.vm')).toEqual([again.runtime.guestIp]);
    await d.h.service.delete('alpha');
    await expect(d.resolver.resolve4('alpha.vm')).rejects.toMatchObject(nx);
  });

  it('come back after a daemon restart that adopts the running VMs', async () => {
    const stateDir = join(root, 'restart');
    const first = await daemon(stateDir);
    const vm = await first.h.service.create({ name: 'kept', image: 'tiny' });
    await first.h.service.create({ name: 'off', image: 'tiny', noStart: true });
    // The daemon goes away; its VMs keep running.
    await first.dns.close();
    await first.h.close();
    const second = await daemon(stateDir);
    open.push(second);
    expect(second.h.service.liveIds()).toEqual([vm.id]);
    expect(await second.resolver.resolve4('kept.vm')).toEqual([vm.runtime.guestIp]);
    await expect(second.resolver.resolve4('off.vm')).rejects.toMatchObject(nx);
  });

  it('answer every query of a burst while VMs start and stop, and end as the store says', async () => {
    const d = await daemon(join(root, 'burst'));
    open.push(d);
    const names = ['b1', 'b2', 'b3'];
    await d.h.service.create({ name: 'b1', image: 'tiny' });
    let lifecycleDone = false;
    const lifecycle = (async () => {
      await Promise.all([
        d.h.service.create({ name: 'b2', image: 'tiny' }),
        d.h.service.create({ name: 'b3', image: 'tiny' }),
      ]);
      await d.h.service.stop('b1');
      await d.h.service.delete('b2');
      lifecycleDone = true;
    })();
    const outcomes = { answered: 0, nxdomain: 0, other: [] as string[] };
    // Bounded: at most 2000 queries, 50 in flight, until the lifecycle is over.
    for (let round = 0; round < 40 && (!lifecycleDone || round < 2); round++) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          try {
            await d.resolver.resolve4(`${names[i % names.length]}.vm`);
            outcomes.answered++;
          } catch (err) {
            const code = (err as { code?: string }).code ?? String(err);
            if (code === 'ENOTFOUND') outcomes.nxdomain++;
            else outcomes.other.push(code);
          }
        }),
      );
    }
    await lifecycle;
    expect(outcomes.other).toEqual([]);
    expect(outcomes.answered).toBeGreaterThan(0);
    await expect(d.resolver.resolve4('b1.vm')).rejects.toMatchObject(nx);
    await expect(d.resolver.resolve4('b2.vm')).rejects.toMatchObject(nx);
    const b3 = d.h.service.get('b3');
    expect(await d.resolver.resolve4('b3.vm')).toEqual([b3.runtime.guestIp]);
  });
});
