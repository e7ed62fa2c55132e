import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner, findExecutable } from '../../src/host/index.js';
import type { LayerSource } from '../../src/model/layer.js';
import { buildRootfs } from '../../src/rootfs/index.js';
import { ensureDebianTree } from '../fixtures/debian-tree.js';
import { fsck, statImage } from '../fixtures/ext4-reader.js';
import { compareWithGnuTar } from '../fixtures/gnu-tar-compare.js';
import { packTar } from '../fixtures/layers.js';

const runner = createRunner();
const fileLayer = (path: string): LayerSource => ({ digest: path, open: async () => createReadStream(path) });

let dir: string;
let layer1 = '';
let skipReason: string | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'banger-rootfs-debian-'));
  if (!findExecutable('debootstrap')) {
    skipReason = 'debootstrap is not installed';
    return;
  }
  let tree: string;
  try {
    tree = await ensureDebianTree();
  } catch (err) {
    skipReason = `debootstrap could not build Debian (no mirror?): ${(err as Error).message.slice(0, 200)}`;
    return;
  }
  layer1 = join(dir, 'debian-l1.tar');
  await runner.run([
    'tar',
    '--numeric-owner',
    '--xattrs',
    '--xattrs-include=*',
    '-C',
    tree,
    '-cf',
    layer1,
    '.',
  ]);
}, 900_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('rootfs builder on Debian bookworm (debootstrap)', () => {
  it('matches GNU tar inode by inode', { timeout: 600_000 }, async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const output = join(dir, 'debian.ext4');
    const { report } = await buildRootfs({ layers: [fileLayer(layer1)], output });
    expect((await fsck(output)).exitCode).toBe(0);
    expect(await compareWithGnuTar(layer1, output, dir)).toBeGreaterThan(5000);
    expect(report.entries.hardlink).toBeGreaterThan(0);
    expect(report.kept.setuidSetgidSticky).toBeGreaterThan(3);
    await rm(output);
  });

  it('applies a second layer with whiteouts and an opaque /usr/share/doc', {
    timeout: 600_000,
  }, async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const layer2 = join(dir, 'debian-l2.tar');
    await writeFile(
      layer2,
      await packTar([
        { name: './etc/hostname', type: 'file', mode: 0o644, content: 'banger\n' },
        { name: './etc/.wh.debian_version', type: 'file', mode: 0o644, content: '' },
        { name: './usr/share/doc/.wh..wh..opq', type: 'file', mode: 0o644, content: '' },
        { name: './usr/share/doc/README.banger', type: 'file', mode: 0o644, content: 'hi\n' },
      ]),
    );
    const output = join(dir, 'debian2.ext4');
    const { report } = await buildRootfs({
      layers: [fileLayer(layer1), fileLayer(layer2)],
      output,
    });
    expect((await fsck(output)).exitCode).toBe(0);
    expect(report.whiteouts).toEqual({ files: 1, opaqueDirs: 1 });
    const img = await statImage(output, [
      '/etc/debian_version',
      '/usr/share/doc/README.banger',
      '/usr/share/doc/bash',
      '/usr/bin/su',
      '/bin',
      '/dev/null',
    ]);
    expect(img.has('/etc/debian_version')).toBe(false);
    expect(img.has('/usr/share/doc/bash')).toBe(false);
    expect(img.get('/usr/share/doc/README.banger')).toMatchObject({ type: 'regular' });
    expect(img.get('/usr/bin/su')).toMatchObject({ mode: 0o4755, uid: 0 });
    expect(img.get('/bin')).toMatchObject({ type: 'symlink', linkTarget: 'usr/bin' });
    expect(img.get('/dev/null')).toMatchObject({ type: 'character special', device: [1, 3] });
  });
});
