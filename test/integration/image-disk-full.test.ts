import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import { testRootfs } from '../fixtures/rootfs-tarball.js';

/** Alpine's minirootfs where ../shared has it, else the busybox rootfs the suite builds. */
const { tarball: ROOTFS_TARBALL } = await testRootfs();

const skip = process.getuid?.() !== 0 ? 'mounting a small tmpfs needs root' : undefined;

// Real: the image store on a 4 MiB tmpfs, too small for the Alpine tree; the import must fail with the
// reason and leave the store as it was.
describe.skipIf(skip !== undefined)(`image import on a full disk${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let inst: BangerInstance;
  let mounted = false;
  const imagesDir = () => join(inst.home, 'state', 'images');

  beforeAll(async () => {
    inst = createInstance();
    mkdirSync(imagesDir(), { recursive: true, mode: 0o700 });
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'bgr-images', imagesDir()]);
    mounted = true;
  });
  afterAll(async () => {
    await inst.cli(['daemon', 'stop']);
    if (mounted) await execa('umount', [imagesDir()], { reject: false });
    await inst.cleanup();
  });

  it('fails with ENOSPC in the message and leaves no row, no staging and no image directory', async () => {
    const r = await inst.cli(['image', 'import', 'alp', ROOTFS_TARBALL]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^banger: .*(ENOSPC|No space left on device)/m);
    expect(readdirSync(imagesDir())).toEqual([]);
    const list = await inst.cli(['image', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });
});
