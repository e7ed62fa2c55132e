import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * Relays bytes between a host client and the guest end until both directions ended, with backpressure
 * both ways (a full side pauses the other) and half-closes passed on. A reset or error on one side resets
 * the other: a client whose guest server died sees ECONNRESET, not a hang.
 */
export function relay(client: Socket, guest: Duplex, onTraffic: () => void): void {
  client.on('data', (chunk: Buffer) => {
    onTraffic();
    if (!guest.write(chunk)) client.pause();
  });
  guest.on('drain', () => client.resume());
  client.on('end', () => guest.end());

  guest.on('data', (chunk: Buffer) => {
    onTraffic();
    if (!client.write(chunk)) guest.pause();
  });
  client.on('drain', () => guest.resume());
  guest.on('end', () => client.end());

  guest.on('error', () => {
    if (!client.destroyed) client.resetAndDestroy();
  });
  // The client went away abruptly (reset, error): the guest's end is reset too. An orderly close needs
  // nothing: both directions already ended, and the guest end finishes once its last bytes are sent.
  client.on('error', () => guest.destroy());
  client.on('close', (hadError) => {
    if (hadError) guest.destroy();
  });
  client.resume();
}
