import { describe, expect, it } from 'vitest';
import { detectCompression, limitsFromConfig, MAX_LAYERS } from '../../../src/rootfs/index.js';

describe('limitsFromConfig', () => {
  it('reads max_unpacked_size and max_entries from config', () => {
    expect(limitsFromConfig({ max_unpacked_size: '2G', max_entries: 1000 })).toEqual({
      maxLayers: MAX_LAYERS,
      maxEntries: 1000,
      maxUnpackedBytes: 2 * 1024 ** 3,
    });
  });
});

describe('detectCompression', () => {
  it('goes by magic bytes, not media types', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(detectCompression(Buffer.from('etc/passwd'))).toBe('none');
    expect(detectCompression(Buffer.alloc(0))).toBe('none');
  });
});
