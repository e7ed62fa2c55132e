import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';

/**
 * Limits for what local users (untrusted) can send the DNS server. A query for `<name>.vm` is well under
 * 512 bytes; these leave room for EDNS options and refuse anything that only costs memory or time.
 */
export const DNS_LIMITS = {
  /** A UDP datagram larger than this is dropped unread (EDNS's common buffer size). */
  maxUdpBytes: 4096,
  /** A TCP message's 2-byte length prefix above this closes the connection before anything is buffered. */
  maxTcpMessageBytes: 4096,
  /** TCP connections served at once; more are closed on accept (the kernel's backlog holds the rest). */
  maxTcpConnections: 64,
  /** A TCP connection idle this long is closed (RFC 7766 suggests seconds, not minutes). */
  tcpIdleMs: 10_000,
  /** Replies a slow TCP reader has not taken; past this its connection is dropped, not buffered further. */
  maxTcpPendingBytes: 64 * 1024,
} as const;

export type DnsLimits = { readonly [K in keyof typeof DNS_LIMITS]: number };

export interface DnsServer {
  /** The address and port actually bound (the port is the OS's choice when 0 was asked). */
  address: { host: string; port: number };
  close(): Promise<void>;
}

/** Parses `HOST:PORT` (config dns_addr). */
export function parseDnsAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

/**
 * Serves `answer` over UDP and TCP on one address and port. Both sockets are bound before this resolves,
 * and a failure (the port taken) closes whichever was bound and rejects: the caller decides what an
 * unavailable DNS server means. No input ends the process: every socket error is logged and contained.
 */
export async function startDnsServer(opts: {
  host: string;
  port: number;
  answer: (message: Buffer) => Buffer | undefined;
  log: Logger;
  limits?: DnsLimits;
}): Promise<DnsServer> {
  const limits = opts.limits ?? DNS_LIMITS;
  const udp = createSocket({ type: 'udp4', recvBufferSize: 256 * 1024 });
  const tcp = createServer({ pauseOnConnect: false });
  tcp.maxConnections = limits.maxTcpConnections;
  const conns = new Set<Socket>();
  try {
    await bindUdp(udp, opts.host, opts.port);
    // The same port for TCP; when UDP got an OS-chosen port, TCP takes that one.
    await listenTcp(tcp, opts.host, udp.address().port);
  } catch (err) {
    await closeQuietly(udp, tcp);
    throw err;
  }
  udp.on('message', (msg, rinfo) => {
    if (msg.length > limits.maxUdpBytes) return;
    const reply = opts.answer(msg);
    if (reply) udp.send(reply, rinfo.port, rinfo.address, () => {});
  });
  udp.on('error', (err) => opts.log.warn({ err: err.message }, 'dns: udp socket error'));
  tcp.on('connection', (sock) => serveTcp(sock, opts.answer, limits, conns));
  tcp.on('error', (err) => opts.log.warn({ err: err.message }, 'dns: tcp server error'));
  return {
    address: { host: opts.host, port: udp.address().port },
    async close() {
      for (const c of conns) c.destroy();
      await closeQuietly(udp, tcp);
    },
  };
}

/** One TCP client: 2-byte length-prefixed messages (RFC 1035 4.2.2), answered in order. */
function serveTcp(
  sock: Socket,
  answer: (message: Buffer) => Buffer | undefined,
  limits: DnsLimits,
  conns: Set<Socket>,
): void {
  conns.add(sock);
  sock.on('close', () => conns.delete(sock));
  sock.on('error', () => {}); // resets from the client: nothing to do but let it close
  sock.setTimeout(limits.tcpIdleMs, () => sock.destroy());
  let pending: Buffer = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 2) {
      const len = pending.readUInt16BE(0);
      if (len === 0 || len > limits.maxTcpMessageBytes) {
        sock.destroy();
        return;
      }
      if (pending.length < 2 + len) break;
      const reply = answer(pending.subarray(2, 2 + len));
      pending = pending.subarray(2 + len);
      if (!reply) {
        // Garbage on a stream leaves nothing to resynchronise on.
        sock.destroy();
        return;
      }
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(reply.length);
      sock.write(Buffer.concat([prefix, reply]));
      if (sock.writableLength > limits.maxTcpPendingBytes) {
        sock.destroy();
        return;
      }
    }
  });
}

function bindUdp(udp: UdpSocket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    udp.once('error', onError);
    udp.bind({ address: host, port, exclusive: true }, () => {
      udp.off('error', onError);
      resolve();
    });
  });
}

function listenTcp(tcp: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    tcp.once('error', onError);
    tcp.listen({ host, port, exclusive: true }, () => {
      tcp.off('error', onError);
      resolve();
    });
  });
}

async function closeQuietly(udp: UdpSocket, tcp: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    try {
      udp.close(() => resolve());
    } catch {
      resolve(); // never bound, or already closed
    }
  });
  await new Promise<void>((resolve) => (tcp.listening ? tcp.close(() => resolve()) : resolve()));
}
