import { createConnection, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { createRunner, type Runner } from '../host/index.js';
import { type AgentEndpoint, BangerError, operationFailed } from '../model/index.js';

/** A byte stream to the agent, whatever carries it. */
export type AgentStream = Duplex;

export interface ConnectOptions {
  signal?: AbortSignal;
  /** Spawns `socat` for AF_VSOCK endpoints (Node has no AF_VSOCK socket). */
  runner?: Runner;
}

function connectUnix(path: string, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ path });
    const onAbort = () => {
      sock.destroy();
      reject(new BangerError('cancelled', `connecting to ${path} was cancelled`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(operationFailed(`cannot connect to the agent socket ${path}: ${err.message}`, { cause: err }));
    });
  });
}

/**
 * Firecracker's hybrid vsock: the host side is a unix socket; `CONNECT <port>\n` asks it to open the guest
 * port and it answers `OK <host-port>\n` before the stream becomes the guest connection.
 */
async function connectFirecrackerVsock(udsPath: string, port: number, signal?: AbortSignal): Promise<Socket> {
  const sock = await connectUnix(udsPath, signal);
  sock.write(`CONNECT ${port}\n`);
  return new Promise((resolve, reject) => {
    let line = Buffer.alloc(0);
    const fail = (msg: string) => {
      cleanup();
      sock.destroy();
      reject(operationFailed(msg));
    };
    const onData = (chunk: Buffer) => {
      line = Buffer.concat([line, chunk]);
      const nl = line.indexOf(0x0a);
      if (nl < 0) {
        if (line.length > 256) fail('Firecracker vsock sent an over-long handshake line');
        return;
      }
      const text = line.subarray(0, nl).toString('utf8');
      if (!/^OK \d+$/.test(text)) return fail(`Firecracker vsock refused CONNECT ${port}: ${text}`);
      cleanup();
      // Anything after the OK line already belongs to the agent.
      const rest = line.subarray(nl + 1);
      if (rest.length) sock.unshift(rest);
      resolve(sock);
    };
    const onEnd = () => fail(`Firecracker vsock closed during CONNECT ${port} (no agent listening yet?)`);
    const onAbort = () => fail('connecting to the agent was cancelled');
    const cleanup = () => {
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('error', onEnd);
      signal?.removeEventListener('abort', onAbort);
      sock.pause();
    };
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('error', onEnd);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** AF_VSOCK through `socat - VSOCK-CONNECT:cid:port`, whose stdio becomes the stream. */
function connectVsock(cid: number, port: number, runner: Runner): AgentStream {
  const child = runner.spawn(['socat', '-', `VSOCK-CONNECT:${cid}:${port}`], { pipe: true });
  if (!child.stdout || !child.stdin) throw operationFailed('socat has no stdio pipes');
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  stream.on('close', () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  child.once('exit', () => stream.destroy());
  return stream;
}

export async function openAgentStream(
  endpoint: AgentEndpoint,
  opts: ConnectOptions = {},
): Promise<AgentStream> {
  switch (endpoint.kind) {
    case 'virtio-serial':
      return connectUnix(endpoint.socketPath, opts.signal);
    case 'firecracker-vsock':
      return connectFirecrackerVsock(endpoint.udsPath, endpoint.port, opts.signal);
    case 'vsock':
      return connectVsock(endpoint.cid, endpoint.port, opts.runner ?? createRunner());
  }
}
