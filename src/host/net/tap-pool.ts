import { Mutex } from 'async-mutex';
import type { Logger } from 'pino';
import type { TeardownIdentity } from '../../model/identity.js';
import { listLinks } from '../ip-state.js';
import { linkOwner } from '../priv/link-mark.js';
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
  /** Where a refused deletion (a tap that is not ours) is reported. */
  log?: Pick<Logger, 'warn'>;
}

/**
 * Warm taps attached to the bridge, so starting a VM does not wait for tap creation. Idle taps are the
 * taps on the bridge that carry this instance's mark and that nobody leases; the kernel's link list is the
 * truth, read with `ip -j`. A `tap-fc-NNNN` without our mark (another program's, another banger
 * instance's) is never handed out or deleted, and its name is never reused.
 */
export interface TapPool {
  /** Creates idle taps until `size` are ready. */
  fill(): Promise<void>;
  /**
   * fill() in the background: a start takes its tap and goes on while the pool is topped up for the next
   * one (a failure is logged; the next acquire creates what it needs). Crash-safe: a tap carries the
   * instance's mark from its creation, so a daemon killed half way leaves either an idle tap the next pool
   * hands out or a marked tap off the bridge, which the next fill (reconcile's) deletes. drain() waits for it.
   */
  refill(): void;
  /** Hands out an idle tap (or creates one); record the identity before giving it to a VMM. */
  acquire(): Promise<TapIdentity>;
  /** Returns a tap: kept when the pool is short, deleted otherwise (only if it is ours). */
  release(identity: TapIdentity): Promise<void>;
  /** Deletes every idle tap of ours (daemon shutdown, tests). */
  drain(): Promise<void>;
}

export function createTapPool(opts: TapPoolOptions): TapPool {
  const { priv, runner, bridge, size, netns } = opts;
  const leased = new Set(opts.leased ?? []);
  const lock = new Mutex();
  const identity = (name: string): TapIdentity => ({ kind: 'tap', name, ...(netns ? { netns } : {}) });

  const scan = async () => {
    const mark = await priv.linkMark();
    const links = await listLinks(runner, netns);
    const free = links
      .filter((l) => l.kind === 'tun' && TAP_NAME.test(l.name) && linkOwner(l, mark) === 'ours')
      .filter((t) => !leased.has(t.name));
    const idle = free.filter((t) => t.master === bridge).map((t) => t.name);
    idle.sort();
    // Ours, nobody's, not on the bridge: a creation cut short (a daemon killed during a background refill).
    const strays = free.filter((t) => t.master !== bridge).map((t) => t.name);
    // Every link name counts as taken, whatever its kind or owner: a new tap must not collide with it.
    return { idle, strays, taken: new Set([...links.map((l) => l.name), ...leased]) };
  };

  const create = async (taken: Set<string>) => {
    let n = 1;
    while (taken.has(tapName(n))) n++;
    const name = tapName(n);
    taken.add(name);
    await priv.createTap({ name, bridge, owner: opts.owner, netns });
    return name;
  };

  const fill = () =>
    lock.runExclusive(async () => {
      const { idle, strays, taken } = await scan();
      // Under the lock no creation of this daemon is half way: a stray is one a killed daemon left.
      for (const name of strays) await teardownTap(priv, identity(name), opts.log);
      for (let i = idle.length; i < size; i++) await create(taken);
    });
  let refilling: Promise<void> | undefined;

  return {
    fill,
    refill: () => {
      if (refilling) return;
      refilling = fill()
        .catch((err: unknown) =>
          opts.log?.warn({ err: err instanceof Error ? err.message : String(err) }, 'tap pool refill failed'),
        )
        .finally(() => {
          refilling = undefined;
        });
    },
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
        if (!keep) await teardownTap(priv, tap, opts.log);
      }),
    drain: async () => {
      await refilling;
      await lock.runExclusive(async () => {
        for (const name of (await scan()).idle) await teardownTap(priv, identity(name), opts.log);
      });
    },
  };
}

/** `tap-fc-0001`: zero-padded to four digits, well inside the 15-byte interface name limit. */
export function tapName(n: number): string {
  return `tap-fc-${String(n).padStart(4, '0')}`;
}

/**
 * Deletes one tap from its identity alone (reconcile); succeeds when it is already gone. A tap without
 * our mark is someone else's that took the recorded name: it is left in place and logged.
 */
export async function teardownTap(
  priv: PrivOps,
  identity: TapIdentity,
  log?: Pick<Logger, 'warn'>,
): Promise<void> {
  const res = await priv.deleteTap({ name: identity.name, netns: identity.netns });
  if (res === 'foreign') log?.warn({ tap: identity.name }, 'tap is not banger-made: left in place');
}
