import { describe, expect, it } from 'vitest';
import { geometryFor, hasSuper } from '../../../../src/ext4/writer/layout.js';

const MiB = 1024 * 1024;

describe('ext4 writer geometry', () => {
  it('keeps superblock copies in groups 0, 1 and powers of 3, 5 and 7', () => {
    const groups = Array.from({ length: 130 }, (_, g) => g).filter(hasSuper);
    expect(groups).toEqual([0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125]);
  });

  it("gives mke2fs's inode ratio, more when the content has more entries, and refuses what cannot exist", () => {
    expect(geometryFor(1024 * MiB, 100)).toMatchObject({
      groups: 8,
      inodesCount: 65536,
      journalBlocks: 8192,
    });
    expect(geometryFor(1024 * MiB, 200_000)).toMatchObject({ inodesPerGroup: 25008 });
    expect(geometryFor(8 * MiB, 10)).toMatch(/too small/);
    expect(geometryFor(1024 * MiB, 300_000)).toMatch(/do not fit in 8 block groups/);
    // A last group too short for its own metadata is left out, as mke2fs does.
    expect(geometryFor(128 * MiB + 100 * 4096, 10)).toMatchObject({ groups: 1, blocksCount: 32768 });
  });
});
