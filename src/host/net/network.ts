import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { PrivOps } from '../priv/types.js';
import type { Runner } from '../runner.js';
import { type BridgeIdentity, ensureBridge } from './bridge.js';
import { type CidAllocator, createCidAllocator } from './cid-allocator.js';
import { createIpAllocator, type IpAllocator } from './ip-allocator.js';
import type { LeaseStore } from './lease-store.js';
import { ensureNat, type NatIdentity, planNat } from './nat.js';
import { createTapPool, type TapPool } from './tap-pool.js';

export interface HostNetworkOptions {
  runner: Runner;
  priv: PrivOps;
  config: Pick<Config, 'bridge_name' | 'bridge_ip' | 'cidr' | 'adopt_bridge' | 'tap_pool_size' | 'netns'>;
  /** Where guest IP leases persist (`createFileIpLeaseStore(<stateDir>/ip-leases.json)` or the store's). */
  leaseStore: LeaseStore;
  /** Where vsock CID leases persist (`createFileCidLeaseStore(<stateDir>/cid-leases.json)`). */
  cidLeaseStore: LeaseStore;
  /** Taps recorded by VMs still running from before a daemon restart. */
  leasedTaps?: readonly string[];
  /** Uid that may open taps (an unprivileged VMM). */
  tapOwner?: number;
  /** Where refusals to delete a link banger did not make are reported. */
  log?: Pick<Logger, 'warn'>;
}

/**
 * The network pieces a VM service needs, built once from config by the composition root. Every method
 * that creates something returns (or is preceded by a plan of) the identity to record; undo with
 * `teardownIdentity`/`teardownAll`.
 */
export interface HostNetwork {
  readonly netns: string | undefined;
  ensureBridge(): Promise<BridgeIdentity>;
  readonly taps: TapPool;
  readonly ips: IpAllocator;
  /** vsock CIDs, leased per VM like its IP (record the identity before the VMM gets the CID). */
  readonly cids: CidAllocator;
  /** The NAT identity for a guest (record it), without touching the host yet. */
  planNat(tap: string, guestIp: string): Promise<NatIdentity>;
  /** Adds the planned NAT rules (and turns ip_forward on). */
  ensureNat(identity: NatIdentity): Promise<NatIdentity>;
}

export function createHostNetwork(opts: HostNetworkOptions): HostNetwork {
  const { runner, priv, config } = opts;
  const netns = config.netns || undefined;
  return {
    netns,
    ensureBridge: () => ensureBridge({ priv, runner }, config, netns),
    taps: createTapPool({
      priv,
      runner,
      bridge: config.bridge_name,
      size: config.tap_pool_size,
      netns,
      owner: opts.tapOwner,
      leased: opts.leasedTaps,
      log: opts.log,
    }),
    ips: createIpAllocator({ store: opts.leaseStore, bridgeIp: config.bridge_ip, prefix: config.cidr }),
    cids: createCidAllocator(opts.cidLeaseStore),
    planNat: (tap, guestIp) => planNat({ runner }, { tap, guestIp, netns }),
    ensureNat: (identity) => ensureNat(priv, identity),
  };
}
