import { describe, expect, it } from 'vitest';
import { chooseSize, estimateBytes } from '../../../src/rootfs/ext4.js';

const GiB = 1024 ** 3;

describe('image sizing', () => {
  it('rounds files up to blocks and counts an inode for everything', () => {
    expect(estimateBytes([1, 4096, 4097], 2)).toEqual({
      bytes: 4096 + 4096 + 8192 + 2 * 4096 + 5 * 256,
      inodes: 5,
    });
  });

  it('gives at least 1 GiB, else content × 1.5 rounded to MiB', () => {
    expect(chooseSize({ bytes: 10 * 1024 * 1024, inodes: 10 }, undefined)).toBe(GiB);
    const big = chooseSize({ bytes: 2 * GiB, inodes: 10 }, undefined);
    expect(big).toBe(3 * GiB);
  });

  it('takes a requested size that fits and refuses one that does not, with both numbers', () => {
    expect(chooseSize({ bytes: 10 * 1024 * 1024, inodes: 10 }, 64 * 1024 * 1024)).toBe(64 * 1024 * 1024);
    expect(() => chooseSize({ bytes: 100 * 1024 * 1024, inodes: 10 }, 64 * 1024 * 1024)).toThrow(
      /needs about 118 MiB but the requested size is 64 MiB/,
    );
  });
});
