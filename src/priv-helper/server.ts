import { chmodSync, chownSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { type PeerCred, peerCred } from '../host/priv/peercred.js';
import { PRIV_MAX_FRAME_BYTES, PRIV_PROTOCOL_VERSION, type PrivResponse } from '../host/priv/protocol.js';
import { operationFailed } from '../model/errors.js';
import { type DispatchContext, dispatchFrame } from './dispatch.js';

export interface PrivHelperServerOptions extends DispatchContext {
  socketPath: string;
  /** One line per connection: who asked what, and how it ended. */
  log: (line: string) => void;
  /** A request that has not arrived whole by then is dropped (a client that connects and stalls). */
  requestTimeoutMs?: number;
}

export interface PrivHelperServer {
  close(): Promise<void>;
}

/**
 * Serves PrivOps on a unix socket: the socket 0600 and owned by the owner uid (so the owner can connect and
 * no one else can), in a root-owned 0711 directory (traversable, not listable or writable). Each connection
 * carries one request line and gets one response line. The kernel's record of the peer (SO_PEERCRED) is
 * checked before a byte is read: only the owner uid or root is served.
 */
export async function startPrivHelperServer(opts: PrivHelperServerOptions): Promise<PrivHelperServer> {
  prepareSocketDir(dirname(opts.socketPath));
  rmSync(opts.socketPath, { force: true });
  const server = createServer((socket) => serve(socket, opts));
  // Created 0600 from the start (umask), so no one can connect between bind and the chown below.
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  // chmod while root still owns it (CAP_FOWNER is not in the helper's set), then hand it to the owner.
  chmodSync(opts.socketPath, 0o600);
  chownSync(opts.socketPath, opts.ownerUid, 0);
  opts.log(`listening on ${opts.socketPath} for uid ${opts.ownerUid} (protocol ${PRIV_PROTOCOL_VERSION})`);
  return { close: () => closeServer(server, opts.socketPath) };
}

/**
 * The socket's directory: created 0711 and root-owned when missing. An existing one is used only when it
 * is a root-owned directory no one else can write to (never re-moded: it may be a shared directory).
 */
function prepareSocketDir(dir: string): void {
  const created = mkdirSync(dir, { recursive: true, mode: 0o711 }) !== undefined;
  if (created) chmodSync(dir, 0o711);
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
    throw operationFailed(`${dir} must be a root-owned directory that only root can write (not a symlink)`, {
      hint: `remove ${dir} and let bangerd-root create it (0711), or choose another --socket`,
    });
  }
}

function serve(socket: Socket, opts: PrivHelperServerOptions): void {
  let peer: PeerCred;
  try {
    peer = peerCred(socket);
  } catch (err) {
    opts.log(`connection refused: no peer credentials (${(err as Error).message})`);
    socket.destroy();
    return;
  }
  const who = `uid=${peer.uid} pid=${peer.pid}`;
  if (peer.uid !== opts.ownerUid && peer.uid !== 0) {
    opts.log(`${who} refused: not the owner (uid ${opts.ownerUid}) or root`);
    reply(socket, refusal('unauthorized', `uid ${peer.uid} may not use bangerd-root`));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const timer = setTimeout(() => {
    done = true;
    opts.log(`${who} refused: no whole request within ${opts.requestTimeoutMs ?? 10_000} ms`);
    socket.destroy();
  }, opts.requestTimeoutMs ?? 10_000);
  const finish = (response: PrivResponse, line: string) => {
    clearTimeout(timer);
    opts.log(`${who} ${line}`);
    reply(socket, response);
  };
  socket.on('error', () => clearTimeout(timer));
  socket.on('end', () => {
    if (!done) {
      done = true;
      finish(refusal('bad_request', 'connection ended before a whole request line'), 'refused: no request');
    }
  });
  socket.on('data', (chunk: Buffer) => {
    if (done) return;
    const nl = chunk.indexOf(0x0a);
    const take = nl === -1 ? chunk : chunk.subarray(0, nl);
    size += take.length;
    if (size > PRIV_MAX_FRAME_BYTES) {
      done = true;
      const msg = `request larger than ${PRIV_MAX_FRAME_BYTES} bytes`;
      finish(refusal('bad_request', msg), `refused: ${msg}`);
      return;
    }
    chunks.push(take);
    if (nl === -1) return;
    done = true;
    // The request is whole: the operation itself may take longer (dmsetup retries, a loaded host).
    clearTimeout(timer);
    socket.pause();
    void dispatchFrame(Buffer.concat(chunks).toString('utf8'), opts).then((o) =>
      finish(o.response, `op=${o.op} ${o.summary}`),
    );
  });
}

function refusal(code: 'unauthorized' | 'bad_request', message: string): PrivResponse {
  return { v: PRIV_PROTOCOL_VERSION, ok: false, error: { code, message } };
}

/** Writes the one response line and closes; a peer that went away meanwhile is not an error of ours. */
function reply(socket: Socket, response: PrivResponse): void {
  socket.on('error', () => {});
  socket.end(`${JSON.stringify(response)}\n`);
}

async function closeServer(server: Server, socketPath: string): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(socketPath, { force: true });
}
