export {
  type CallOptions,
  ConnectionLostError,
  createRpcClient,
  DaemonUnreachableError,
  DaemonVersionError,
  type RpcClient,
} from './client.js';
export {
  DAEMON_START_TIMEOUT_MS,
  type EnsureDaemonOptions,
  ensureDaemon,
  optimisticDaemonClient,
} from './daemon-client.js';
export { type OperationSummary, Operations } from './operations.js';
export * from './protocol.js';
export {
  type CallContext,
  type Handler,
  type Handlers,
  type RpcServer,
  refuseIfDaemonAnswers,
  startRpcServer,
} from './server.js';
export { createSharedRpcClient, type SharedRpcClient } from './shared-client.js';
export { FORWARDED_SIGNALS, type ForwardedSignal } from './wire.js';
