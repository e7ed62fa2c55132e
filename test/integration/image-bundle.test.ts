import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { GUEST_AGENT_PATH } from '../../src/guest/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import { cliLong, debugfsMode, fsckClean } from '../fixtures/images.js';
import { testRootfs } from '../fixtures/rootfs-tarball.js';

/** Alpine's minirootfs where ../shared has it, else the busybox rootfs the suite builds. */
const { tarball: ROOTFS_TARBALL } = await testRootfs();

type Member = Partial<tarStream.Header> & Pick<tarStream.Header, 'name'>;

/** A .tar.zst with exactly these members, for the hostile cases. */
async function craftBundle(members: Member[], body: (name: string) => Buffer): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const h of members) {
    if (h.type === undefined || h.type === 'file') pack.entry(h, body(h.name));
    else pack.entry(h);
  }
  pack.finalize();
  await done;
  return compress(Buffer.concat(chunks));
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// Real: `banger image bundle` through the daemon's rootfs builder, the bundle served by a local HTTP server,
// pulled through a catalog file named in config.toml.
describe('image bundles: pack, serve, pull through a catalog, refuse bad bundles', () => {
  let inst: BangerInstance;
  let server: Server;
  let base: string;
  const served = () => join(inst.home, 'www');
  const imagesDir = () => join(inst.home, 'state', 'images');
  let good: { file: string; sha256: string; size: number };

  // The daemon reads config.toml once, the catalog file on every call.
  const catalogPath = () => join(inst.home, 'catalog.json');
  const writeCatalog = (entries: object[]) => {
    writeFileSync(catalogPath(), JSON.stringify({ version: 1, entries }));
  };
  const entry = (name: string, file: string, sha: string, size: number) => ({
    name,
    kind: 'bundle',
    distro: 'alpine',
    arch: 'x86_64',
    url: `${base}/${file}`,
    sha256: sha,
    sizeBytes: size,
  });

  beforeAll(async () => {
    inst = createInstance();
    writeCatalog([]);
    mkdirSync(join(inst.home, 'config'), { recursive: true });
    writeFileSync(
      join(inst.home, 'config', 'config.toml'),
      `image_catalog = ${JSON.stringify(catalogPath())}\n`,
    );
    mkdirSync(served());
    server = createServer((req, res) => {
      try {
        const body = readFileSync(join(served(), (req.url ?? '/').slice(1)));
        res.writeHead(200, { 'content-length': body.length }).end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await inst?.cleanup();
  });

  it('packs a bundle from a rootfs tarball and prints its path, sha256 and size', async () => {
    const out = join(served(), 'alp.tar.zst');
    const r = await inst.cli([
      'image',
      'bundle',
      '--name',
      'alp',
      '--rootfs-tar',
      ROOTFS_TARBALL,
      '--distro',
      'alpine',
      '--level',
      '3',
      '--out',
      out,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const [path, shaLine, sizeLine] = r.stdout.split('\n');
    const bytes = readFileSync(out);
    expect(path).toBe(out);
    expect(shaLine).toBe(`sha256 ${sha256(bytes)}`);
    expect(sizeLine).toBe(`size ${bytes.length}`);
    good = { file: 'alp.tar.zst', sha256: sha256(bytes), size: bytes.length };

    // The make-bundle input of the original: a `docker export` stream on stdin.
    const fromStdin = await cliLong(
      inst,
      [
        'image',
        'bundle',
        '--name',
        'alp',
        '--rootfs-tar',
        '-',
        '--level',
        '1',
        '--out',
        join(inst.home, 'stdin.tar.zst'),
      ],
      { inputFile: ROOTFS_TARBALL },
    );
    expect(fromStdin.exitCode, fromStdin.stderr).toBe(0);
    expect(fromStdin.stdout).toMatch(/^\/.*stdin\.tar\.zst\nsha256 [0-9a-f]{64}\nsize \d+$/);
    expect(readdirSync(imagesDir())).toEqual([]);
  });

  it('pulls the bundle named in the catalog, checking sha256 while it streams', async () => {
    writeCatalog([entry('alp', good.file, good.sha256, good.size)]);
    const cat = await inst.cli(['image', 'catalog']);
    expect(cat.stdout).toMatch(/^alp\s+available\s+bundle/m);
    const r = await inst.cli(['image', 'pull', 'alp']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^pulled alp: bundle ${base}/alp\\.tar\\.zst \\(sha256:${good.sha256}\\)`),
    );
    const { image } = JSON.parse((await inst.cli(['image', 'show', 'alp', '--json'])).stdout);
    expect(image.source).toEqual({ kind: 'bundle', url: `${base}/alp.tar.zst`, sha256: good.sha256 });
    expect((await fsckClean(image.artifacts.rootfsPath)).ok).toBe(true);
    expect(await debugfsMode(image.artifacts.rootfsPath, GUEST_AGENT_PATH)).toBe('0755');
    expect((await inst.cli(['image', 'catalog'])).stdout).toMatch(/^alp\s+pulled/m);
  });

  it('refuses a wrong sha256, a wrong size, a missing file and hostile members, leaving nothing', async () => {
    const rootfs = Buffer.alloc(4096);
    const manifest = Buffer.from(JSON.stringify({ version: 1, name: 'x', arch: 'x86_64' }));
    const body = (n: string) => (n.endsWith('manifest.json') ? manifest : rootfs);
    const hostile: Record<string, Member[]> = {
      extra: [
        { name: 'manifest.json', size: manifest.length },
        { name: 'rootfs.ext4', size: 4096 },
        { name: 'evil.sh', size: 4096 },
      ],
      unsafe: [
        { name: 'manifest.json', size: manifest.length },
        { name: '../rootfs.ext4', size: 4096 },
      ],
      symlink: [
        { name: 'manifest.json', size: manifest.length },
        { name: 'rootfs.ext4', type: 'symlink', linkname: '/etc/shadow' },
      ],
      missing: [{ name: 'manifest.json', size: manifest.length }],
    };
    const entries = [
      entry('badsha', good.file, '0'.repeat(64), good.size),
      entry('badsize', good.file, good.sha256, good.size + 1),
      entry('gone', 'nope.tar.zst', good.sha256, good.size),
    ];
    for (const [name, members] of Object.entries(hostile)) {
      const bytes = await craftBundle(members, body);
      writeFileSync(join(served(), `${name}.tar.zst`), bytes);
      entries.push(entry(name, `${name}.tar.zst`, sha256(bytes), bytes.length));
    }
    writeCatalog(entries);
    const before = readdirSync(imagesDir()).sort();
    const expectations: Record<string, RegExp> = {
      badsha: /has sha256 [0-9a-f]{64}, the catalog says 0{64}/,
      badsize: /is truncated: got \d+ of \d+ bytes/,
      gone: /HTTP 404/,
      extra: /unexpected member "evil\.sh"/,
      unsafe: /unexpected member unsafe path "\.\.\/rootfs\.ext4"/,
      symlink: /member rootfs\.ext4 is a symlink, not a regular file/,
      missing: /has no rootfs\.ext4/,
    };
    for (const [name, pattern] of Object.entries(expectations)) {
      const r = await inst.cli(['image', 'pull', name]);
      expect(r.exitCode, `${name}: ${r.stdout}`).toBe(1);
      expect(r.stderr, name).toMatch(pattern);
      expect((await inst.cli(['image', 'show', name])).exitCode).toBe(1);
    }
    expect(readdirSync(imagesDir()).sort()).toEqual(before);
    expect(statSync(join(served(), good.file)).size).toBe(good.size);
  });
});
