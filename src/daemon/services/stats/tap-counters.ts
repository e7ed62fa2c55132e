import { readFile } from 'node:fs/promises';
import { type Runner, validateTapName } from '../../../host/index.js';
import type { VM } from '../../../model/vm.js';
import type { VmStats } from '../../../model/vm-stats.js';

export type TapCounterReader = (vm: VM) => Promise<VmStats['network']>;

/** A counter file holds one decimal number; more than this is not one. */
const COUNTER_MAX_CHARS = 32;

/**
 * The byte counters of a VM's tap (its recorded tap identity), named from the guest's side: the tap's rx
 * is what the guest sent. /sys/class/net shows the network namespace of whoever mounted /sys, so a tap in
 * another namespace (config netns) is read by `cat` run inside it (`ip netns exec` mounts that one's /sys).
 */
export function tapCounterReader(runner: Runner): TapCounterReader {
  return async (vm) => {
    const tap = vm.runtime.identities.find((id) => id.kind === 'tap');
    if (tap?.kind !== 'tap') return { tap: null, fromGuestBytes: null, toGuestBytes: null };
    const name = tap.name;
    const unreadable = { tap: name, fromGuestBytes: null, toGuestBytes: null };
    try {
      validateTapName(name);
      const files = ['rx_bytes', 'tx_bytes'].map((f) => `/sys/class/net/${name}/statistics/${f}`);
      const text = tap.netns
        ? (await runner.run(['cat', ...files], { netns: tap.netns, timeoutMs: 5_000 })).stdout
        : (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n');
      const [rx, tx] = text
        .slice(0, 2 * COUNTER_MAX_CHARS)
        .trim()
        .split(/\s+/)
        .map(Number);
      if (!Number.isSafeInteger(rx) || !Number.isSafeInteger(tx)) return unreadable;
      return { tap: name, fromGuestBytes: rx as number, toGuestBytes: tx as number };
    } catch {
      return unreadable;
    }
  };
}
