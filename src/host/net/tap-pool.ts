import { Mutex } from 'async-mutex';
import type { TeardownIdentity } from '../../model/identity.js';
import { listLinks } from '../ip-state.js';
import type { PrivOps } from '../priv/types.js';
import type { Runner } from '../runner.js';

export type TapIdentity = Extract<TeardownIdentity, { kind: 'tap' }>;

const TAP_NAME = /^tap-fc-(\d{4,8})$/;

export interface TapPoolOptions {
  priv: PrivOps;
  runner: Runner;
  bridge: string;
  /** Idle taps kept ready (config `tap_pool_size`). */
  size: number;
  netns?: string;
  /** Uid that may open the taps (an unprivileged VMM); root only when unset. */
  owner?: number;
  /** Taps held by VMs that survived a daemon restart (from the store); never handed out. */
  leased?: readonly string[];
}

/**
 * Warm taps attached to the bridge, so starting a VM does not wait for tap creation. Idle taps are the
 * banger taps on the bridge that nobody leases; the kernel's link list is the truth, read with `ip -j`.
 */
export interface TapPool {
  /** Creates idle taps until `size` are ready. */
  fill(): Promise<void>;
  /** Hands out an idle tap (or creates one); record the identity before giving it to a VMM. */
  acquire(): Promise<TapIdentity>;
  /** Returns a tap: kept when the pool is short, deleted otherwise. */
  release(identity: TapIdentity): Promise<void>;
  /** Deletes every idle tap (daemon shutdown, tests). */
  drain(): Promise<void>;
}

export function createTapPool(opts: TapPoolOptions): TapPool {
  const { priv, runner, bridge, size, netns } = opts;
  const leased = new Set(opts.leased ?? []);
  const lock = new Mutex();
  const identity = (name: string): TapIdentity => ({ kind: 'tap', name, ...(netns ? { netns } : {}) });

  const scan = async () => {
    const taps = (await listLinks(runner, netns)).filter((l) => l.kind === 'tun' && TAP_NAME.test(l.name));
    const idle = taps.filter((t) => t.master === bridge && !leased.has(t.name)).map((t) => t.name);
    idle.sort();
    return { idle, taken: new Set([...taps.map((t) => t.name), ...leased]) };
  };

  const create = async (taken: Set<string>) => {
    let n = 1;
    while (taken.has(tapName(n))) n++;
    const name = tapName(n);
    taken.add(name);
    await priv.createTap({ name, bridge, owner: opts.owner, netns });
    return name;
  };

  return {
    fill: () =>
      lock.runExclusive(async () => {
        const { idle, taken } = await scan();
        for (let i = idle.length; i < size; i++) await create(taken);
      }),
    acquire: () =>
      lock.runExclusive(async () => {
        const { idle, taken } = await scan();
        const name = idle[0] ?? (await create(taken));
        leased.add(name);
        return identity(name);
      }),
    release: (tap) =>
      lock.runExclusive(async () => {
        leased.delete(tap.name);
        const { idle } = await scan();
        const keep = idle.includes(tap.name) && idle.length <= size;
        if (!keep) await priv.deleteTap({ name: tap.name, netns: tap.netns });
      }),
    drain: () =>
      lock.runExclusive(async () => {
        for (const name of (await scan()).idle) await priv.deleteTap({ name, netns });
      }),
  };
}

/** `tap-fc-0001`: zero-padded to four digits, well inside the 15-byte interface name limit. */
export function tapName(n: number): string {
  return `tap-fc-${String(n).padStart(4, '0')}`;
}

/** Deletes one tap from its identity alone (reconcile); succeeds when it is already gone. */
export async function teardownTap(priv: PrivOps, identity: TapIdentity): Promise<void> {
  await priv.deleteTap({ name: identity.name, netns: identity.netns });
}
