import { describe, expect, it } from 'vitest';
import { crc32c, crc32cU32 } from '../../../../src/ext4/writer/crc32c.js';

describe('crc32c', () => {
  it('matches the Castagnoli check value once the usual inversions are applied', () => {
    expect((crc32c(0xffffffff, Buffer.from('123456789')) ^ 0xffffffff) >>> 0).toBe(0xe3069283);
  });

  it('chains: one call over a+b equals two calls', () => {
    const a = Buffer.from('inode number and generation');
    const b = Buffer.alloc(1000, 7);
    expect(crc32c(crc32c(1, a), b)).toBe(crc32c(1, Buffer.concat([a, b])));
    const le = Buffer.alloc(4);
    le.writeUInt32LE(12);
    expect(crc32cU32(5, 12)).toBe(crc32c(5, le));
  });
});
