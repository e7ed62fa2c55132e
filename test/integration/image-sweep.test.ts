import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Image } from '../../src/model/image.js';
import { createStore, openStore } from '../../src/store/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';

// The real bangerd at start on an image store a crash left behind: an install renames its staging
// directory into place and then writes the row, so a kill in between leaves a directory no row names.
const KEPT = 'aaaaaaaaaaaaaaaa';
const ORPHAN = 'bbbbbbbbbbbbbbbb';

describe('image store sweep at daemon start', () => {
  let inst: BangerInstance;
  afterEach(async () => {
    await inst?.cleanup();
  });

  const imagesDir = () => join(inst.home, 'state', 'images');
  function imageDirWithRootfs(name: string): void {
    mkdirSync(join(imagesDir(), name), { recursive: true });
    writeFileSync(join(imagesDir(), name, 'rootfs.ext4'), 'not really ext4');
  }
  function insertRow(id: string, name: string): void {
    const store = createStore(openStore(join(inst.home, 'state', 'banger.db')));
    const now = new Date().toISOString();
    const image: Image = {
      id,
      name,
      managed: true,
      source: { kind: 'registered' },
      artifacts: { rootfsPath: join(imagesDir(), id, 'rootfs.ext4') },
      config: {},
      sizeBytes: 15,
      createdAt: now,
      updatedAt: now,
    };
    store.images.insert(image);
    store.db.close();
  }

  it('removes image directories without a row and crash staging; keeps rows, and what banger did not make', async () => {
    inst = createInstance();
    imageDirWithRootfs(KEPT);
    insertRow(KEPT, 'kept');
    imageDirWithRootfs(ORPHAN); // renamed into place, row never written
    imageDirWithRootfs(`.staging-${'c'.repeat(16)}`);
    imageDirWithRootfs('not-an-id'); // not a name banger makes: never touched
    writeFileSync(join(imagesDir(), 'dddddddddddddddd'), 'a file, not an image directory');

    const r = await inst.cli(['image', 'list', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as Image[]).map((i) => i.name)).toEqual(['kept']);
    expect(readdirSync(imagesDir()).sort()).toEqual([KEPT, 'dddddddddddddddd', 'not-an-id']);
    expect(existsSync(join(imagesDir(), KEPT, 'rootfs.ext4'))).toBe(true);
  });

  it('a second daemon started beside a running one sweeps nothing of its work in flight', async () => {
    inst = createInstance();
    const first = await inst.cli(['image', 'list', '--json']);
    expect(first.exitCode, first.stderr).toBe(0);
    // What the running daemon has in flight: a staging directory, and an image just renamed into place.
    const staging = `.staging-${'e'.repeat(16)}`;
    imageDirWithRootfs(staging);
    imageDirWithRootfs(ORPHAN);
    const second = await inst.daemon();
    expect(second.exitCode).toBe(3);
    expect(second.stderr).toContain('another bangerd is already running');
    expect(readdirSync(imagesDir()).sort()).toEqual([staging, ORPHAN]);
  });
});
