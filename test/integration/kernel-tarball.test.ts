/**
 * Catalog tarball entries against a local HTTP server on 127.0.0.1: a good bundle installs; a bad digest,
 * a short download, a connection cut mid-body, traversal, absolute paths, escaping symlinks (by spelling,
 * or only on disk through another link) and special files are refused with a clear error and leave nothing
 * in the store; an unknown name lists the catalog.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { createRunner } from '../../src/host/index.js';
import { createKernelManager, type KernelManager } from '../../src/kernel/index.js';

type Member = { name: string; type?: tarStream.Header['type']; data?: string | Buffer; linkname?: string };

/** A minimal 64-bit ELF header: enough for banger to treat the file as a vmlinux. */
const FAKE_VMLINUX = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(57)]);
const CONFIG =
  'CONFIG_VIRTIO_BLK=y\nCONFIG_VIRTIO_NET=y\nCONFIG_EXT4_FS=y\nCONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\n';

async function bundle(members: Member[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const m of members) {
    const type = m.type ?? 'file';
    const data = m.data === undefined ? undefined : Buffer.from(m.data);
    const header = { name: m.name, type, linkname: m.linkname, mode: type === 'directory' ? 0o755 : 0o644 };
    pack.entry(header, data ?? '');
  }
  pack.finalize();
  await done;
  return compress(Buffer.concat(chunks));
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('kernel pull from tarball catalog entries', () => {
  let server: Server;
  let base: string;
  let work: string;
  const files = new Map<string, Buffer>();
  const entries: object[] = [];

  async function addEntry(
    name: string,
    members: Member[],
    tweak: Record<string, unknown> = {},
  ): Promise<void> {
    const body = await bundle(members);
    files.set(`/${name}.tar.zst`, body);
    entries.push({
      name,
      kind: 'tarball',
      distro: 'test',
      arch: 'x86_64',
      kernelVersion: '6.12.0-test',
      url: `${base}/${name}.tar.zst`,
      sha256: sha256(body),
      sizeBytes: body.length,
      description: `test bundle ${name}`,
      ...tweak,
    });
  }

  function manager(store: string): KernelManager {
    return createKernelManager({
      kernelsDir: join(work, store),
      runner: createRunner(),
      catalogOverride: join(work, 'catalog.json'),
    });
  }

  /** Nothing was installed and no staging directory was left behind. */
  async function expectEmptyStore(store: string): Promise<void> {
    const dir = join(work, store);
    const left = existsSync(dir) ? await readdir(dir) : [];
    expect(left).toEqual([]);
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'banger-kernel-tarball-'));
    server = createServer((req, res) => {
      const body = files.get(req.url ?? '');
      if (req.url === '/cut.tar.zst') {
        const full = files.get('/good.tar.zst') as Buffer;
        res.writeHead(200, { 'content-length': full.length });
        res.write(full.subarray(0, Math.floor(full.length / 2)), () => res.destroy());
        return;
      }
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const good: Member[] = [
      { name: 'vmlinux', data: FAKE_VMLINUX },
      { name: 'config', data: CONFIG },
      { name: 'modules/', type: 'directory' },
      { name: 'modules/kernel/extra.ko', data: 'not really a module' },
      { name: 'modules/build', type: 'symlink', linkname: 'kernel' },
    ];
    await addEntry('good', good);
    await addEntry('badsha', good, { sha256: 'f'.repeat(64) });
    await addEntry('short', good);
    (entries.at(-1) as { sizeBytes: number }).sizeBytes += 100;
    await addEntry('cut', good);
    (entries.at(-1) as { sha256: string }).sha256 = sha256(files.get('/good.tar.zst') as Buffer);
    (entries.at(-1) as { sizeBytes: number }).sizeBytes = (files.get('/good.tar.zst') as Buffer).length;
    await addEntry('traversal', [
      { name: 'vmlinux', data: FAKE_VMLINUX },
      { name: '../../escape', data: 'x' },
    ]);
    await addEntry('absolute', [{ name: '/etc/evil', data: 'x' }]);
    await addEntry('symlink-out', [{ name: 'modules', type: 'symlink', linkname: '../../..' }]);
    await addEntry('through-link', [
      { name: 'sub', type: 'directory' },
      { name: 'link', type: 'symlink', linkname: 'sub' },
      { name: 'link/vmlinux', data: FAKE_VMLINUX },
    ]);
    await addEntry('fifo', [
      { name: 'vmlinux', data: FAKE_VMLINUX },
      { name: 'pipe', type: 'fifo' },
    ]);
    await addEntry('chardev', [
      { name: 'vmlinux', data: FAKE_VMLINUX },
      { name: 'null', type: 'character-device' },
    ]);
    await addEntry('hardlink', [
      { name: 'vmlinux', data: FAKE_VMLINUX },
      { name: 'again', type: 'link', linkname: 'vmlinux' },
    ]);
    await addEntry('empty', [{ name: 'README', data: 'no kernel here' }]);
    // `d/d -> ..` makes every second `d` the bundle root again: the vmlinuz link spells 40 names down and
    // 40 up (inside, read lexically) but climbs 40 levels above the root on disk, to a host file.
    await writeFile(join(work, 'host-secret'), 'HOST SECRET');
    const climb = `${'d/'.repeat(40)}${'../'.repeat(40)}${join(work, 'host-secret').slice(1)}`;
    await addEntry('climb', [
      { name: 'd/', type: 'directory' },
      { name: 'd/d', type: 'symlink', linkname: '..' },
      { name: 'vmlinuz', type: 'symlink', linkname: climb },
      { name: 'config', data: CONFIG },
    ]);
    await writeFile(join(work, 'catalog.json'), JSON.stringify({ version: 1, entries }));
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(work, { recursive: true, force: true });
  });

  it('installs a good bundle, records digests and capabilities, and refuses to overwrite without force', async () => {
    const m = manager('ok');
    const k = await m.pull('good');
    expect(k.manifest.source).toBe(`tarball:${base}/good.tar.zst`);
    expect(k.manifest.version).toBe('6.12.0-test');
    expect(k.manifest.files.vmlinux?.sha256).toBe(sha256(FAKE_VMLINUX));
    expect(k.manifest.capabilities).toMatchObject({
      virtioBlk: 'builtin',
      virtioMmioCmdlineDevices: true,
      needsInitramfs: false,
    });
    expect(k.vmlinuxPath && (await readFile(k.vmlinuxPath)).equals(FAKE_VMLINUX)).toBe(true);
    expect(k.initrdPath).toBeUndefined();
    expect((await m.show('good')).manifest).toEqual(k.manifest);
    await expect(m.pull('good')).rejects.toMatchObject({ code: 'already_exists' });
    const again = await m.pull('good', { force: true });
    expect(again.manifest.files).toEqual(k.manifest.files);
    const available = await m.listAvailable();
    expect(available.find((a) => a.entry.name === 'good')?.state).toBe('pulled');
    expect(available.find((a) => a.entry.name === 'badsha')?.state).toBe('available');
    await m.remove('good');
    await expectEmptyStore('ok');
  });

  const refused: [string, RegExp][] = [
    ['badsha', /has sha256 [0-9a-f]{64}, the catalog says f{64}/],
    ['short', /truncated: got \d+ of \d+ bytes/],
    ['cut', /download of kernel bundle .*cut.tar.zst failed: terminated/],
    ['traversal', /escapes the bundle/],
    ['absolute', /escapes the bundle/],
    ['symlink-out', /points outside the bundle/],
    ['through-link', /goes through the symlink link/],
    ['fifo', /is a fifo/],
    ['chardev', /is a character-device/],
    ['hardlink', /is a link/],
    ['empty', /holds no vmlinux or vmlinuz/],
    ['climb', /^kernel bundle symlink vmlinuz -> (d\/){40}\.\.\/.* leads outside the tree$/],
  ];
  for (const [name, message] of refused) {
    it(`refuses ${name} and leaves nothing in the store`, async () => {
      const store = `store-${name}`;
      const err = await manager(store)
        .pull(name)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(message);
      await expectEmptyStore(store);
      expect(existsSync(join(work, 'escape'))).toBe(false);
    });
  }

  it('names the available kernels when asked for an unknown one', async () => {
    const err = await manager('unknown')
      .pull('no-such-kernel')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'not_found' });
    expect((err as Error).message).toMatch(
      /not in the catalog; available: good, badsha, short, cut, traversal/,
    );
    expect((err as { hint: string }).hint).toContain('kernel list --available');
    await expectEmptyStore('unknown');
  });
});
