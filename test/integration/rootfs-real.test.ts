import { createReadStream, existsSync } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import type { LayerSource } from '../../src/model/layer.js';
import { buildRootfs, injectAssets } from '../../src/rootfs/index.js';
import { fsck, readImageFile, statImage, statOne } from '../fixtures/ext4-reader.js';
import { compareWithGnuTar } from '../fixtures/gnu-tar-compare.js';
import { packTar, type TarEntry } from '../fixtures/layers.js';
import { testRootfs } from '../fixtures/rootfs-tarball.js';

/** Alpine's minirootfs where ../shared has it, else the busybox rootfs the suite builds. */
const tarballs = await testRootfs();
const runner = createRunner();
const fileLayer = (path: string): LayerSource => ({ digest: path, open: async () => createReadStream(path) });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'banger-rootfs-real-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('rootfs builder on real images', () => {
  it('turns a real rootfs tarball (Alpine 3.20 minirootfs, or busybox) into an ext4 identical to GNU tar extraction', async () => {
    const output = join(dir, 'real.ext4');
    const { report, sizeBytes } = await buildRootfs({
      layers: [fileLayer(tarballs.tarball)],
      output,
    });
    expect(sizeBytes).toBe(1024 ** 3);
    expect((await fsck(output)).exitCode).toBe(0);
    const plain = join(dir, 'real.tar');
    await runner.run(['sh', '-c', `gzip -dc "$0" > "$1"`, tarballs.tarball, plain]);
    expect(report.layers[0]).toMatchObject({ compression: 'gzip' });
    if (tarballs.kind === 'alpine') {
      expect(await compareWithGnuTar(plain, output, dir)).toBeGreaterThan(500);
      expect(await statOne(output, '/bin/sh')).toMatchObject({ type: 'symlink', linkTarget: '/bin/busybox' });
      expect(await statOne(output, '/etc/shadow')).toMatchObject({ mode: 0o640, uid: 0, gid: 42 });
      expect(report.entries.symlink).toBeGreaterThan(300);
    } else {
      expect(await compareWithGnuTar(plain, output, dir)).toBeGreaterThan(250);
      expect(await statOne(output, '/bin/sh')).toMatchObject({ type: 'symlink', linkTarget: 'busybox' });
      expect(await statOne(output, '/root')).toMatchObject({ mode: 0o700, uid: 0, gid: 0 });
      expect(report.entries.symlink).toBeGreaterThan(250);
    }
  });

  it('matches GNU tar on a layer with devices, FIFOs, hardlinks, setuid and xattrs', async () => {
    const entries: TarEntry[] = [
      { name: './', type: 'directory', mode: 0o755 },
      { name: './dev/', type: 'directory', mode: 0o755 },
      { name: './dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
      { name: './dev/loop300', type: 'block-device', mode: 0o660, gid: 6, devmajor: 7, devminor: 300 },
      { name: './dev/fifo', type: 'fifo', mode: 0o620, uid: 12 },
      { name: './bin/', type: 'directory', mode: 0o755 },
      { name: './bin/su', type: 'file', mode: 0o4755, content: 'su' },
      { name: './bin/su2', type: 'link', linkname: './bin/su' },
      { name: './bin/ping', type: 'file', mode: 0o755, content: 'ping', pax: { 'SCHILY.xattr.user.x': 'y' } },
      { name: './var/', type: 'directory', mode: 0o2775, gid: 50 },
      { name: './var/tmp/', type: 'directory', mode: 0o1777 },
      { name: './var/name with "quotes"', type: 'file', mode: 0o600, uid: 1001, gid: 1001, content: 'q' },
      { name: './lib', type: 'symlink', linkname: 'usr/lib' },
    ];
    const tarPath = join(dir, 'corpus.tar');
    await writeFile(tarPath, await packTar(entries));
    const output = join(dir, 'corpus.ext4');
    await buildRootfs({
      layers: [fileLayer(tarPath)],
      output,
      sizeBytes: 64 * 1024 * 1024,
    });
    expect((await fsck(output)).exitCode).toBe(0);
    expect(await compareWithGnuTar(tarPath, output, dir)).toBe(entries.length - 1);
  });

  it('matches GNU tar on a busybox-static image packed by GNU tar (PAX, xattrs, devices)', async () => {
    if (!existsSync('/bin/busybox'))
      throw new Error('this test needs /bin/busybox: apt-get install busybox-static');
    const tree = await mkdtemp(join(dir, 'bb-'));
    for (const sub of ['bin', 'etc/init.d', 'dev', 'tmp', 'root'])
      await mkdir(join(tree, sub), { recursive: true });
    await copyFile('/bin/busybox', join(tree, 'bin/busybox'));
    await chmod(join(tree, 'bin/busybox'), 0o4755);
    const applets = (await runner.run(['/bin/busybox', '--list'])).stdout.split('\n').filter(Boolean);
    for (const applet of applets)
      if (applet !== 'busybox') await symlink('busybox', join(tree, 'bin', applet));
    await link(join(tree, 'bin/busybox'), join(tree, 'bin/busybox.hardlink'));
    await writeFile(join(tree, 'etc/inittab'), '::sysinit:/etc/init.d/rcS\n');
    await writeFile(join(tree, 'etc/init.d/rcS'), '#!/bin/sh\nmount -t proc proc /proc\n', { mode: 0o755 });
    await chmod(join(tree, 'tmp'), 0o1777);
    await chmod(join(tree, 'root'), 0o700);
    await runner.run(['mknod', '-m', '600', join(tree, 'dev/console'), 'c', '5', '1']);
    await runner.run(['mkfifo', '-m', '644', join(tree, 'dev/initctl')]);
    await runner.run(['setfattr', '-n', 'user.banger', '-v', 'agent', join(tree, 'etc/inittab')]);
    const tarPath = join(dir, 'busybox.tar.zst');
    const plain = join(dir, 'busybox.tar');
    await runner.run([
      'tar',
      '--format=pax',
      '--numeric-owner',
      '--xattrs',
      '--xattrs-include=*',
      '-C',
      tree,
      '-cf',
      plain,
      '.',
    ]);
    await runner.run(['zstd', '-q', '-f', plain, '-o', tarPath]);
    const output = join(dir, 'busybox.ext4');
    const { report } = await buildRootfs({
      layers: [fileLayer(tarPath)],
      output,
      sizeBytes: 64 * 1024 * 1024,
    });
    expect((await fsck(output)).exitCode).toBe(0);
    expect(report.layers[0]).toMatchObject({ compression: 'zstd' });
    expect(await compareWithGnuTar(plain, output, dir)).toBeGreaterThan(applets.length);
    expect(report.kept).toMatchObject({ deviceNodes: 1, fifos: 1, xattrs: 1 });
  });

  it('builds as an unprivileged user (no root, no mount, no loop) with the right owners', async () => {
    const home = await mkdtemp(join(dir, 'nobody-'));
    await chown(home, 65534, 65534);
    await chmod(dir, 0o755);
    // The checkout may sit where uid 65534 cannot read (a 0700 home): the process loads its code as root,
    // then drops to 65534 before the build, and reads only what it finds in `home`.
    const layer = join(home, 'rootfs.tar.gz');
    await copyFile(tarballs.tarball, layer);
    await chown(layer, 65534, 65534);
    const script = join(dir, 'build-as-nobody.mts');
    const src = (p: string) => JSON.stringify(pathToFileURL(resolve(p)).href);
    await writeFile(
      script,
      `import { createReadStream } from 'node:fs';
import { buildRootfs } from ${src('src/rootfs/index.ts')};
import { Readable } from 'node:stream';
// A throw-away build as root first loads what the build loads lazily (tar-stream's PAX decoder)
// while the checkout is still readable.
await buildRootfs({
  layers: [{ open: async () => Readable.from([Buffer.alloc(1024)]) }],
  output: ${JSON.stringify(join(dir, 'warm-up.ext4'))},
  sizeBytes: 16 * 1024 * 1024,
});
process.setgroups([]);
process.setgid(65534);
process.setuid(65534);
if (process.getuid() !== 65534 || process.geteuid() !== 65534) throw new Error('not unprivileged');
process.chdir(${JSON.stringify(home)});
const r = await buildRootfs({
  layers: [{ open: async () => createReadStream(${JSON.stringify(layer)}) }],
  output: ${JSON.stringify(join(home, 'rootfs.ext4'))},
  assets: [{ kind: 'file', path: '/usr/local/bin/banger-agent', content: 'agent', mode: 0o755 },
           { kind: 'symlink', path: '/etc/runlevels/default/banger', target: '/etc/init.d/banger' }],
});
console.log(JSON.stringify({ uid: process.getuid(), size: r.sizeBytes }));
`,
    );
    const result = await runner.run([process.execPath, '--import', 'tsx', script], {
      env: { HOME: home, TMPDIR: home },
    });
    expect(JSON.parse(result.stdout.trim().split('\n').pop()!)).toMatchObject({ uid: 65534 });
    const image = join(home, 'rootfs.ext4');
    expect((await lstat(image)).uid).toBe(65534);
    expect((await fsck(image)).exitCode).toBe(0);
    const img = await statImage(image, [
      '/',
      '/bin/busybox',
      ...(tarballs.kind === 'alpine' ? ['/etc/shadow'] : []),
      '/root',
      '/usr/local/bin/banger-agent',
      '/etc/runlevels/default/banger',
      '/tmp',
    ]);
    expect(img.get('/')).toMatchObject({ uid: 0, gid: 0, mode: 0o755 });
    expect(img.get('/bin/busybox')).toMatchObject({ uid: 0, gid: 0, mode: 0o755 });
    expect(img.get('/root')).toMatchObject({ uid: 0, gid: 0, mode: 0o700 });
    if (tarballs.kind === 'alpine')
      expect(img.get('/etc/shadow')).toMatchObject({ uid: 0, gid: 42, mode: 0o640 });
    expect(img.get('/tmp')).toMatchObject({ uid: 0, mode: 0o1777 });
    expect(img.get('/usr/local/bin/banger-agent')).toMatchObject({ uid: 0, mode: 0o755 });
    expect(img.get('/etc/runlevels/default/banger')).toMatchObject({
      type: 'symlink',
      uid: 0,
      linkTarget: '/etc/init.d/banger',
    });
    // Written in place: no staging tree and no temporary image is left beside it.
    expect((await readdir(home)).filter((n) => n.startsWith('rootfs.ext4.tmp-'))).toEqual([]);
  });

  it('injects guest assets into an existing image without mounting it', async () => {
    const tree = join(dir, 'plain');
    await mkdir(join(tree, 'etc'), { recursive: true });
    await writeFile(join(tree, 'etc/hostname'), 'old\n');
    await mkdir(join(tree, 'etc/rc.d/init.d'), { recursive: true });
    await symlink('rc.d/init.d', join(tree, 'etc/init.d'));
    const image = join(dir, 'plain.ext4');
    await runner.run(['truncate', '-s', '32M', image]);
    await runner.run(['mkfs.ext4', '-q', '-F', '-d', tree, image]);
    const hostFile = join(dir, 'agent.bin');
    await writeFile(hostFile, Buffer.from([0, 1, 2, 255]));
    await injectAssets(image, [
      { kind: 'file', path: '/etc/hostname', content: 'new\n', mode: 0o600, uid: 1 },
      { kind: 'dir', path: '/opt/banger', mode: 0o750, uid: 5, gid: 5 },
      { kind: 'dir', path: '/etc/init.d', mode: 0o755 },
      { kind: 'file', path: '/etc/init.d/banger-agent', content: 'rc\n', mode: 0o755 },
      // A symlink under a symlinked parent, like /sbin/banger-init on a merged-/usr image.
      { kind: 'symlink', path: '/etc/init.d/banger-link', target: '/opt/banger/unit' },
      { kind: 'file', path: '/opt/banger/bin/agent', content: { hostPath: hostFile }, mode: 0o755 },
      { kind: 'file', path: '/opt/banger/we "ird" name', content: Buffer.from('w'), mode: 0o644 },
      {
        kind: 'symlink',
        path: '/etc/systemd/system/multi-user.target.wants/banger.service',
        target: '/opt/banger/unit',
      },
    ]);
    expect((await fsck(image)).exitCode).toBe(0);
    const img = await statImage(image, [
      '/etc/hostname',
      '/opt/banger',
      '/opt/banger/bin',
      '/opt/banger/bin/agent',
      '/etc/systemd/system/multi-user.target.wants/banger.service',
    ]);
    expect(img.get('/etc/hostname')).toMatchObject({ mode: 0o600, uid: 1 });
    expect(img.get('/opt/banger')).toMatchObject({ type: 'directory', mode: 0o750, uid: 5, gid: 5 });
    expect(img.get('/opt/banger/bin')).toMatchObject({ type: 'directory', mode: 0o755, uid: 0 });
    expect(img.get('/opt/banger/bin/agent')).toMatchObject({ mode: 0o755, uid: 0, size: 4 });
    expect(img.get('/etc/systemd/system/multi-user.target.wants/banger.service')).toMatchObject({
      type: 'symlink',
      linkTarget: '/opt/banger/unit',
    });
    expect((await readImageFile(image, '/etc/hostname')).toString()).toBe('new\n');
    expect(await statOne(image, '/etc/init.d')).toMatchObject({ type: 'symlink', linkTarget: 'rc.d/init.d' });
    expect((await readImageFile(image, '/etc/rc.d/init.d/banger-agent')).toString()).toBe('rc\n');
    expect(await statOne(image, '/etc/rc.d/init.d/banger-link')).toMatchObject({
      type: 'symlink',
      linkTarget: '/opt/banger/unit',
    });
    expect(await readImageFile(image, '/opt/banger/bin/agent')).toEqual(Buffer.from([0, 1, 2, 255]));
    expect((await readImageFile(image, '/opt/banger/we "ird" name')).toString()).toBe('w');
    // Injecting again replaces the files in place and stays clean.
    await injectAssets(image, [{ kind: 'file', path: '/etc/hostname', content: 'again\n', mode: 0o644 }]);
    expect((await readImageFile(image, '/etc/hostname')).toString()).toBe('again\n');
    expect((await fsck(image)).exitCode).toBe(0);
  });
});
