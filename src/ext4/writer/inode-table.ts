import type { FileHandle } from 'node:fs/promises';
import { BLOCK_SIZE, type Geometry, INODE_SIZE } from './layout.js';

/** Gathers inodes (in ascending number) into whole inode-table blocks per group before writing. */
export class InodeTableWriter {
  private readonly fh: FileHandle;
  private readonly g: Geometry;
  private readonly tables: number[];
  private group = -1;
  private buf = Buffer.alloc(0);
  private used = 0;

  constructor(fh: FileHandle, g: Geometry, tables: number[]) {
    this.fh = fh;
    this.g = g;
    this.tables = tables;
  }

  async put(ino: number, inode: Buffer): Promise<void> {
    const grp = Math.floor((ino - 1) / this.g.inodesPerGroup);
    if (grp !== this.group) {
      await this.flush();
      this.group = grp;
      this.buf = Buffer.alloc(this.g.itableBlocks * BLOCK_SIZE);
      this.used = 0;
    }
    const idx = (ino - 1) % this.g.inodesPerGroup;
    inode.copy(this.buf, idx * INODE_SIZE);
    this.used = Math.max(this.used, idx + 1);
  }

  async flush(): Promise<void> {
    if (this.group === -1 || this.used === 0) return;
    const bytes = Math.ceil((this.used * INODE_SIZE) / BLOCK_SIZE) * BLOCK_SIZE;
    await this.fh.write(this.buf, 0, bytes, this.tables[this.group]! * BLOCK_SIZE);
    this.used = 0;
  }
}
