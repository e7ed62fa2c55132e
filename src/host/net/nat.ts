import { operationFailed } from '../../model/errors.js';
import type { TeardownIdentity } from '../../model/identity.js';
import { defaultRouteDevice } from '../ip-state.js';
import type { NatBackend, PrivOps } from '../priv/types.js';
import type { Runner } from '../runner.js';

export type NatIdentity = Extract<TeardownIdentity, { kind: 'nat' }>;

/** banger's nftables table (family ip). */
export const DEFAULT_NAT_TABLE = 'banger';

/** nft when the binary runs, iptables otherwise (the original's tool). */
export async function detectNatBackend(runner: Runner): Promise<NatBackend> {
  try {
    const res = await runner.run(['nft', '--version'], { allowFailure: true });
    return res.exitCode === 0 ? 'nft' : 'iptables';
  } catch {
    return 'iptables';
  }
}

export interface NatDeps {
  priv: PrivOps;
  runner: Runner;
}

export interface EnsureNatOptions {
  tap: string;
  guestIp: string;
  netns?: string;
  /** Defaults to the device of the default route in `netns`. */
  uplink?: string;
  /** Defaults to what `detectNatBackend` finds. */
  backend?: NatBackend;
  table?: string;
}

/**
 * Lets one guest reach the outside: ip_forward on, MASQUERADE of its address out of the uplink, and
 * FORWARD accepts keyed on its tap. The identity is complete before any rule is added, so the caller
 * can record it first; adding again is a no-op.
 */
export async function planNat(
  { runner }: Pick<NatDeps, 'runner'>,
  opts: EnsureNatOptions,
): Promise<NatIdentity> {
  const uplink = opts.uplink ?? (await defaultRouteDevice(runner, opts.netns));
  if (!uplink) {
    throw operationFailed('cannot set up NAT: no IPv4 default route to masquerade through', {
      hint: 'give the host a default route, or start the VM without NAT',
    });
  }
  return {
    kind: 'nat',
    table: opts.table ?? DEFAULT_NAT_TABLE,
    tap: opts.tap,
    guestIp: opts.guestIp,
    backend: opts.backend ?? (await detectNatBackend(runner)),
    uplink,
    ...(opts.netns ? { netns: opts.netns } : {}),
  };
}

/** Applies a planned NAT identity. */
export async function ensureNat(priv: PrivOps, identity: NatIdentity): Promise<NatIdentity> {
  if (!identity.uplink) throw operationFailed(`NAT identity for ${identity.guestIp} has no uplink`);
  await priv.setIpForward({ enabled: true, netns: identity.netns });
  await priv.addNat({ ...natRequest(identity), uplink: identity.uplink });
  return identity;
}

/**
 * Removes the guest's rules, and banger's table once empty; succeeds when they are already gone.
 * ip_forward is left on: other VMs, or other software, may rely on it (the original never reset it).
 */
export async function teardownNat(priv: PrivOps, identity: NatIdentity): Promise<void> {
  await priv.removeNat({ ...natRequest(identity), uplink: identity.uplink });
}

function natRequest(identity: NatIdentity) {
  return {
    backend: identity.backend ?? 'nft',
    table: identity.table,
    tap: identity.tap,
    guestIp: identity.guestIp,
    netns: identity.netns,
  };
}
