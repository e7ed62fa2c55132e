import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BangerError } from '../../src/model/errors.js';
import type { LayerSource } from '../../src/model/layer.js';
import { type BuildRootfsOptions, buildRootfs, DEFAULT_LIMITS } from '../../src/rootfs/index.js';
import { fsck, readImageFile, statOne } from '../fixtures/ext4-reader.js';
import { layerOf, packTar, type TarEntry, tarLayer } from '../fixtures/layers.js';

let dir: string;
let hostDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'banger-rootfs-hostile-'));
  hostDir = await mkdtemp(join(tmpdir(), 'banger-host-victim-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(hostDir, { recursive: true, force: true });
});

const output = () => join(dir, 'out.ext4');

/** A build that succeeds must leave an image e2fsck -fn finds clean (the build itself no longer runs it). */
async function build(layers: LayerSource[], extra: Partial<BuildRootfsOptions> = {}) {
  const result = await buildRootfs({ layers, output: output(), sizeBytes: 64 * 1024 * 1024, ...extra });
  const check = await fsck(output());
  expect(check.exitCode, check.output).toBe(0);
  return result;
}

/** The build failed with this code, left no image and no staging behind, and wrote nothing on the host. */
async function expectRefused(promise: Promise<unknown>, code: string, message: RegExp) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BangerError);
  expect((err as BangerError).code).toBe(code);
  expect((err as BangerError).message).toMatch(message);
  expect(await readdir(dir)).toEqual([]);
  expect(await readdir(hostDir)).toEqual([]);
  return err as BangerError;
}

const f = (name: string, content = 'x', extra: Partial<TarEntry> = {}): TarEntry => ({
  name,
  type: 'file',
  mode: 0o644,
  content,
  ...extra,
});

describe('rootfs builder against hostile layers', () => {
  it('never follows a layer symlink onto the host: etc -> /etc then etc/passwd', async () => {
    const before = await stat('/etc/passwd');
    const layer = await tarLayer([
      { name: 'etc', type: 'symlink', linkname: '/etc' },
      f('etc/passwd', 'pwned'),
    ]);
    await expectRefused(build([layer]), 'bad_request', /too many symlinks/);
    const after = await stat('/etc/passwd');
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.size).toBe(before.size);
  });

  it('resolves a symlink to a host path inside the image, never on the host', async () => {
    const layer = await tarLayer([
      { name: 'evil', type: 'symlink', linkname: hostDir },
      f('evil/pwned', 'inside'),
      { name: 'up', type: 'symlink', linkname: '../../../../../..' },
      f(`up${hostDir}/also`, 'inside too'),
    ]);
    await build([layer]);
    expect(await readdir(hostDir)).toEqual([]);
    expect((await readImageFile(output(), `${hostDir}/pwned`)).toString()).toBe('inside');
    expect((await readImageFile(output(), `${hostDir}/also`)).toString()).toBe('inside too');
    expect(await statOne(output(), '/evil')).toMatchObject({ type: 'symlink', linkTarget: hostDir });
    expect((await fsck(output())).exitCode).toBe(0);
  });

  it.each([
    ['../escape', /contains "\.\."/],
    ['a/../../b', /contains "\.\."/],
    ['/etc/abs', /is absolute/],
  ])('refuses the entry name %s', async (name, message) => {
    await expectRefused(build([await tarLayer([f(name)])]), 'bad_request', message);
  });

  /** A relative path of exactly `bytes` bytes: 199-byte directory names, then the rest as the last name. */
  function pathOf(bytes: number, prefix = ''): string {
    let p = prefix;
    while (Buffer.byteLength(p) + 200 < bytes) p += `${'d'.repeat(199)}/`;
    return p + 'f'.repeat(bytes - Buffer.byteLength(p));
  }

  // e2fsprogs 1.47.0's mkfs.ext4 -d aborts (heap corruption) on a staged path of exactly 2039 bytes; banger
  // stops at 1900, before any tool sees the path.
  it('builds a 1900-byte path and refuses a 2039-byte one by name, before anything is written', async () => {
    const ok = pathOf(1900);
    await build([await tarLayer([f(ok, 'deep')])]);
    expect((await readImageFile(output(), `/${ok}`)).toString()).toBe('deep');
    await rm(output());
    const long = pathOf(2039);
    const err = await expectRefused(
      build([await tarLayer([f(long)])]),
      'bad_request',
      /longer than 1900 bytes/,
    );
    expect(err.message).toContain(JSON.stringify(long));
  });

  it('refuses a short name that lands at a 2039-byte path through a symlink', async () => {
    const deepDir = pathOf(1800, 'x/');
    const name = 'n'.repeat(2039 - 1800 - 1);
    const layer = await tarLayer([
      f(`${deepDir}/keep`),
      { name: 'l', type: 'symlink', linkname: `/${deepDir}` },
      f(`l/${name}`),
    ]);
    const err = await expectRefused(
      build([layer]),
      'bad_request',
      /2039 bytes long, over the 1900-byte limit/,
    );
    expect(err.message).toContain(`"/${deepDir}/${name}"`);
  });

  // Every number a layer's PAX records (or header) carry is checked before use: none reaches lchown,
  // utimes or debugfs as a raw RangeError/EINVAL, and none is silently misread.
  const victim = (pax: Record<string, string>): TarEntry => f('victim', 'x', { pax });
  const device = (extra: Partial<TarEntry>): TarEntry => ({
    name: 'dev',
    type: 'character-device',
    mode: 0o600,
    devmajor: 1,
    devminor: 3,
    ...extra,
  });
  it.each<[string, TarEntry, RegExp]>([
    [
      'uid=-5',
      victim({ uid: '-5' }),
      /layer entry \/victim has PAX uid "-5": not a non-negative whole number$/,
    ],
    ['uid=4294967295', victim({ uid: '4294967295' }), /PAX uid "4294967295": outside 0\.\.4294967294/],
    ['gid=1.5', victim({ gid: '1.5' }), /PAX gid "1\.5": not a non-negative whole number/],
    ['gid=NaN', victim({ gid: 'NaN' }), /PAX gid "NaN": not a non-negative whole number/],
    ['uid=1e3', victim({ uid: '1e3' }), /PAX uid "1e3": not a non-negative whole number/],
    ['size=1e0', victim({ size: '1e0' }), /PAX size "1e0": not a non-negative whole number/],
    ['mtime=1e300', victim({ mtime: '1e300' }), /PAX mtime "1e300": not a decimal number of seconds/],
    [
      'mtime=99999999999999',
      victim({ mtime: '99999999999999' }),
      /PAX mtime "99999999999999": outside what ext4/,
    ],
    ['mtime=-3000000000', victim({ mtime: '-3000000000' }), /PAX mtime "-3000000000": outside what ext4/],
    ['atime=x', victim({ atime: 'x' }), /PAX atime "x": not a decimal number of seconds/],
    ['ctime=Infinity', victim({ ctime: 'Infinity' }), /PAX ctime "Infinity": not a decimal/],
    [
      'SCHILY.devmajor=5000',
      device({ pax: { 'SCHILY.devmajor': '5000' } }),
      /layer entry \/dev has PAX devmajor "5000": outside 0\.\.4095$/,
    ],
    [
      'SCHILY.devminor=-1',
      device({ pax: { 'SCHILY.devminor': '-1' } }),
      /PAX devminor "-1": not a non-negative/,
    ],
    [
      'header devminor 100000',
      device({ devminor: 100_000 }),
      /layer entry \/dev has devminor "100000": outside 0\.\.65535$/,
    ],
  ])('refuses a layer whose entry has %s, naming the entry and field', async (_what, entry, message) => {
    const err = await expectRefused(build([await tarLayer([f('before'), entry])]), 'bad_request', message);
    expect(err.hint).toContain('malformed or hostile');
  });

  it('keeps sane PAX numbers: ids too big for ustar, fractional and negative times, SCHILY device numbers', async () => {
    const layer = await tarLayer([
      victim({ uid: '3000001', gid: '70000', mtime: '1700000000.75', atime: '-1.5', ctime: '0' }),
      device({ pax: { 'SCHILY.devmajor': '4095', 'SCHILY.devminor': '65535' } }),
    ]);
    await build([layer]);
    expect(await statOne(output(), '/victim')).toMatchObject({
      uid: 3000001,
      gid: 70000,
      mtime: 1700000000,
    });
    expect(await statOne(output(), '/dev')).toMatchObject({
      type: 'character special',
      device: [4095, 65535],
    });
    expect((await fsck(output())).exitCode).toBe(0);
  });

  it.each([
    ['missing', /not in this or an earlier layer/],
    ['../../etc/passwd', /points outside the image/],
    ['/etc/passwd', /points outside the image/],
  ])('refuses a hardlink to %s', async (target, message) => {
    const layer = await tarLayer([f('present'), { name: 'link', type: 'link', linkname: target }]);
    await expectRefused(build([layer]), 'bad_request', message);
  });

  it.each<[string, TarEntry[], RegExp]>([
    [
      'a symlink target longer than ext4 keeps',
      [{ name: 'long', type: 'symlink', linkname: `${'t/'.repeat(2100)}x` }],
      /\/long: a symlink target must be 1\.\.4095 bytes, not 4201/,
    ],
    [
      'xattrs larger than one block',
      [
        f('fat', 'x', {
          pax: { 'SCHILY.xattr.user.a': 'a'.repeat(3000), 'SCHILY.xattr.user.b': 'b'.repeat(3000) },
        }),
      ],
      /\/fat: its xattrs take \d+ bytes, more than one 4096-byte block holds/,
    ],
    ['a lost+found that is no directory', [f('lost+found', 'x')], /\/lost\+found must be a directory/],
  ])('refuses what ext4 cannot hold: %s', async (_what, entries, message) => {
    await expectRefused(build([await tarLayer(entries)]), 'bad_request', message);
  });

  it('refuses more hard links to one file than ext4 counts', async () => {
    const entries: TarEntry[] = [f('target', 'x')];
    for (let i = 0; i < 65_000; i++) entries.push({ name: `l${i}`, type: 'link', linkname: 'target' });
    await expectRefused(
      build([await tarLayer(entries)]),
      'bad_request',
      /\/l64999: more than 65000 hard links/,
    );
  });

  it('refuses a corrupt tar header and bytes that are no tar at all', async () => {
    const tar = await packTar([f('a', 'hello'), f('b', 'world')]);
    tar.writeUInt8(tar.readUInt8(512 + 512 + 10) ^ 0xff, 512 + 512 + 10); // second header's name, so its checksum no longer matches
    await expectRefused(build([layerOf(tar)]), 'bad_request', /not a readable tar layer.*Invalid tar header/);
    await expectRefused(
      build([layerOf(gzipSync(Buffer.alloc(2048, 7)))]),
      'bad_request',
      /not a readable tar layer/,
    );
  });

  it('tolerates a final entry without padding or end blocks (umoci#436) but not truncated data', async () => {
    const tar = await packTar([f('etc/hostname', 'twelve bytes')]);
    // One header and 12 data bytes, as umoci insert writes it: 524 bytes.
    const quirky = tar.subarray(0, 512 + 12);
    const { report } = await build([layerOf(quirky, 'sha256:quirky')]);
    expect((await readImageFile(output(), '/etc/hostname')).toString()).toBe('twelve bytes');
    expect(report.adjusted.some((a) => a.path === 'sha256:quirky' && /tolerated/.test(a.what))).toBe(true);
    await rm(output());
    await expectRefused(
      build([layerOf(tar.subarray(0, 512 + 6))]),
      'bad_request',
      /not a readable tar layer/,
    );
  });

  it('enforces the entry, size, layer and decompression limits with clear errors', async () => {
    const many = await tarLayer(Array.from({ length: 20 }, (_, i) => f(`f${i}`)));
    await expectRefused(
      build([many], { limits: { ...DEFAULT_LIMITS, maxEntries: 10 } }),
      'bad_request',
      /more than 10 entries/,
    );
    const big = await tarLayer([f('big', 'y'.repeat(100_000))]);
    await expectRefused(
      build([big], { limits: { ...DEFAULT_LIMITS, maxUnpackedBytes: 50_000 } }),
      'bad_request',
      /unpacks to more than 50000 bytes/,
    );
    await expectRefused(
      build([big, big, big], { limits: { ...DEFAULT_LIMITS, maxLayers: 2 } }),
      'bad_request',
      /3 layers; the limit is 2/,
    );
    // A gzip bomb: 256 MiB of zeros in a ~256 KiB layer. It fails once the decompressed stream passes
    // the cap, without writing 256 MiB anywhere.
    const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024));
    await expectRefused(
      build([layerOf(bomb)], { limits: { maxLayers: 4, maxEntries: 10, maxUnpackedBytes: 1024 * 1024 } }),
      'bad_request',
      /decompresses to more than|not a readable tar layer|unpacks to more than/,
    );
  });

  it('stops on an aborted signal and cleans up', async () => {
    const controller = new AbortController();
    const chunk = await packTar([f('first', 'z'.repeat(4096))]);
    const layer: LayerSource = {
      open: async () =>
        Readable.from(
          (async function* () {
            yield chunk.subarray(0, 2048);
            controller.abort();
            await new Promise(() => {}); // a stalled registry: only the abort ends this
          })(),
        ),
    };
    await expectRefused(build([layer], { signal: controller.signal }), 'cancelled', /cancelled/);
    await expectRefused(build([layer], { signal: AbortSignal.abort() }), 'cancelled', /cancelled/);
    // Aborted once mkfs is about to run: the half-made image file goes too.
    const late = new AbortController();
    const small = await tarLayer([f('a')]);
    await expectRefused(
      build([small], {
        signal: late.signal,
        progress: (e) => {
          if (e.kind === 'stage' && e.stage === 'write') late.abort();
        },
      }),
      'cancelled',
      /cancelled/,
    );
  });
});
