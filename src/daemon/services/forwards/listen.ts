import { createServer, type Server, type Socket } from 'node:net';
import { alreadyExists, badRequest, operationFailed } from '../../../model/errors.js';
import { hostEndpoint } from './spec.js';

/** How many ports past the wanted one an automatic forward tries before taking any free port. */
const AUTO_PORT_TRIES = 20;

/**
 * A listening socket on the host for one forward. Connections are paused until the guest end is open, and
 * half-open: each direction ends on its own.
 */
export function listenHost(
  address: string,
  port: number,
  onConnection: (s: Socket) => void,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = hostEndpoint(address, port);
      if (err.code === 'EADDRINUSE') reject(alreadyExists(`host port ${where} is already in use`));
      else if (err.code === 'EADDRNOTAVAIL') reject(badRequest(`${address} is not an address of this host`));
      else if (err.code === 'EACCES')
        reject(badRequest(`listening on ${where} needs privileges`, { hint: 'use a host port above 1023' }));
      else reject(operationFailed(`cannot listen on ${where}: ${err.message}`, { cause: err }));
    });
    server.listen({ host: address, port, exclusive: true }, () => {
      server.removeAllListeners('error');
      // A listener error after this (rare: the socket is broken) must not crash the daemon.
      server.on('error', () => {});
      resolve(server);
    });
  });
}

/** The wanted port, else the next free one (a few tries), else any free port. */
export async function listenHostNear(
  address: string,
  wanted: number,
  onConnection: (s: Socket) => void,
): Promise<Server> {
  for (let p = wanted; p < wanted + AUTO_PORT_TRIES && p <= 65535; p++) {
    try {
      return await listenHost(address, p, onConnection);
    } catch (err) {
      if (
        (err as { code?: string }).code !== 'already_exists' &&
        (err as { code?: string }).code !== 'bad_request'
      )
        throw err;
    }
  }
  return listenHost(address, 0, onConnection);
}

/** The port a listening server got (the asked one, or the host's pick for 0). */
export function boundPort(server: Server): number {
  const a = server.address();
  return typeof a === 'object' && a ? a.port : 0;
}
