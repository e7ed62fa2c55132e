import type { FileHandle } from 'node:fs/promises';
import { BLOCK_SIZE } from './layout.js';

const MAX_BATCH = 256;

/** Coalesces block writes at consecutive addresses into one positional write (metadata goes out in order). */
export class BlockWriter {
  private readonly fh: FileHandle;
  private start = -1;
  private bufs: Buffer[] = [];

  constructor(fh: FileHandle) {
    this.fh = fh;
  }

  async put(block: number, data: Buffer): Promise<void> {
    const blocks = data.length / BLOCK_SIZE;
    if (this.start !== -1 && (this.start + this.pendingBlocks() !== block || this.bufs.length >= MAX_BATCH))
      await this.flush();
    if (this.start === -1) this.start = block;
    this.bufs.push(data);
    if (blocks > 1) await this.flush();
  }

  private pendingBlocks(): number {
    let n = 0;
    for (const b of this.bufs) n += b.length / BLOCK_SIZE;
    return n;
  }

  async flush(): Promise<void> {
    if (this.start === -1) return;
    const data = this.bufs.length === 1 ? this.bufs[0]! : Buffer.concat(this.bufs);
    await this.fh.write(data, 0, data.length, this.start * BLOCK_SIZE);
    this.start = -1;
    this.bufs = [];
  }
}
