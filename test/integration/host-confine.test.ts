import { chownSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner, runConfined } from '../../src/host/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';

// runConfined is how a tool (e2fsck, resize2fs, debugfs) touches a filesystem an image or guest made: as
// 65534, with the file as fd 3. Observed here with real processes asking the kernel who they are.
const runner = createRunner();
const fx = createNetnsFixture(runner);
const isRoot = process.geteuid?.() === 0;
let work: string;
let disk: string;

beforeAll(async () => {
  work = await fx.tempDir();
  disk = join(work, 'disk.img');
  writeFileSync(disk, 'disk bytes', { mode: 0o600 });
  chownSync(disk, 0, 0);
  mkdirSync(join(work, 'private'), { mode: 0o700 });
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

describe.skipIf(!isRoot)('runConfined (needs root to drop to uid 65534)', () => {
  it('runs the tool as 65534 in /, reaching the file only through fd 3, and gives the file back', async () => {
    const script = [
      'id -u; id -g; id -G; pwd',
      'cat "$1"; echo',
      `cat ${disk} 2>/dev/null || echo no-path-access`,
      `touch ${join(work, 'private', 'x')} 2>/dev/null || echo no-write`,
      'echo more >> "$1"',
    ].join('\n');
    const r = await runConfined(runner, disk, (f) => ['sh', '-c', script, 'sh', f]);
    // Its path is out of reach (the test dir is mkdtemp's 0700, root's), and so is any root-only place.
    expect(r.stdout.split('\n')).toEqual([
      '65534',
      '65534',
      '65534',
      '/',
      'disk bytes',
      'no-path-access',
      'no-write',
      '',
    ]);
    const st = statSync(disk);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([0, 0, 0o600]);
    expect(statSync(disk).size).toBe('disk bytes'.length + 'more\n'.length);
  });

  it('gives the file back when the tool fails', async () => {
    const r = await runConfined(runner, disk, () => ['sh', '-c', 'exit 3'], { allowFailure: true });
    expect(r.exitCode).toBe(3);
    await expect(runConfined(runner, disk, () => ['false'])).rejects.toMatchObject({
      code: 'operation_failed',
    });
    const st = statSync(disk);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([0, 0, 0o600]);
  });

  it('never follows a symlink to the file', async () => {
    const link = join(work, 'link.img');
    symlinkSync(disk, link);
    await expect(runConfined(runner, link, (f) => ['true', f])).rejects.toMatchObject({ code: 'ELOOP' });
    expect(statSync(disk).uid).toBe(0);
  });
});

describe('runConfined when not root', () => {
  it('runs the tool as it is, on the path', async () => {
    const r = await runConfined(runner, disk, (f) => ['sh', '-c', 'echo "$1"; id -u', 'sh', f], {
      asRoot: false,
    });
    expect(r.stdout).toBe(`${disk}\n${process.geteuid?.()}\n`);
  });
});
