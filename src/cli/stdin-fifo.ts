import { constants, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { CliContext } from './context.js';

/**
 * Hands this process's stdin to the daemon as a FIFO path: the RPC protocol carries no byte streams, and a
 * FIFO streams `docker export c | banger image import web -` without a spooled copy on disk. `fn` starts
 * the RPC call with the path; we pump stdin in while the daemon reads.
 */
export async function withStdinFifo<T>(ctx: CliContext, fn: (fifo: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'banger-stdin-'));
  const fifo = join(dir, 'stdin');
  try {
    await ctx.runner.run(['mkfifo', '-m', '600', fifo]);
    let opened = false;
    const writer = createWriteStream(fifo);
    writer.once('open', () => {
      opened = true;
    });
    // A daemon that stops reading early (a refused tarball) makes our writes fail with EPIPE; its RPC
    // error says why, so the pump's own error is dropped.
    const pumping = pipeline(process.stdin, writer).catch(() => undefined);
    try {
      return await fn(fifo);
    } finally {
      if (!opened) {
        // The daemon failed before opening the FIFO: our open() is still blocked waiting for a reader.
        const unblock = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => undefined);
        await unblock?.close();
      }
      writer.destroy();
      process.stdin.destroy();
      await pumping;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
