import { describe, expect, it } from 'vitest';
import { dirBlockCount, encodeDirBlocks } from '../../../../src/ext4/writer/directory.js';

describe('linear directories', () => {
  it('encodes as many blocks as it counts, each ending in the checksum tail', () => {
    const entries = Array.from({ length: 1000 }, (_, i) => ({
      name: Buffer.from(`name-${i}`),
      ino: 12 + i,
      kind: 'file' as const,
    }));
    const blocks = encodeDirBlocks(2, 2, entries, 0);
    expect(blocks).toHaveLength(dirBlockCount(entries));
    for (const b of blocks) {
      expect(b.readUInt16LE(4096 - 12 + 4)).toBe(12);
      expect(b.readUInt8(4096 - 12 + 7)).toBe(0xde);
    }
    expect(encodeDirBlocks(11, 2, [], 0, 4)).toHaveLength(4);
  });
});
