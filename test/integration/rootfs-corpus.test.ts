import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import { BangerError } from '../../src/model/errors.js';
import type { ProgressEvent } from '../../src/model/progress.js';
import { type BuildRootfsOptions, buildRootfs, writeFidelityReport } from '../../src/rootfs/index.js';
import { fsck, readImageFile, readImageXattr, statImage, statOne } from '../fixtures/ext4-reader.js';
import { layerOf, packTar, type TarEntry, tarLayer } from '../fixtures/layers.js';

// security.capability v2 granting cap_net_raw (bit 13), as setcap writes it for ping.
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'banger-rootfs-corpus-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function build(layers: BuildRootfsOptions['layers'], extra: Partial<BuildRootfsOptions> = {}) {
  const output = join(dir, 'out.ext4');
  const before = await readdir(dir);
  const result = await buildRootfs({ layers, output, sizeBytes: 96 * 1024 * 1024, ...extra });
  // No staging tree, no temporary image: the output is all the build adds.
  expect((await readdir(dir)).sort()).toEqual([...before, 'out.ext4'].sort());
  const check = await fsck(output);
  expect(check.exitCode, check.output).toBe(0);
  return { output, result };
}

const f = (name: string, content: string, extra: Partial<TarEntry> = {}): TarEntry => ({
  name,
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  content,
  ...extra,
});
const d = (name: string, extra: Partial<TarEntry> = {}): TarEntry => ({
  name,
  type: 'directory',
  mode: 0o755,
  uid: 0,
  gid: 0,
  ...extra,
});

describe('rootfs fidelity corpus', () => {
  it('keeps every entry type, owner, special mode, xattr and device number across layers', async () => {
    const layer1 = await tarLayer(
      [
        d('./'),
        d('./etc'),
        f('./etc/passwd', 'root:x:0:0::/root:/bin/sh\n'),
        f('./etc/shadow', 'root:*::0:::::\n', { mode: 0o640, gid: 42 }),
        d('./usr', {}),
        d('./usr/bin'),
        f('./usr/bin/sudo', 'ELF sudo', { mode: 0o4755 }),
        f('./usr/bin/wall', 'ELF wall', { mode: 0o2755, gid: 5 }),
        f('./usr/bin/ping', 'ELF ping', {
          mode: 0o755,
          pax: { 'SCHILY.xattr.security.capability': CAP_NET_RAW.toString('latin1') },
        }),
        f('./usr/bin/perl', 'ELF perl'),
        { name: './usr/bin/perl5.36.0', type: 'link', linkname: './usr/bin/perl' },
        d('./tmp', { mode: 0o1777 }),
        d('./home'),
        d('./home/user', { uid: 1000, gid: 1000, mode: 0o700 }),
        f('./home/user/notes', 'mine', {
          uid: 1000,
          gid: 1000,
          mode: 0o600,
          pax: { 'SCHILY.xattr.user.comment': 'hello' },
        }),
        { name: './bin', type: 'symlink', linkname: 'usr/bin' },
        { name: './sh', type: 'symlink', linkname: '/usr/bin/sudo' },
        d('./dev'),
        { name: './dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
        { name: './dev/sda', type: 'block-device', mode: 0o660, gid: 6, devmajor: 8, devminor: 0 },
        { name: './dev/initctl', type: 'fifo', mode: 0o600 },
        d('./opt'),
        d('./opt/data'),
        f('./opt/data/old.txt', 'old'),
        d('./opt/data/sub'),
        f('./opt/data/sub/old2', 'old2'),
        f('./etc/junk', 'junk'),
        f('./etc/replaced-by-dir', 'file'),
        // ustar holds 7 octal digits; bigger ids travel in PAX records, as GNU tar --format=pax writes them.
        f('./big-uid', 'x', { pax: { uid: '3000000', gid: '70000' } }),
      ],
      'gzip',
      'sha256:l1',
    );
    const deep = Array.from({ length: 40 }, (_, i) => `d${i}`).join('/');
    const long = 'L'.repeat(255);
    const layer2 = await tarLayer(
      [
        f('./opt/data/new.txt', 'new'),
        // The opaque marker comes after a sibling from the same layer: that sibling must survive.
        { name: './opt/data/.wh..wh..opq', type: 'file', content: '' },
        f('./etc/.wh.junk', ''),
        d('./etc/replaced-by-dir'),
        f('./etc/replaced-by-dir/inside', 'inside'),
        { name: './usr/bin/perl-hardlink2', type: 'link', linkname: 'usr/bin/perl' },
        f(`./${deep}/bottom`, 'deep'),
        f(`./${long}`, 'long name'),
        f('./ünïcødé-名前', 'unicode'),
        f('./etc/dup', 'first'),
        f('./etc/dup', 'second'),
      ],
      'zstd',
      'sha256:l2',
    );

    const { output, result } = await build([layer1, layer2]);
    const paths = [
      '/',
      '/etc/passwd',
      '/etc/shadow',
      '/usr/bin/sudo',
      '/usr/bin/wall',
      '/usr/bin/ping',
      '/usr/bin/perl',
      '/usr/bin/perl5.36.0',
      '/usr/bin/perl-hardlink2',
      '/tmp',
      '/home/user',
      '/home/user/notes',
      '/bin',
      '/sh',
      '/dev/null',
      '/dev/sda',
      '/dev/initctl',
      '/opt/data/old.txt',
      '/opt/data/sub',
      '/opt/data/new.txt',
      '/etc/junk',
      '/etc/replaced-by-dir',
      '/etc/replaced-by-dir/inside',
      `/${deep}/bottom`,
      `/${long}`,
      '/ünïcødé-名前',
      '/big-uid',
      '/opt/data/.wh..wh..opq',
      '/etc/.wh.junk',
    ];
    const img = await statImage(output, paths);

    expect(img.get('/')).toMatchObject({ type: 'directory', mode: 0o755, uid: 0, gid: 0 });
    expect(img.get('/etc/shadow')).toMatchObject({ type: 'regular', mode: 0o640, uid: 0, gid: 42 });
    expect(img.get('/usr/bin/sudo')).toMatchObject({ mode: 0o4755, uid: 0 });
    expect(img.get('/usr/bin/wall')).toMatchObject({ mode: 0o2755, gid: 5 });
    expect(img.get('/tmp')).toMatchObject({ type: 'directory', mode: 0o1777 });
    expect(img.get('/home/user')).toMatchObject({ mode: 0o700, uid: 1000, gid: 1000 });
    expect(img.get('/home/user/notes')).toMatchObject({
      mode: 0o600,
      uid: 1000,
      gid: 1000,
      xattrs: ['user.comment'],
    });
    expect(await readImageXattr(output, '/usr/bin/ping', 'security.capability')).toEqual(CAP_NET_RAW);
    expect(img.get('/big-uid')).toMatchObject({ uid: 3_000_000, gid: 70_000 });
    // Hardlinks within and across layers share one inode.
    expect(img.get('/usr/bin/perl')?.links).toBe(3);
    expect(img.get('/usr/bin/perl5.36.0')?.links).toBe(3);
    expect(img.get('/bin')).toMatchObject({ type: 'symlink', linkTarget: 'usr/bin' });
    expect(img.get('/sh')).toMatchObject({ type: 'symlink', linkTarget: '/usr/bin/sudo' });
    expect(img.get('/dev/null')).toMatchObject({ type: 'character special', mode: 0o666, device: [1, 3] });
    expect(img.get('/dev/sda')).toMatchObject({ type: 'block special', mode: 0o660, gid: 6, device: [8, 0] });
    expect(img.get('/dev/initctl')).toMatchObject({ type: 'FIFO', mode: 0o600 });
    // Whiteouts: the file is gone, the opaque dir kept only this layer's entry, markers are not files.
    expect(img.has('/etc/junk')).toBe(false);
    expect(img.has('/opt/data/old.txt')).toBe(false);
    expect(img.has('/opt/data/sub')).toBe(false);
    expect(img.has('/opt/data/.wh..wh..opq')).toBe(false);
    expect(img.has('/etc/.wh.junk')).toBe(false);
    expect(img.get('/opt/data/new.txt')).toMatchObject({ type: 'regular' });
    expect(img.get('/etc/replaced-by-dir')).toMatchObject({ type: 'directory' });
    expect(img.get(`/${deep}/bottom`)).toMatchObject({ type: 'regular' });
    expect(img.get(`/${long}`)).toMatchObject({ type: 'regular' });
    expect((await readImageFile(output, '/ünïcødé-名前')).toString()).toBe('unicode');
    expect((await readImageFile(output, '/etc/dup')).toString()).toBe('second');
    expect((await readImageFile(output, '/usr/bin/perl-hardlink2')).toString()).toBe('ELF perl');

    const { report } = result;
    expect(report.layers.map((l) => l.compression)).toEqual(['gzip', 'zstd']);
    expect(report.whiteouts).toEqual({ files: 1, opaqueDirs: 1 });
    expect(report.kept).toMatchObject({ deviceNodes: 2, fifos: 1, xattrs: 2, setuidSetgidSticky: 3 });
    expect(report.entries.hardlink).toBe(2);
  });

  it('writes hostile names with spaces, quotes, tabs and debugfs syntax exactly, without running them', async () => {
    const names = [
      'a b',
      'q"uote',
      'two""quotes',
      'tab\there',
      '<12>',
      '#hash',
      'semi;colon',
      'back\\slash',
      "single'quote",
      '-dash',
      'x" uid 0 "y',
    ];
    const layer = await tarLayer([
      d('./h'),
      f('./victim', 'v', { mode: 0o600, uid: 7 }),
      d('./dev'),
      ...names.map(
        (n): TarEntry => ({
          name: `./dev/${n}`,
          type: 'character-device',
          mode: 0o620,
          gid: 5,
          devmajor: 4,
          devminor: 1,
        }),
      ),
      ...names.map((n) =>
        f(`./h/${n}`, n, { mode: 0o4750, uid: 1234, gid: 99, pax: { 'SCHILY.xattr.user.name': n } }),
      ),
    ]);
    const { output } = await build([layer]);
    const img = await statImage(output, [...names.map((n) => `/h/${n}`), '/victim']);
    for (const n of names) {
      expect(img.get(`/h/${n}`), n).toMatchObject({
        type: 'regular',
        mode: 0o4750,
        uid: 1234,
        gid: 99,
        xattrs: ['user.name'],
      });
      expect((await readImageXattr(output, `/h/${n}`, 'user.name')).toString()).toBe(n);
    }
    expect(img.get('/victim')).toMatchObject({ mode: 0o600, uid: 7 });
    const devs = await statImage(
      output,
      names.map((n) => `/dev/${n}`),
    );
    for (const n of names)
      expect(devs.get(`/dev/${n}`), n).toMatchObject({
        type: 'character special',
        mode: 0o620,
        gid: 5,
        device: [4, 1],
      });
  });

  it('refuses a name with a newline and says which', async () => {
    const layer = await tarLayer([f('./evil\nsif / uid 666', 'x')]);
    const err = await build([layer]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BangerError);
    expect((err as BangerError).code).toBe('bad_request');
    expect((err as BangerError).message).toContain('newline');
    expect((err as BangerError).message).toContain('evil');
    expect(await readdir(dir)).toEqual([]);
  });

  it('reads zstd layers made with a long window, and reports its stages in order', async () => {
    const tar = await packTar([f('./etc/os-release', 'ID=test\n'), f('./big', 'z'.repeat(1 << 20))]);
    const input = join(dir, 'layer.tar');
    await writeFile(input, tar);
    // Streamed from stdin, zstd keeps the 1 GiB window in the frame header: the default decoder refuses it.
    await createRunner().run(['sh', '-c', `zstd -q --long=30 -c < '${input}' > '${input}.zst'`]);
    const bytes = await readFile(`${input}.zst`);
    const events: ProgressEvent[] = [];
    const { output, result } = await build([layerOf(bytes, 'sha256:long')], {
      progress: (e) => events.push(e),
    });
    expect(result.report.layers[0]).toMatchObject({ compression: 'zstd' });
    expect((await readImageFile(output, '/etc/os-release')).toString()).toBe('ID=test\n');
    const stages = events.flatMap((e) => (e.kind === 'stage' ? [e.stage] : []));
    expect(stages).toEqual(['flatten', 'write']);
    expect(
      events.some((e) => e.kind === 'bytes' && e.item === 'sha256:long' && e.done === bytes.length),
    ).toBe(true);
  });

  it("adds guest assets through the image's own symlinked directories and stores the report", async () => {
    const layer = await tarLayer([
      d('./etc'),
      d('./etc/rc.d'),
      d('./etc/rc.d/init.d'),
      { name: './etc/init.d', type: 'symlink', linkname: 'rc.d/init.d' },
    ]);
    const { output, result } = await build([layer], {
      assets: [
        { kind: 'dir', path: '/etc/init.d', mode: 0o755 },
        { kind: 'file', path: '/etc/init.d/banger-agent', content: '#!/bin/sh\n', mode: 0o755 },
        {
          kind: 'file',
          path: '/usr/local/bin/banger-agent',
          content: Buffer.from([0x7f, 0x45]),
          mode: 0o755,
          uid: 0,
        },
      ],
    });
    const img = await statImage(output, [
      '/etc/init.d',
      '/etc/rc.d/init.d/banger-agent',
      '/usr/local/bin/banger-agent',
    ]);
    expect(img.get('/etc/init.d')).toMatchObject({ type: 'symlink', linkTarget: 'rc.d/init.d' });
    expect(img.get('/etc/rc.d/init.d/banger-agent')).toMatchObject({ type: 'regular', mode: 0o755, uid: 0 });
    expect(img.get('/usr/local/bin/banger-agent')).toMatchObject({ type: 'regular', size: 2 });
    expect(result.report.injectedAssets).toBe(3);
    const reportPath = join(dir, 'report.json');
    await writeFidelityReport(reportPath, result.report);
    expect(JSON.parse(await readFile(reportPath, 'utf8'))).toEqual(JSON.parse(JSON.stringify(result.report)));
  });

  it('ignores whiteouts under directories that do not exist instead of creating them', async () => {
    const layer = await tarLayer([
      f('./.wh.nothing', ''),
      f('./ghost/dir/.wh.x', ''),
      f('./ghost2/.wh..wh..opq', ''),
      f('./kept', 'k'),
    ]);
    const { output, result } = await build([layer]);
    const img = await statImage(output, ['/ghost', '/ghost2', '/kept']);
    expect([...img.keys()]).toEqual(['/kept']);
    expect(result.report.adjusted).toEqual([]);
  });

  it('keeps the root entry of umoci-style layers and applies its metadata', async () => {
    const layer = await tarLayer([
      { name: '/', type: 'directory', mode: 0o700, uid: 0, gid: 0 },
      f('etc/hostname', 'x'),
    ]);
    const { output } = await build([layer]);
    expect(await statOne(output, '/')).toMatchObject({ mode: 0o700 });
  });
});
