/**
 * The guest side: the assets banger writes into images (agent binary, init hooks, init shim) and the host
 * client of the agent (one interface over virtio-serial, AF_VSOCK and Firecracker's hybrid vsock).
 * Protocol: docs/agent-protocol.md.
 */
export {
  agentBinaryPath,
  FIRST_BOOT_MARKER_PATH,
  FIRST_BOOT_SCRIPT_PATH,
  firstBootScriptHostPath,
  GUEST_AGENT_PATH,
  GUEST_INIT_SHIM_PATH,
  type GuestAssetOptions,
  guestAssets,
} from './assets.js';
export {
  AgentClient,
  type ExecHandle,
  type ExecIo,
  type ExecRequest,
  type TcpTarget,
  type WriteFileOptions,
} from './client.js';
export { connectAgent, waitForAgent } from './connect.js';
export { type FileReadLimit, type GuestReadLimit, REPLY_TIMEOUT_MS } from './limits.js';
export { encodeFrame, type Frame, FrameDecoder, FrameType, MAX_PAYLOAD } from './protocol.js';
export {
  type AgentHealth,
  agentHealthSchema,
  type DirEntry,
  dirEntrySchema,
  type ExecResult,
  type ListeningPort,
} from './replies.js';
export { GuestConnectError, type GuestConnectReason, GuestTcpStream } from './tcp-stream.js';
export type { ConnectOptions } from './transport.js';
