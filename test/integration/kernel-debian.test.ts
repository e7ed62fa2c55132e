/**
 * The default catalog entry against the real Debian archive: `pull debian-cloud-amd64` resolves the host
 * release's linux-image-cloud-amd64 to the current versioned package, downloads it through apt, builds the
 * initramfs and records the capabilities `kernel show` reports. Also: import of a .deb and of a directory,
 * a tarball bundle of a modular kernel (depmod + initramfs), and a .deb without a kernel refused with nothing
 * left behind.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { createRunner } from '../../src/host/index.js';
import { createKernelManager, isElf, type KernelManager } from '../../src/kernel/index.js';
import { ensureTestKernel, testCacheDir } from '../fixtures/kernel.js';

const runner = createRunner();

async function probe(): Promise<string | undefined> {
  for (const tool of ['apt-get', 'dpkg-deb', 'depmod']) {
    const r = await runner.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true });
    if (r.exitCode !== 0) return `${tool} is not installed`;
  }
  if (!(await readFile('/bin/busybox').catch(() => undefined))) return 'busybox-static is not installed';
  const apt = await runner.run(['apt-cache', 'show', 'linux-image-cloud-amd64'], { allowFailure: true });
  if (apt.exitCode !== 0) return 'apt does not know linux-image-cloud-amd64 (no Debian sources on this host)';
  return undefined;
}

const skipReason = await probe();
if (skipReason) console.warn(`kernel-debian integration skipped: ${skipReason}`);

/** Names of the members of a gzip'ed newc archive (enough parsing to check what went in). */
function cpioNames(gz: Buffer): string[] {
  const data = gunzipSync(gz);
  const names: string[] = [];
  let pos = 0;
  while (pos + 110 <= data.length) {
    const field = (i: number) =>
      Number.parseInt(data.toString('ascii', pos + 6 + i * 8, pos + 14 + i * 8), 16);
    const size = field(6);
    const nameSize = field(11);
    const name = data.toString('utf8', pos + 110, pos + 110 + nameSize - 1);
    if (name === 'TRAILER!!!') break;
    names.push(name);
    pos += Math.ceil((110 + nameSize) / 4) * 4;
    pos += Math.ceil(size / 4) * 4;
  }
  return names;
}

describe.skipIf(skipReason !== undefined)('Debian kernels', () => {
  let work: string;
  let m: KernelManager;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'banger-kernel-debian-'));
    m = createKernelManager({ kernelsDir: join(work, 'kernels'), runner });
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pulls the default entry and reports its capabilities', async () => {
    const k = await m.pull('debian-cloud-amd64');
    expect(k.manifest.source).toMatch(/^debian-package:linux-image-\d[\w.+-]*-cloud-amd64=\S+$/);
    expect(k.manifest.version).toMatch(/-cloud-amd64$/);
    expect(k.manifest.distro).toBe('debian');
    expect(k.manifest.capabilities).toEqual({
      configKnown: true,
      virtioPci: 'module',
      virtioMmio: 'module',
      virtioBlk: 'module',
      virtioNet: 'module',
      virtioConsole: 'module',
      virtioRng: 'module',
      vsock: 'module',
      ext4: 'builtin',
      virtioMmioCmdlineDevices: false,
      ipAutoconfig: false,
      needsInitramfs: true,
    });
    expect(k.vmlinuxPath).toBeDefined();
    expect(isElf(await readFile(k.vmlinuxPath as string))).toBe(true);
    expect(k.manifest.initrd?.builtBy).toBe('banger');
    const order = k.manifest.initrd?.modules ?? [];
    for (const [before, after] of [
      ['virtio_ring.ko', 'virtio.ko'],
      ['virtio.ko', 'virtio_pci.ko'],
      ['virtio.ko', 'virtio_blk.ko'],
      ['net_failover.ko', 'virtio_net.ko'],
      ['vsock.ko', 'vmw_vsock_virtio_transport.ko'],
    ] as const) {
      expect(order.indexOf(before)).toBeGreaterThanOrEqual(0);
      expect(order.indexOf(before)).toBeLessThan(order.indexOf(after));
    }
    const names = cpioNames(await readFile(k.initrdPath as string));
    expect(names).toEqual(
      expect.arrayContaining(['init', 'bin/busybox', 'dev/console', 'lib/modules/virtio_blk.ko']),
    );
    expect(names.filter((n) => n.endsWith('.ko'))).toHaveLength(order.length);

    const shown = await m.show('debian-cloud-amd64');
    expect(shown.manifest).toEqual(k.manifest);
    const available = await m.listAvailable();
    expect(available).toEqual([
      expect.objectContaining({ state: 'pulled', sizeBytes: expect.any(Number) as number }),
    ]);
    expect((await m.list()).kernels.map((x) => x.manifest.name)).toEqual(['debian-cloud-amd64']);
    await m.remove('debian-cloud-amd64');
    expect(await readdir(join(work, 'kernels'))).toEqual([]);
  });

  it('imports a .deb and a directory', async () => {
    const fixture = await ensureTestKernel();
    const debs = (await readdir(join(testCacheDir(), 'debs'))).filter((f) => f.endsWith('.deb'));
    const deb = join(testCacheDir(), 'debs', debs.find((f) => f.includes(fixture.version)) as string);
    const k = await m.importFromDeb('from-deb', deb);
    expect(k.manifest.version).toBe(fixture.version);
    expect(k.manifest.source).toBe(`import:deb:${deb}`);
    expect(k.manifest.capabilities.virtioBlk).toBe('module');

    const dir = join(work, 'dir-kernel');
    await mkdir(dir);
    await copyFile(fixture.kernelPath, join(dir, 'vmlinuz'));
    await copyFile(fixture.initrdPath, join(dir, 'initrd.img'));
    await copyFile(join(k.dir, 'config'), join(dir, 'config'));
    const d = await m.importFromDir('from-dir', dir, { distro: 'custom' });
    expect(d.manifest).toMatchObject({
      distro: 'custom',
      version: fixture.version,
      initrd: { builtBy: 'source' },
    });
    expect(d.manifest.files['initrd.img']).toEqual(k.manifest.files['initrd.img']);
    await m.remove('from-deb');
    await m.remove('from-dir');
  });

  it('builds the initramfs for a modular kernel pulled as a tarball bundle (modules without modules.dep)', async () => {
    const fixture = await ensureTestKernel();
    const pack = tarStream.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
    pack.entry({ name: 'vmlinuz' }, await readFile(fixture.kernelPath));
    pack.entry({ name: 'config' }, await readFile(join(dirname(fixture.kernelPath), 'config')));
    const dep = await readFile(join(fixture.modulesDir, 'modules.dep'), 'utf8');
    const wanted = ['virtio_blk.ko', 'virtio_net.ko', 'virtio_pci.ko', 'virtio_mmio.ko', 'virtio_console.ko'];
    const paths = new Set<string>();
    for (const line of dep.split('\n')) {
      const [path, deps = ''] = line.split(':');
      if (path && wanted.some((w) => path.endsWith(`/${w}`))) {
        paths.add(path);
        for (const d of deps.trim().split(/\s+/).filter(Boolean)) paths.add(d);
      }
    }
    for (const p of paths) pack.entry({ name: `modules/${p}` }, await readFile(join(fixture.modulesDir, p)));
    pack.finalize();
    await ended;
    const body = compress(Buffer.concat(chunks));

    const server = createServer((_req, res) =>
      res.writeHead(200, { 'content-length': body.length }).end(body),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/modular.tar.zst`;
      const catalog = join(work, 'modular-catalog.json');
      const entry = {
        name: 'modular',
        kind: 'tarball',
        distro: 'debian',
        arch: 'x86_64',
        kernelVersion: fixture.version,
      };
      await writeFile(
        catalog,
        JSON.stringify({
          version: 1,
          entries: [
            {
              ...entry,
              url,
              sha256: createHash('sha256').update(body).digest('hex'),
              sizeBytes: body.length,
            },
          ],
        }),
      );
      const mm = createKernelManager({ kernelsDir: join(work, 'modular'), runner, catalogOverride: catalog });
      const k = await mm.pull('modular');
      expect(k.manifest.capabilities.needsInitramfs).toBe(true);
      expect(k.manifest.initrd?.builtBy).toBe('banger');
      expect(k.manifest.initrd?.modules).toEqual(
        expect.arrayContaining([
          'virtio_ring.ko',
          'virtio.ko',
          'virtio_blk.ko',
          'virtio_net.ko',
          'virtio_console.ko',
        ]),
      );
      expect(k.manifest.modules?.count).toBeGreaterThan(paths.size); // the .ko files plus depmod's indexes
      await mm.remove('modular');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses a .deb without a kernel and leaves nothing in the store', async () => {
    const pkg = join(work, 'fake');
    await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
    await mkdir(join(pkg, 'usr', 'share', 'doc', 'fake'), { recursive: true });
    await writeFile(
      join(pkg, 'DEBIAN', 'control'),
      'Package: fake\nVersion: 1.0\nArchitecture: all\nMaintainer: banger tests <t@example.invalid>\nDescription: no kernel\n',
    );
    await writeFile(join(pkg, 'usr', 'share', 'doc', 'fake', 'README'), 'nothing to see\n');
    const deb = join(work, 'fake_1.0_all.deb');
    await runner.run(['dpkg-deb', '--root-owner-group', '-b', pkg, deb]);
    const store = createKernelManager({ kernelsDir: join(work, 'refuse'), runner });
    await expect(store.importFromDeb('fake', deb)).rejects.toMatchObject({
      code: 'bad_request',
      message: expect.stringContaining('contains no kernel') as string,
    });
    await writeFile(join(work, 'not-a.deb'), 'garbage');
    await expect(store.importFromDeb('garbage', join(work, 'not-a.deb'))).rejects.toMatchObject({
      code: 'bad_request',
      message: expect.stringContaining('is not a readable Debian package') as string,
    });
    expect(await readdir(join(work, 'refuse'))).toEqual([]);
  });
});
