import { BLOCKS_PER_GROUP, hasSuper, SUPER_WINDOW } from './layout.js';

/** Bounds the best-fit search, whatever a layer deletes. */
const MAX_FREE_RUNS = 4096;

/** A run of physical blocks. */
export interface Run {
  start: number;
  len: number;
}

/**
 * Hands out blocks before the image's final size is known. Fresh blocks come from a high-water mark that
 * only grows and steps over every group's superblock window, so what it returns has never been written
 * (a sparse file reads zeros there, which inode tables and the journal rely on). Blocks of files a later
 * layer deleted come back through `release` and are reused first for file data, best fit.
 */
export class BlockAllocator {
  private next = SUPER_WINDOW;
  private readonly free: Run[] = [];

  /** The first block never handed out. */
  get highWater(): number {
    return this.next;
  }

  /** `n` blocks for file data: one freed run that holds them all if there is one, else fresh blocks. */
  reserve(n: number): Run[] {
    if (n === 0) return [];
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const r = this.free[i]!;
      if (r.len >= n && (best === -1 || r.len < this.free[best]!.len)) best = i;
    }
    if (best !== -1) {
      const r = this.free[best]!;
      const out = { start: r.start, len: n };
      if (r.len === n) this.free.splice(best, 1);
      else this.free[best] = { start: r.start + n, len: r.len - n };
      return [out];
    }
    return this.fresh(n);
  }

  /** `n` never-written blocks, in as few runs as the superblock windows allow. */
  fresh(n: number): Run[] {
    const out: Run[] = [];
    let left = n;
    while (left > 0) {
      const group = Math.floor(this.next / BLOCKS_PER_GROUP);
      const groupStart = group * BLOCKS_PER_GROUP;
      if (hasSuper(group) && this.next < groupStart + SUPER_WINDOW) {
        this.next = groupStart + SUPER_WINDOW;
        continue;
      }
      const take = Math.min(left, groupStart + BLOCKS_PER_GROUP - this.next);
      const last = out[out.length - 1];
      if (last && last.start + last.len === this.next) last.len += take;
      else out.push({ start: this.next, len: take });
      this.next += take;
      left -= take;
    }
    return out;
  }

  /** `n` never-written blocks in one run (an inode table): steps past a window that would split it. */
  contiguous(n: number): number {
    for (;;) {
      const group = Math.floor(this.next / BLOCKS_PER_GROUP);
      const groupStart = group * BLOCKS_PER_GROUP;
      if (hasSuper(group) && this.next < groupStart + SUPER_WINDOW) {
        this.next = groupStart + SUPER_WINDOW;
        continue;
      }
      // The next window is at the start of the next group that has one.
      let g = group + 1;
      while (!hasSuper(g)) g++;
      const limit = g * BLOCKS_PER_GROUP;
      if (this.next + n <= limit) {
        const start = this.next;
        this.next += n;
        return start;
      }
      this.next = limit;
    }
  }

  /** Gives blocks back for reuse by later file data. */
  release(runs: readonly Run[]): void {
    // The list is searched per file: past this many runs, freed blocks just stay free in the image.
    for (const r of runs)
      if (r.len > 0 && this.free.length < MAX_FREE_RUNS) this.free.push({ start: r.start, len: r.len });
  }
}
