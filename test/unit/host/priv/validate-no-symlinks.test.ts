import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validatePathNoSymlinks } from '../../../../src/host/priv/validate.js';

const root = mkdtempSync(join(tmpdir(), 'banger-nosym-'));
const state = join(root, 'state');
mkdirSync(join(state, 'vms', 'a'), { recursive: true });
writeFileSync(join(state, 'vms', 'a', 'disk.img'), '');
symlinkSync(join(state, 'vms'), join(state, 'link'));
symlinkSync(root, join(root, 'state-link'));

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('validatePathNoSymlinks', () => {
  it('accepts a file in the tree, and one not made yet', () => {
    expect(validatePathNoSymlinks(state, join(state, 'vms', 'a', 'disk.img'))).toBe(
      join(state, 'vms', 'a', 'disk.img'),
    );
    expect(validatePathNoSymlinks(state, join(state, 'vms', 'b', 'new.img'))).toBe(
      join(state, 'vms', 'b', 'new.img'),
    );
  });

  it('refuses a symlink anywhere on the way, even one pointing back inside', () => {
    expect(() => validatePathNoSymlinks(state, join(state, 'link', 'a', 'disk.img'))).toThrow(/is a symlink/);
    expect(() => validatePathNoSymlinks(state, join(state, 'link'))).toThrow(/is a symlink/);
    const viaLink = join(root, 'state-link', 'state');
    expect(() => validatePathNoSymlinks(join(root, 'state-link'), join(viaLink, 'x'))).toThrow(
      /is a symlink/,
    );
  });

  it('refuses paths outside the tree, the tree itself and paths not in normal form', () => {
    expect(() => validatePathNoSymlinks(state, '/etc/shadow')).toThrow(/outside the owner's state dir/);
    expect(() => validatePathNoSymlinks(state, state)).toThrow(/outside/);
    expect(() => validatePathNoSymlinks(state, `${state}/vms/../../x`)).toThrow(
      /not an absolute normal path/,
    );
    expect(() => validatePathNoSymlinks(state, 'vms/a')).toThrow(/not an absolute normal path/);
    expect(() => validatePathNoSymlinks(state, `${state}/vms/a\0`)).toThrow(/not an absolute normal path/);
  });
});
