import { describe, expect, it } from 'vitest';
import { BangerError } from '../../../src/model/errors.js';
import { debugfsQuote, entryComponents } from '../../../src/rootfs/paths.js';

describe('entryComponents', () => {
  it('normalises ./ prefixes, doubled and trailing slashes, and . components', () => {
    expect(entryComponents('./usr//bin/./env')).toEqual(['usr', 'bin', 'env']);
    expect(entryComponents('etc/')).toEqual(['etc']);
  });

  it('treats /, ., ./ and the empty name as the root', () => {
    for (const name of ['/', '.', './', '']) expect(entryComponents(name)).toEqual([]);
  });

  it.each([
    ['../x', '".."'],
    ['a/../../x', '".."'],
    ['/etc/passwd', 'absolute'],
    ['a\nb', 'newline'],
    ['a\rb', 'newline'],
    ['bad\uFFFDutf8', 'UTF-8'],
    [`${'n'.repeat(256)}`, '255 bytes'],
    [`${'d/'.repeat(2000)}f`, 'longer than'],
  ])('refuses %j (%s) with bad_request', (name, why) => {
    const err = (() => {
      try {
        entryComponents(name);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(BangerError);
    expect((err as BangerError).code).toBe('bad_request');
    expect((err as BangerError).message).toContain(why);
  });

  it('keeps unicode, spaces and quotes, and counts the 255-byte limit in bytes', () => {
    expect(entryComponents('ünï cødé/"q"')).toEqual(['ünï cødé', '"q"']);
    expect(() => entryComponents('é'.repeat(128))).toThrow(/255 bytes/);
  });
});

describe('debugfsQuote', () => {
  it('wraps in double quotes and doubles embedded ones, so an argument stays one argument', () => {
    expect(debugfsQuote('/a b')).toBe('"/a b"');
    expect(debugfsQuote('/x" uid 0 "y')).toBe('"/x"" uid 0 ""y"');
  });

  it('refuses what would end the command line', () => {
    expect(() => debugfsQuote('/a\nrm /b')).toThrow(BangerError);
    expect(() => debugfsQuote('/a\rb')).toThrow(BangerError);
  });
});
