import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import {
  envRecord,
  generateVmName,
  guestCmdline,
  macFor,
  newVmId,
  readHandles,
  resolveVm,
  vmPaths,
} from '../../../src/daemon/services/vms/index.js';
import { isRuntimeIdentity } from '../../../src/daemon/services/vms/live.js';
import { validateVmName } from '../../../src/model/names.js';
import type { VM } from '../../../src/model/vm.js';
import { createStore, openStore } from '../../../src/store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'bgr-vms-unit-'));
const silent = pino({ level: 'silent' });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('names', () => {
  it('generates free DNS labels, with a suffix once plain pairs keep colliding', () => {
    for (let i = 0; i < 200; i++)
      expect(validateVmName(generateVmName(() => false))).toMatch(/^[a-z]+-[a-z]+$/);
    expect(generateVmName((n) => !/\d$/.test(n))).toMatch(/^[a-z]+-[a-z]+-\d{4}$/);
  });
  it('ids are 16 hex digits; MACs are locally administered unicast and stable', () => {
    const id = newVmId();
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(macFor(id)).toBe(macFor(id));
    expect(macFor('0123456789abcdef')).toBe('02:01:23:45:67:89');
  });
});

describe('kernel command line', () => {
  it('carries root, address, hostname, DNS and init', () => {
    expect(
      guestCmdline({
        hostname: 'calm-otter',
        address: '172.16.0.2/24',
        gateway: '172.16.0.1',
        dns: '1.1.1.1',
        init: '/sbin/banger-init',
      }),
    ).toBe(
      'console=ttyS0 root=/dev/vda rw net.ifnames=0 panic=-1 banger.ip=172.16.0.2/24,172.16.0.1,eth0 ' +
        'banger.hostname=calm-otter banger.dns=1.1.1.1 init=/sbin/banger-init',
    );
  });
});

describe('handles.json', () => {
  it('reads a good file and treats a missing, truncated or wrong-shaped one as absent', async () => {
    const p = join(dir, 'handles.json');
    expect(await readHandles(p, silent)).toBeUndefined();
    writeFileSync(p, JSON.stringify({ vmId: 'a', identities: [{ kind: 'tap', name: 'tap-fc-0001' }] }));
    expect((await readHandles(p, silent))?.identities).toEqual([{ kind: 'tap', name: 'tap-fc-0001' }]);
    writeFileSync(p, '{"vmId": "a", "identi');
    expect(await readHandles(p, silent)).toBeUndefined();
    writeFileSync(p, JSON.stringify({ vmId: 'a', identities: 'nope' }));
    expect(await readHandles(p, silent)).toBeUndefined();
  });
  it('runtime identities: everything but the IP lease and the disks in the VM dir', () => {
    const vmDir = vmPaths('/s/vms', 'abc').dir;
    expect(isRuntimeIdentity({ kind: 'ip', address: '172.16.0.2' }, vmDir)).toBe(false);
    expect(isRuntimeIdentity({ kind: 'file', path: `${vmDir}/rootfs.qcow2` }, vmDir)).toBe(false);
    expect(isRuntimeIdentity({ kind: 'file', path: `${vmDir}/run/qmp.sock` }, vmDir)).toBe(true);
    expect(isRuntimeIdentity({ kind: 'file', path: '/run/banger/fc-abc.sock' }, vmDir)).toBe(true);
    expect(isRuntimeIdentity({ kind: 'tap', name: 'tap-fc-0001' }, vmDir)).toBe(true);
  });
});

describe('refs and env', () => {
  it('resolves by id, name, then unique prefix; ambiguity and absence are clear errors', () => {
    const store = createStore(openStore(join(dir, 'banger.db')));
    const now = new Date().toISOString();
    const vm = (id: string, name: string): VM => ({
      id,
      name,
      imageId: 'img',
      state: 'created',
      spec: { vcpu: 1, memoryMib: 128, diskSizeBytes: 1 << 24, systemOverlaySizeBytes: 1 << 24, nat: false },
      runtime: { identities: [] },
      createdAt: now,
      updatedAt: now,
      lastTouchedAt: now,
    });
    store.images.insert({
      id: 'img',
      name: 'img',
      managed: false,
      source: { kind: 'registered' },
      artifacts: { rootfsPath: '/nonexistent' },
      config: {},
      sizeBytes: 0,
      createdAt: now,
      updatedAt: now,
    });
    store.vms.insert(vm('aaaa000000000001', 'calm-otter'));
    store.vms.insert(vm('bbbb000000000002', 'calm-owl'));
    expect(resolveVm(store.vms, 'calm-owl').id).toBe('bbbb000000000002');
    expect(resolveVm(store.vms, 'aaaa').name).toBe('calm-otter');
    expect(() => resolveVm(store.vms, 'calm-o')).toThrow(/matches 2 VMs/);
    expect(() => resolveVm(store.vms, 'zzz')).toThrow(/no VM "zzz"/);
    store.db.close();
  });
  it('turns KEY=VALUE lists into a record, later keys winning, values may hold =', () => {
    expect(envRecord(['A=1', 'B=x=y', 'A=2', 'junk'])).toEqual({ A: '2', B: 'x=y' });
  });
});
