import { describe, expect, it } from 'vitest';
import { BlockAllocator } from '../../../../src/ext4/writer/allocator.js';
import { SUPER_WINDOW } from '../../../../src/ext4/writer/layout.js';

describe('block allocator', () => {
  it('steps over superblock windows and reuses released runs, best fit first', () => {
    const a = new BlockAllocator();
    expect(a.fresh(10)).toEqual([{ start: SUPER_WINDOW, len: 10 }]);
    const crossing = a.fresh(32768);
    // Group 1 holds a superblock copy: its first SUPER_WINDOW blocks are never handed out.
    expect(crossing).toEqual([
      { start: SUPER_WINDOW + 10, len: 32768 - SUPER_WINDOW - 10 },
      { start: 32768 + SUPER_WINDOW, len: SUPER_WINDOW + 10 },
    ]);
    a.release([
      { start: 1000, len: 50 },
      { start: 2000, len: 8 },
    ]);
    expect(a.reserve(8)).toEqual([{ start: 2000, len: 8 }]);
    expect(a.reserve(20)).toEqual([{ start: 1000, len: 20 }]);
    expect(a.reserve(31)).toEqual([{ start: a.highWater - 31, len: 31 }]);
  });
});
