import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_AGENT_PATH } from '../../src/guest/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import {
  cliLong,
  debugfsMode,
  ext4Tree,
  fsckClean,
  gnuTarTree,
  withoutGuestAssets,
} from '../fixtures/images.js';
import { testRootfs } from '../fixtures/rootfs-tarball.js';
import { dockerExportStream, hostileTarball } from '../fixtures/tarballs.js';

/** Alpine's minirootfs where ../shared has it, else the busybox rootfs the suite builds. */
const { tarball: ROOTFS_TARBALL } = await testRootfs();

/** `banger ARGS` with a file (or bytes) on stdin, the way `docker export c | banger …` runs. */
const cliWithStdin = (inst: BangerInstance, args: string[], input: { file: string } | Buffer) =>
  cliLong(inst, args, Buffer.isBuffer(input) ? { input } : { inputFile: input.file });

interface ShownImage {
  image: {
    id: string;
    name: string;
    managed: boolean;
    source: Record<string, string>;
    artifacts: Record<string, string>;
    config: Record<string, unknown>;
  };
  report?: Record<string, unknown>;
  usedBy: string[];
}

// Real: the daemon and CLI as built, GNU tar and e2fsprogs on the host (root, for ownership and devices).
describe('banger image (CLI -> daemon -> image service)', () => {
  let inst: BangerInstance;
  const imagesDir = () => join(inst.home, 'state', 'images');
  const show = async (name: string): Promise<ShownImage> => {
    const r = await inst.cli(['image', 'show', name, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as ShownImage;
  };
  /** Image directories on disk, staging and trash included: each must belong to a store row. */
  const dirsOnDisk = () => (existsSync(imagesDir()) ? readdirSync(imagesDir()).sort() : []);

  beforeAll(() => {
    inst = createInstance();
  });
  afterAll(async () => inst.cleanup());

  it('imports a real rootfs tarball: same tree as GNU tar, clean ext4, default config, listed and shown', async () => {
    const r = await inst.cli(['image', 'import', 'alp', ROOTFS_TARBALL]);
    expect(r.exitCode, r.stderr).toBe(0);
    const file = basename(ROOTFS_TARBALL).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(r.stdout).toMatch(new RegExp(`^imported alp: tarball .*${file}`));
    expect(r.stderr).toContain('read');

    const { image, report } = await show('alp');
    expect(image).toMatchObject({ managed: true, source: { kind: 'tar', file: ROOTFS_TARBALL } });
    expect(image.config).toEqual({
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      workingDir: '/',
    });
    expect(report).toBeDefined();
    const rootfs = image.artifacts.rootfsPath as string;
    expect(rootfs).toBe(join(imagesDir(), image.id, 'rootfs.ext4'));
    expect((await fsckClean(rootfs)).ok).toBe(true);
    const reference = await gnuTarTree(ROOTFS_TARBALL);
    expect(withoutGuestAssets(await ext4Tree(rootfs), reference)).toEqual(reference);
    expect(await debugfsMode(rootfs, '/tmp')).toBe('01777');
    expect(await debugfsMode(rootfs, GUEST_AGENT_PATH)).toBe('0755');

    const list = await inst.cli(['image', 'list']);
    expect(list.stdout).toMatch(/^alp\s+tar\s+yes\s+1 GiB\s+default/m);
    const json = JSON.parse((await inst.cli(['image', 'list', '--json'])).stdout);
    expect(json.map((i: { name: string }) => i.name)).toEqual(['alp']);
    expect(dirsOnDisk()).toEqual([image.id]);
  });

  it('imports zstd, and from stdin an xz tarball and a docker-export stream keep devices, FIFOs, hardlinks and setuid', async () => {
    const xz = join(inst.home, 'alpine.tar.xz');
    await execa('sh', ['-c', `gzip -dc "${ROOTFS_TARBALL}" | xz -1 > "${xz}"`]);
    const fromXz = await cliWithStdin(inst, ['image', 'import', 'alp-xz', '-'], { file: xz });
    expect(fromXz.exitCode, fromXz.stderr).toBe(0);
    expect(fromXz.stdout).toMatch(/^imported alp-xz: tarball stdin/);
    expect(
      withoutGuestAssets(
        await ext4Tree((await show('alp-xz')).image.artifacts.rootfsPath as string),
        await gnuTarTree(ROOTFS_TARBALL),
      ),
    ).toEqual(await gnuTarTree(ROOTFS_TARBALL));

    const zst = join(inst.home, 'alpine.tar.zst');
    await execa('sh', ['-c', `gzip -dc "${ROOTFS_TARBALL}" | zstd -q -o "${zst}"`]);
    const fromZstd = await inst.cli(['image', 'import', 'alp-zst', zst]);
    expect(fromZstd.exitCode, fromZstd.stderr).toBe(0);
    expect((await inst.cli(['image', 'rm', 'alp-zst'])).exitCode).toBe(0);

    const r = await cliWithStdin(
      inst,
      ['image', 'import', 'web', '-'],
      await dockerExportStream(ROOTFS_TARBALL),
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const rootfs = (await show('web')).image.artifacts.rootfsPath as string;
    expect((await fsckClean(rootfs)).ok).toBe(true);
    const stat = async (p: string) =>
      (await execa('debugfs', ['-R', `stat ${p}`, rootfs])).stdout.replace(/\n/g, ' ');
    expect(await stat('/dev/console')).toMatch(/Type: character special\s+Mode:\s+0620/);
    expect(await stat('/run/ctl')).toMatch(/Type: FIFO/);
    expect(await stat('/usr/bin/su-like')).toMatch(/Mode:\s+04755/);
    expect(await stat('/usr/bin/su-like')).toMatch(/Links: 2/);
    expect(await stat('/.dockerenv')).toMatch(/Type: regular/);
  });

  it('refuses hostile tarballs with the path in the message, confines symlink escapes, touches nothing outside', async () => {
    const before = dirsOnDisk();
    const outside = join(inst.home, 'outside');
    mkdirSync(outside);
    const traversal = await inst.cli([
      'image',
      'import',
      'bad-traversal',
      await hostileTarball('traversal', inst.home, outside),
    ]);
    expect(traversal.exitCode).toBe(1);
    expect(traversal.stderr).toMatch(/^banger: cannot import .*traversal\.tar: .*"\.\.\/\.\.\/escaped"/m);
    const junk = await inst.cli([
      'image',
      'import',
      'bad-junk',
      await hostileTarball('not-a-tar', inst.home, outside),
    ]);
    expect(junk.exitCode).toBe(1);
    expect(junk.stderr).toMatch(/^banger: cannot import .*not-a-tar\.tar: .*not a readable tar/m);
    for (const name of ['bad-traversal', 'bad-junk'])
      expect((await inst.cli(['image', 'show', name])).exitCode).toBe(1);
    expect(dirsOnDisk()).toEqual(before);

    // A symlink to an absolute host path resolves inside the image, as in a container: the file lands there.
    const esc = await inst.cli([
      'image',
      'import',
      'esc',
      await hostileTarball('symlink-escape', inst.home, outside),
    ]);
    expect(esc.exitCode, esc.stderr).toBe(0);
    const rootfs = (await show('esc')).image.artifacts.rootfsPath as string;
    expect(await debugfsMode(rootfs, `${outside}/pwned`)).toBe('0644');
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(inst.home, 'escaped'))).toBe(false);
    expect((await inst.cli(['image', 'rm', 'esc'])).exitCode).toBe(0);
    expect(dirsOnDisk()).toEqual(before);
  });

  it('says what is wrong for a taken name, an unknown catalog name, a missing file and mixed kernel flags', async () => {
    const taken = await inst.cli(['image', 'import', 'alp', ROOTFS_TARBALL]);
    expect(taken.exitCode).toBe(1);
    expect(taken.stderr).toMatch(/^banger: image alp already exists/m);
    expect(taken.stderr).toContain('banger image rm alp');

    const unknown = await inst.cli(['image', 'pull', 'no-such-image']);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toMatch(
      /^banger: image no-such-image is not in the catalog; available: debian-bookworm/m,
    );

    const missing = await inst.cli(['image', 'import', 'x', join(inst.home, 'nope.tar')]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/cannot read tarball .*nope\.tar/);

    const mixed = await inst.cli([
      'image',
      'import',
      'x',
      ROOTFS_TARBALL,
      '--kernel-ref',
      'k',
      '--kernel',
      '/boot/vmlinuz',
    ]);
    expect(mixed.exitCode).toBe(1);

    const badName = await inst.cli(['image', 'import', '../evil', ROOTFS_TARBALL]);
    expect(badName.exitCode).toBe(1);
    expect(badName.stderr).toMatch(/invalid image name/);
    expect((await inst.cli(['image', 'show', 'x'])).exitCode).toBe(1);
  });

  it('lists the catalog with each entry available or pulled', async () => {
    const r = await inst.cli(['image', 'catalog', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toContainEqual(
      expect.objectContaining({
        name: 'debian-bookworm',
        kind: 'recipe',
        state: 'available',
        kernelRef: 'debian-cloud-amd64',
      }),
    );
  });

  it('registers host files unmanaged, promotes them to managed copies, and never touches the originals', async () => {
    const src = (await show('alp')).image.artifacts.rootfsPath as string;
    const mine = join(inst.home, 'mine.ext4');
    await execa('cp', ['--sparse=always', src, mine]);
    const notExt4 = join(inst.home, 'junk.img');
    writeFileSync(notExt4, Buffer.alloc(4096));
    const bad = await inst.cli(['image', 'register', '--name', 'junk', '--rootfs', notExt4]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('is not an ext4 filesystem');
    const noKernel = await inst.cli([
      'image',
      'register',
      '--name',
      'mine',
      '--rootfs',
      mine,
      '--kernel-ref',
      'nope',
    ]);
    expect(noKernel.exitCode).toBe(1);
    expect(noKernel.stderr).toContain("run 'banger kernel list'");

    const reg = await inst.cli(['image', 'register', '--name', 'mine', '--rootfs', mine]);
    expect(reg.exitCode, reg.stderr).toBe(0);
    const registered = (await show('mine')).image;
    expect(registered).toMatchObject({
      managed: false,
      source: { kind: 'registered' },
      artifacts: { rootfsPath: mine },
    });
    expect((await inst.cli(['image', 'list'])).stdout).toMatch(/^mine\s+registered\s+no/m);

    const promote = await inst.cli(['image', 'promote', 'mine']);
    expect(promote.exitCode, promote.stderr).toBe(0);
    const promoted = (await show('mine')).image;
    expect(promoted.managed).toBe(true);
    expect(promoted.artifacts.rootfsPath).toBe(join(imagesDir(), registered.id, 'rootfs.ext4'));
    expect((await fsckClean(promoted.artifacts.rootfsPath as string)).ok).toBe(true);
    expect(existsSync(mine)).toBe(true);
    expect((await inst.cli(['image', 'promote', 'mine'])).stderr).toContain('already managed');
  });

  it('refuses to delete an image a VM uses, naming the VM; deletes it once free', async () => {
    const { image } = await show('web');
    const db = new Database(join(inst.home, 'state', 'banger.db'));
    const now = new Date().toISOString();
    db.prepare(
      `INSERT INTO vms (id, name, image_id, state, spec_json, runtime_json, created_at, updated_at, last_touched_at)
       VALUES ('vm1', 'devbox', ?, 'stopped', '{}', '{}', ?, ?, ?)`,
    ).run(image.id, now, now, now);
    try {
      const refused = await inst.cli(['image', 'rm', 'web']);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toMatch(/^banger: image web is used by VM devbox/m);
      expect(existsSync(join(imagesDir(), image.id))).toBe(true);
      expect((await show('web')).usedBy).toEqual(['devbox']);
    } finally {
      db.prepare(`DELETE FROM vms WHERE id = 'vm1'`).run();
      db.close();
    }
    const rm = await inst.cli(['image', 'rm', 'web']);
    expect(rm.exitCode, rm.stderr).toBe(0);
    expect(existsSync(join(imagesDir(), image.id))).toBe(false);
    expect((await inst.cli(['image', 'rm', 'web'])).stderr).toMatch(/image "web" not found/);
  });

  it('prunes the OCI blob cache, with a dry run first', async () => {
    const blobs = join(inst.home, 'cache', 'oci', 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, 'a'.repeat(64)), Buffer.alloc(2048));
    writeFileSync(join(blobs, 'b'.repeat(64)), Buffer.alloc(1024));
    const dry = await inst.cli(['image', 'cache', 'prune', '--dry-run']);
    expect(dry.stdout).toBe(`would free 3 KiB across 2 blob(s) in ${join(inst.home, 'cache', 'oci')}`);
    expect(readdirSync(blobs)).toHaveLength(2);
    const real = await inst.cli(['image', 'cache', 'prune']);
    expect(real.exitCode, real.stderr).toBe(0);
    expect(real.stdout).toMatch(/^freed .* across 2 blob\(s\) in /);
    expect(readdirSync(blobs)).toEqual([]);
  });
});
