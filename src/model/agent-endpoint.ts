/**
 * How the host reaches a VM's guest agent. The VMM driver that started the VM says which one it set up;
 * the guest client connects to it. Firecracker exposes guest vsock as a host unix socket that takes a
 * `CONNECT <port>` line; QEMU offers vhost-vsock (a CID) where the host has it, and a virtio-serial port
 * backed by a host unix socket everywhere.
 */
export type AgentEndpoint =
  | { kind: 'virtio-serial'; socketPath: string }
  | { kind: 'vsock'; cid: number; port: number }
  | { kind: 'firecracker-vsock'; udsPath: string; port: number };

/** The vsock port the agent listens on, and the virtio-serial port name it looks for. */
export const AGENT_VSOCK_PORT = 1024;
export const AGENT_SERIAL_NAME = 'org.banger.agent';

/**
 * An agent transport is an endpoint kind: the names a driver's capabilities list (in its order of
 * preference), the one the VM service asks a driver for, and the kind of endpoint it gets back.
 */
export type AgentTransport = AgentEndpoint['kind'];
export const AGENT_TRANSPORTS = [
  'vsock',
  'firecracker-vsock',
  'virtio-serial',
] as const satisfies readonly AgentTransport[];
