import { describe, expect, it } from 'vitest';
import type { PrivOps } from '../../../src/host/priv/index.js';
import { teardownAll } from '../../../src/host/teardown.js';
import type { TeardownIdentity } from '../../../src/model/identity.js';

/** A PrivOps that records teardown calls and fails the ones named in `failing`. */
function recordingPriv(failing: string[]): { priv: PrivOps; calls: string[] } {
  const calls: string[] = [];
  const op =
    (name: string) =>
    async (req: { name?: string; device?: string; guestIp?: string; pid?: number }): Promise<never> => {
      const what = `${name} ${req.name ?? req.device ?? req.guestIp ?? req.pid}`;
      calls.push(what);
      if (failing.includes(what)) throw new Error(`${what} failed`);
      return { outcome: 'gone' } as never;
    };
  const priv = {
    deleteBridge: op('deleteBridge'),
    deleteTap: op('deleteTap'),
    removeNat: op('removeNat'),
    detachLoop: op('detachLoop'),
    removeDm: op('removeDm'),
    signalProcess: op('signalProcess'),
  } as unknown as PrivOps;
  return { priv, calls };
}

describe('teardownAll', () => {
  const ids: TeardownIdentity[] = [
    { kind: 'tap', name: 'tap-fc-0001' },
    { kind: 'nat', table: 'banger', tap: 'tap-fc-0001', guestIp: '172.16.0.2' },
    { kind: 'loop', device: '/dev/loop3', backingFile: '/state/vms/a/rootfs.cow' },
    { kind: 'dm', name: 'banger-a' },
    { kind: 'process', pid: 4242, startTime: 7, exe: '/usr/bin/qemu', arg: '/state/vms/a/run/qmp.sock' },
  ];

  it('undoes in reverse order of creation', async () => {
    const { priv, calls } = recordingPriv([]);
    await teardownAll({ priv, vmDir: '/state/vms/a' }, ids);
    expect(calls).toEqual([
      'signalProcess 4242',
      'removeDm banger-a',
      'detachLoop /dev/loop3',
      'removeNat 172.16.0.2',
      'deleteTap tap-fc-0001',
    ]);
  });

  it('carries on past failures and reports every one of them', async () => {
    const { priv, calls } = recordingPriv(['removeDm banger-a', 'deleteTap tap-fc-0001']);
    const err = await teardownAll({ priv, vmDir: '/state/vms/a' }, ids).catch((e: unknown) => e);
    expect(calls).toHaveLength(5);
    expect(err).toMatchObject({ code: 'operation_failed' });
    expect((err as Error).message).toMatch(/2 thing\(s\).*device-mapper banger-a.*tap tap-fc-0001/);
    expect(((err as Error).cause as AggregateError).errors).toHaveLength(2);
  });

  it('needs an allocator to release an IP lease, and says so', async () => {
    const { priv } = recordingPriv([]);
    await expect(
      teardownAll({ priv, vmDir: '/state/vms/a' }, [{ kind: 'ip', address: '172.16.0.2' }]),
    ).rejects.toThrow(/no IP allocator/);
  });
});
