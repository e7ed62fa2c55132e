import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionLostError, createRpcClient, DaemonUnreachableError } from '../../src/rpc/index.js';

// The RPC client against unix sockets that misbehave as a stopping daemon does: the CLI tells "the daemon
// went away" (ConnectionLostError, retried when replacing an old daemon) from "nobody listens".
let dir: string | undefined;
let server: Server | undefined;

afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function serve(
  onConnection: (socket: Socket) => void,
  opts = { pauseOnConnect: false },
): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'banger-rpc-client-'));
  const path = join(dir, 'bangerd.sock');
  server = createServer(opts, onConnection);
  await new Promise<void>((r) => server?.listen(path, r));
  return path;
}

describe('the RPC client when the daemon goes away', () => {
  // A bounded wait, so a client that hangs fails the test instead of stalling it.
  const ping = (path: string) => createRpcClient(path, '0.0.0').call('ping', {}, { timeoutMs: 5_000 });

  it('a connection reset mid-call is a lost connection', async () => {
    // Closed with the request unread: the kernel resets the connection (ECONNRESET at the client).
    const path = await serve((socket) => setTimeout(() => socket.destroy(), 100), { pauseOnConnect: true });
    const call = ping(path);
    await expect(call).rejects.toBeInstanceOf(ConnectionLostError);
    await expect(call).rejects.toMatchObject({ message: expect.stringContaining('during ping') });
  });

  it('a connection closed without an answer is a lost connection', async () => {
    const path = await serve((socket) => socket.once('data', () => socket.end()));
    await expect(ping(path)).rejects.toBeInstanceOf(ConnectionLostError);
  });

  it('a socket nobody listens on is an unreachable daemon', async () => {
    const path = await serve(() => {});
    await new Promise((r) => server?.close(r));
    server = undefined;
    await expect(ping(path)).rejects.toBeInstanceOf(DaemonUnreachableError);
  });
});
