import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { operationFailed } from '../../model/errors.js';
import type { TeardownIdentity } from '../../model/identity.js';
import { readLink } from '../ip-state.js';
import { linkOwner } from '../priv/link-mark.js';
import type { PrivOps } from '../priv/types.js';
import type { Runner } from '../runner.js';

export type BridgeIdentity = Extract<TeardownIdentity, { kind: 'bridge' }>;
export type BridgeConfig = Pick<Config, 'bridge_name' | 'bridge_ip' | 'cidr' | 'adopt_bridge'>;

export interface BridgeDeps {
  priv: PrivOps;
  runner: Runner;
}

/**
 * Makes sure banger's bridge exists with its address and is up, then reads it back with `ip -j` to
 * confirm. Does nothing when it is already as described. A bridge banger did not make is refused, or
 * with `adopt_bridge` used as it is: then it must already be up with `bridge_ip/cidr`, since banger
 * never changes a bridge it adopted.
 */
export async function ensureBridge(
  { priv, runner }: BridgeDeps,
  config: BridgeConfig,
  netns?: string,
): Promise<BridgeIdentity> {
  const name = config.bridge_name;
  const identity: BridgeIdentity = { kind: 'bridge', name, ...(netns ? { netns } : {}) };
  await priv.ensureBridge({
    name,
    ip: config.bridge_ip,
    prefix: config.cidr,
    netns,
    adopt: config.adopt_bridge,
  });
  const link = await readLink(runner, name, netns);
  const cidr = `${config.bridge_ip}/${config.cidr}`;
  if (link?.kind !== 'bridge' || !link.up || !link.addresses.includes(cidr)) {
    const adopted = link !== undefined && linkOwner(link, await priv.linkMark()) !== 'ours';
    throw operationFailed(
      `bridge ${name} is not up with ${cidr}${adopted ? ' (adopted: banger does not change it)' : ' after set-up'}`,
      {
        hint: adopted
          ? `give it the address and set it up (ip addr add ${cidr} dev ${name}; ip link set ${name} up), or set bridge_ip and cidr in config.toml to what it has`
          : `inspect it with: ip -d addr show ${name}`,
      },
    );
  }
  return identity;
}

/**
 * Deletes the bridge; succeeds when it is already gone. Taps still attached are detached by the kernel.
 * A bridge without our mark (adopted, or someone else's under the recorded name) is left and logged.
 */
export async function teardownBridge(
  priv: PrivOps,
  identity: BridgeIdentity,
  log?: Pick<Logger, 'warn'>,
): Promise<void> {
  const res = await priv.deleteBridge({ name: identity.name, netns: identity.netns });
  if (res === 'foreign') log?.warn({ bridge: identity.name }, 'bridge is not banger-made: left in place');
}
