import type { FileHandle } from 'node:fs/promises';
import { BLOCK_SIZE } from './layout.js';

/** Bytes gathered before one positional write: large enough to be cheap, small enough to stay flat. */
const WRITE_CHUNK = 1024 * 1024;

/**
 * Where file data goes on its way to the image: blocks at consecutive addresses are gathered into one
 * write, across files (fresh blocks are handed out in order, so a run of small files is one write). Any
 * block that does not continue the run flushes it first, so writes land in the order they were made, also
 * when a freed block is written again.
 */
export class DataSink {
  private readonly fh: FileHandle;
  private readonly buf = Buffer.allocUnsafe(WRITE_CHUNK);
  private len = 0;
  private start = -1;

  constructor(fh: FileHandle) {
    this.fh = fh;
  }

  async put(block: number, data: Buffer): Promise<void> {
    if (
      this.len > 0 &&
      (this.start * BLOCK_SIZE + this.len !== block * BLOCK_SIZE || this.len === this.buf.length)
    )
      await this.flush();
    if (this.len === 0) this.start = block;
    data.copy(this.buf, this.len, 0, BLOCK_SIZE);
    this.len += BLOCK_SIZE;
  }

  async flush(): Promise<void> {
    if (this.len === 0) return;
    await this.fh.write(this.buf, 0, this.len, this.start * BLOCK_SIZE);
    this.len = 0;
  }
}
