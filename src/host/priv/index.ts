export { DEFAULT_CHUNK_SECTORS, snapshotTable } from './dm.js';
export { createInProcessPrivOps, type InProcessPrivOpsOptions } from './in-process.js';
export { loadInstanceId } from './instance-id.js';
export { describeOwner, type LinkOwner, linkMark, linkOwner } from './link-mark.js';
export { type LoopEntry, listLoops } from './loop.js';
export { iptablesRules } from './nat-iptables.js';
export { listNftRules, natComment, nftAddScript } from './nat-nft.js';
export { createRemotePrivOps, helloPrivHelper, type RemotePrivOpsOptions } from './remote.js';
export {
  RESOLVER_ROUTING_DOMAIN,
  resolvedRunning,
  resolverRouteArgv,
  validateResolverRoute,
} from './resolver.js';
export type * from './types.js';
export {
  ALLOWED_SIGNALS,
  type AllowedSignal,
  IFACE_NAME_MAX_BYTES,
  validateBridgeName,
  validateDmName,
  validateIfaceName,
  validateInstanceId,
  validateIPv4,
  validateLoopDevice,
  validatePathUnder,
  validatePrefix,
  validateSignal,
  validateTableName,
  validateTapName,
} from './validate.js';
