import { createHash } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDigestCache } from '../../../../../src/daemon/services/snapshots/digest-cache.js';
import { sha256File } from '../../../../../src/daemon/services/snapshots/files.js';

// The cache behind snapshot verify(): what a fork skips, and what it must still catch.
const dir = mkdtempSync(join(tmpdir(), 'banger-digests-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function counting() {
  const reads: string[] = [];
  const cache = createDigestCache(async (path) => {
    reads.push(path);
    return sha256File(path);
  });
  return { cache, reads };
}

describe('snapshot digest cache', () => {
  it('reads an untouched file once, and reads it again after one byte is rewritten with mtime restored', async () => {
    const file = join(dir, 'memory');
    writeFileSync(file, 'aaaaaaaa');
    utimesSync(file, 1_700_000_000, 1_700_000_000); // whole seconds: utimes can put them back exactly
    // A file written this instant is "racily clean" (a same-tick write would keep its ctime): let it age.
    await sleep(1200);
    const { cache, reads } = counting();
    expect(await cache.sha256(file)).toBe(sha('aaaaaaaa'));
    expect(await cache.sha256(file)).toBe(sha('aaaaaaaa'));
    expect(reads).toHaveLength(1);

    const before = statSync(file);
    const fd = openSync(file, 'r+');
    writeSync(fd, 'b', 3);
    closeSync(fd);
    utimesSync(file, 1_700_000_000, 1_700_000_000);
    const after = statSync(file);
    expect([after.size, after.mtimeMs, after.ino]).toEqual([before.size, before.mtimeMs, before.ino]);

    expect(await cache.sha256(file)).toBe(sha('aaabaaaa'));
    expect(reads).toHaveLength(2);
  });

  it('does not keep the digest of a file changed moments ago, so a same-tick rewrite cannot hide', async () => {
    const file = join(dir, 'fresh');
    writeFileSync(file, 'one');
    const { cache, reads } = counting();
    expect(await cache.sha256(file)).toBe(sha('one'));
    expect(await cache.sha256(file)).toBe(sha('one'));
    expect(reads).toHaveLength(2);
  });

  it('reads a file replaced by another (new inode) under the same path', async () => {
    const file = join(dir, 'disk');
    writeFileSync(file, 'old!');
    await sleep(1200);
    const { cache, reads } = counting();
    expect(await cache.sha256(file)).toBe(sha('old!'));
    const other = join(dir, 'other');
    writeFileSync(other, 'new!');
    const { mtime, atime } = statSync(file);
    utimesSync(other, atime, mtime);
    rmSync(file);
    writeFileSync(file, 'new!');
    utimesSync(file, atime, mtime);
    expect(await cache.sha256(file)).toBe(sha('new!'));
    expect(reads).toHaveLength(2);
  });

  it("keeps a digest of the daemon's own fresh file across its directory's rename, and drops it on a write", async () => {
    const tmp = join(dir, '.tmp-own');
    const final = join(dir, 'own-final');
    rmSync(tmp, { recursive: true, force: true });
    rmSync(final, { recursive: true, force: true });
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'memory'), 'fresh');
    const { cache, reads } = counting();
    // Written this instant, yet kept: the snapshot's own files (sha256 would not keep it, see above).
    expect(await cache.sha256Own(join(tmp, 'memory'))).toBe(sha('fresh'));
    renameSync(tmp, final);
    cache.moved(tmp, final);
    expect(await cache.sha256(join(final, 'memory'))).toBe(sha('fresh'));
    expect(reads).toHaveLength(1);
    await sleep(20);
    writeFileSync(join(final, 'memory'), 'fresk');
    expect(await cache.sha256(join(final, 'memory'))).toBe(sha('fresk'));
    expect(reads).toHaveLength(2);
  });
});
