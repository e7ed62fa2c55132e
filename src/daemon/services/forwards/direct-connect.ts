import { connect, type Socket } from 'node:net';

/**
 * A guest that drops the SYN (a firewall) must not hold the client for long: past this the forward takes
 * the agent's way instead.
 */
export const DIRECT_CONNECT_MS = 2_000;

/**
 * A TCP connection from the daemon straight to the guest (guestIp:port over the bridge), half-open like the
 * host side. Rejects when refused (nothing listens on the guest's own address: a loopback-only server), on
 * any other error, or after `timeoutMs`; the socket is destroyed then, so nothing is left behind.
 */
export function connectDirect(host: string, port: number, timeoutMs = DIRECT_CONNECT_MS): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, allowHalfOpen: true });
    const fail = (err: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`connect to ${host}:${port} timed out`)), timeoutMs);
    sock.once('error', fail);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.off('error', fail);
      // No 'data' listener yet: what the guest sends waits in the socket until the relay reads it.
      resolve(sock);
    });
  });
}
