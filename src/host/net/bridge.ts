import type { Config } from '../../config/schema.js';
import { operationFailed } from '../../model/errors.js';
import type { TeardownIdentity } from '../../model/identity.js';
import { readLink } from '../ip-state.js';
import type { PrivOps } from '../priv/types.js';
import type { Runner } from '../runner.js';

export type BridgeIdentity = Extract<TeardownIdentity, { kind: 'bridge' }>;
export type BridgeConfig = Pick<Config, 'bridge_name' | 'bridge_ip' | 'cidr'>;

export interface BridgeDeps {
  priv: PrivOps;
  runner: Runner;
}

/**
 * Makes sure banger's bridge exists with its address and is up, then reads it back with `ip -j` to
 * confirm. Does nothing when it is already as described.
 */
export async function ensureBridge(
  { priv, runner }: BridgeDeps,
  config: BridgeConfig,
  netns?: string,
): Promise<BridgeIdentity> {
  const identity: BridgeIdentity = { kind: 'bridge', name: config.bridge_name, ...(netns ? { netns } : {}) };
  await priv.ensureBridge({ name: config.bridge_name, ip: config.bridge_ip, prefix: config.cidr, netns });
  const link = await readLink(runner, config.bridge_name, netns);
  const cidr = `${config.bridge_ip}/${config.cidr}`;
  if (link?.kind !== 'bridge' || !link.up || !link.addresses.includes(cidr)) {
    throw operationFailed(`bridge ${config.bridge_name} is not up with ${cidr} after set-up`, {
      hint: `inspect it with: ip -d addr show ${config.bridge_name}`,
    });
  }
  return identity;
}

/** Deletes the bridge; succeeds when it is already gone. Taps still attached are detached by the kernel. */
export async function teardownBridge(priv: PrivOps, identity: BridgeIdentity): Promise<void> {
  await priv.deleteBridge({ name: identity.name, netns: identity.netns });
}
