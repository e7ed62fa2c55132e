import type { Socket } from 'node:net';
import koffi from 'koffi';

/** getsockopt(2) constants of Linux (asm-generic/socket.h), the same on every architecture banger runs on. */
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
/** struct ucred { pid_t pid; uid_t uid; gid_t gid; }: three 32-bit integers. */
const UCRED_BYTES = 12;

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

type GetSockOpt = (fd: number, level: number, name: number, out: Buffer, len: number[]) => number;
let getsockopt: GetSockOpt | undefined;

function binding(): GetSockOpt {
  // Loaded on first use: only the root helper asks, and only once it serves.
  getsockopt ??= koffi
    .load('libc.so.6')
    .func('int getsockopt(int, int, int, _Out_ void *, _Inout_ uint32_t *)') as GetSockOpt;
  return getsockopt;
}

/**
 * The credentials the kernel recorded for the peer of a connected unix socket when it called connect(2)
 * (SO_PEERCRED): they cannot be forged by the peer. Throws when the socket has no fd (already closed) or
 * the call fails; the caller then refuses the connection.
 */
export function peerCred(socket: Socket): PeerCred {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the connection has no file descriptor');
  const buf = Buffer.alloc(UCRED_BYTES);
  const len = [UCRED_BYTES];
  const rc = binding()(fd, SOL_SOCKET, SO_PEERCRED, buf, len);
  if (rc !== 0 || len[0] !== UCRED_BYTES) throw new Error(`getsockopt(SO_PEERCRED) failed (rc ${rc})`);
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}
