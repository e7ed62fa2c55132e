import { describe, expect, it } from 'vitest';
import { describeOwner, linkMark, linkOwner } from '../../../../src/host/priv/index.js';

describe('link marks', () => {
  const mark = linkMark('0123456789abcdef0123456789abcdef');

  it('tells our links from another instance’s and from everyone else’s', () => {
    expect(mark).toBe('banger:0123456789abcdef0123456789abcdef');
    expect(linkOwner({ alias: mark }, mark)).toBe('ours');
    expect(linkOwner({ alias: linkMark('f'.repeat(32)) }, mark)).toBe('other-banger');
    // Only the exact mark is ours: no prefix, suffix or case games.
    for (const alias of [
      `${mark}x`,
      mark.slice(0, -1),
      mark.toUpperCase(),
      ` ${mark}`,
      'vm tap',
      undefined,
    ]) {
      expect(linkOwner({ alias }, mark), String(alias)).not.toBe('ours');
    }
    expect(describeOwner({ alias: undefined }, mark)).toBe('banger did not make it (no banger mark)');
  });
});
