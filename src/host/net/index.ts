export {
  type BridgeConfig,
  type BridgeDeps,
  type BridgeIdentity,
  ensureBridge,
  teardownBridge,
} from './bridge.js';
export {
  type CidAllocator,
  type CidIdentity,
  createCidAllocator,
  FIRST_GUEST_CID,
  MAX_GUEST_CID,
} from './cid-allocator.js';
export {
  createIpAllocator,
  type IpAllocator,
  type IpAllocatorOptions,
  type IpIdentity,
} from './ip-allocator.js';
export {
  createFileCidLeaseStore,
  createFileIpLeaseStore,
  createFileLeaseStore,
  type LeaseStore,
  type Leases,
} from './lease-store.js';
export {
  DEFAULT_NAT_TABLE,
  detectNatBackend,
  type EnsureNatOptions,
  ensureNat,
  type NatDeps,
  type NatIdentity,
  planNat,
  teardownNat,
} from './nat.js';
export { createHostNetwork, type HostNetwork, type HostNetworkOptions } from './network.js';
export { guestAddresses, inSubnet, intToIp, ipToInt, subnetOf } from './subnet.js';
export {
  createTapPool,
  type TapIdentity,
  type TapPool,
  type TapPoolOptions,
  tapName,
  teardownTap,
} from './tap-pool.js';
