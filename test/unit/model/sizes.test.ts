import { describe, expect, it } from 'vitest';
import { formatSize, parseSize } from '../../../src/model/sizes.js';

describe('parseSize', () => {
  it('reads units as powers of 1024 and a bare number as MiB', () => {
    expect(parseSize('4G')).toBe(4 * 1024 ** 3);
    expect(parseSize('4GiB')).toBe(4 * 1024 ** 3);
    expect(parseSize('512MiB')).toBe(512 * 1024 ** 2);
    expect(parseSize('4KiB')).toBe(4096);
    expect(parseSize('100')).toBe(100 * 1024 ** 2);
    expect(parseSize('1.5G')).toBe(1.5 * 1024 ** 3);
  });

  it('refuses what it cannot read, saying what it got', () => {
    expect(() => parseSize('4 potatoes')).toThrow(/invalid size "4 potatoes"/);
    expect(() => parseSize('')).toThrow(/invalid size/);
    expect(() => parseSize('-1G')).toThrow(/invalid size/);
  });
});

describe('formatSize', () => {
  it('prints the largest fitting unit', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSize(1.2 * 1024 ** 3)).toBe('1.2 GiB');
    expect(formatSize(512 * 1024 ** 2)).toBe('512 MiB');
  });
});
