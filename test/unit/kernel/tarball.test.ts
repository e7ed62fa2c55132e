import { describe, expect, it } from 'vitest';
import { safeMemberPath } from '../../../src/kernel/tarball.js';

describe('safeMemberPath', () => {
  it('normalizes harmless names', () => {
    expect(safeMemberPath('./vmlinux')).toBe('vmlinux');
    expect(safeMemberPath('modules/kernel/')).toBe('modules/kernel');
    expect(safeMemberPath('./')).toBeUndefined();
  });

  it.each(['../x', 'a/../../x', '/etc/passwd', 'modules/../../x'])('refuses %s', (name) => {
    expect(() => safeMemberPath(name)).toThrow(/escapes the bundle/);
  });
});
