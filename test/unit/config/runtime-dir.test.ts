import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureRuntimeDir } from '../../../src/config/index.js';

describe('ensureRuntimeDir', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bgr-rt-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the directory 0700', () => {
    ensureRuntimeDir(join(dir, 'run'));
    const st = statSync(join(dir, 'run'));
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(process.getuid?.());
  });

  it('refuses a symlink, a foreign owner and an open mode', () => {
    mkdirSync(join(dir, 'real'), { mode: 0o700 });
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    expect(() => ensureRuntimeDir(join(dir, 'link'))).toThrow(/symlinks are refused/);
    expect(() => ensureRuntimeDir(join(dir, 'real'), 4242)).toThrow(/owned by uid/);
    chmodSync(join(dir, 'real'), 0o755);
    expect(() => ensureRuntimeDir(join(dir, 'real'))).toThrow(/expected 700/);
  });
});
