import { execFileSync } from 'node:child_process';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadInstanceId } from '../../../../src/host/priv/index.js';

describe('loadInstanceId', () => {
  const root = mkdtempSync(join(tmpdir(), 'bgr-h-unit-id-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let n = 0;
  const dir = () => {
    const d = join(root, String(n++));
    execFileSync('mkdir', ['-m', '700', d]);
    return d;
  };

  it('makes a random id once, 0600, and returns the same one afterwards', async () => {
    const path = join(dir(), 'instance-id');
    const id = await loadInstanceId(path);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toBe(`${id}\n`);
    expect(await loadInstanceId(path)).toBe(id);
    expect(await loadInstanceId(join(dir(), 'instance-id'))).not.toBe(id);
  });

  it('gives concurrent first callers one id and leaves no temporary file', async () => {
    const d = dir();
    const ids = await Promise.all(Array.from({ length: 20 }, () => loadInstanceId(join(d, 'instance-id'))));
    expect(new Set(ids).size).toBe(1);
    expect(readdirSync(d)).toEqual(['instance-id']);
  });

  it('refuses a symlink, a FIFO, malformed and oversized content rather than use or replace them', async () => {
    const d = dir();
    const target = join(d, 'elsewhere');
    writeFileSync(target, `${'a'.repeat(32)}\n`);
    symlinkSync(target, join(d, 'link'));
    execFileSync('mkfifo', [join(d, 'fifo')]);
    writeFileSync(join(d, 'bad'), 'banger:../../etc\n');
    writeFileSync(join(d, 'big'), `${'a'.repeat(32)}${' '.repeat(100)}b\n`);
    for (const name of ['link', 'fifo', 'bad', 'big']) {
      await expect(loadInstanceId(join(d, name)), name).rejects.toMatchObject({
        code: 'operation_failed',
        hint: expect.stringContaining('remove'),
      });
    }
    expect(readFileSync(target, 'utf8')).toBe(`${'a'.repeat(32)}\n`);
  });
});
