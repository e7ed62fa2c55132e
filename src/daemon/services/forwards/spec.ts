import { isIP } from 'node:net';
import { badRequest } from '../../../model/errors.js';

/** One forward as asked for: host address and port to listen on, guest port to reach. */
export interface ForwardSpec {
  hostAddress: string;
  /** 0 asks the host for any free port (reported back). */
  hostPort: number;
  guestPort: number;
}

/** Where a forward listens when the spec names no address: the host's loopback, never the network. */
export const DEFAULT_HOST_ADDRESS = '127.0.0.1';

const SPEC = /^(?:(\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(\d{1,5}):(\d{1,5})$/;

function port(text: string, what: string, min: number): number {
  const n = Number(text);
  if (n < min || n > 65535) throw badRequest(`${what} ${text} is out of range (${min}-65535)`);
  return n;
}

/**
 * `[HOST_ADDR:]HOST_PORT:GUEST_PORT`, HOST_ADDR an IPv4 address or a bracketed IPv6 one (`[::1]:8080:80`).
 * An address other than loopback exposes the guest's port to whoever reaches the host: allowed, but only
 * when written out.
 */
export function parseForwardSpec(text: string): ForwardSpec {
  const m = SPEC.exec(text.trim());
  if (!m)
    throw badRequest(`bad forward ${JSON.stringify(text)}: expected [HOST_ADDR:]HOST_PORT:GUEST_PORT`, {
      hint: 'for example 8080:80, 127.0.0.1:8080:80 or [::1]:8080:80',
    });
  const rawAddr = m[1]?.replace(/^\[|\]$/g, '');
  if (rawAddr !== undefined && isIP(rawAddr) === 0)
    throw badRequest(`bad forward ${JSON.stringify(text)}: ${rawAddr} is not an IP address`);
  return {
    hostAddress: rawAddr ?? DEFAULT_HOST_ADDRESS,
    hostPort: port(m[2]!, 'host port', 0),
    guestPort: port(m[3]!, 'guest port', 1),
  };
}

/** `127.0.0.1:8080`, `[::1]:8080`. */
export function hostEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
