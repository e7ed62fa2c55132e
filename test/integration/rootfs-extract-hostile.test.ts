import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createRunner, type Runner } from '../../src/host/index.js';
import { BangerError } from '../../src/model/errors.js';
import { type ExtractLimits, extractDirectory, injectAssets } from '../../src/rootfs/index.js';
import {
  blockSizeOf,
  blocksOf,
  debugfsWrite,
  mkfsFrom,
  patchBlock,
  readBlock,
  writeBlock,
} from '../fixtures/crafted-ext4.js';
import { readImageFile } from '../fixtures/ext4-reader.js';
import { createNetnsFixture } from '../fixtures/netns.js';

// The hostile-image corpus of the work-disk seed: ext4 images crafted to make the daemon (root) write
// outside the copy, loop forever or read without end. Each must be refused with a clear error, leave
// nothing of the copy behind and leave the host's files as they were.
const runner = createRunner();
const fx = createNetnsFixture(runner);
let work: string;
let victimDir: string;
let victim: string;
let dest: string;
let tree: string;
let image: string;

beforeEach(async () => {
  work = await fx.tempDir();
  victimDir = join(work, 'host');
  mkdirSync(victimDir, { mode: 0o700 });
  victim = join(victimDir, 'secret');
  writeFileSync(victim, 'host secret\n', { mode: 0o600 });
  dest = await mkdtemp(join(work, 'seed-'));
  tree = join(work, 'tree');
  mkdirSync(join(tree, 'root'), { recursive: true });
  image = join(work, 'hostile.ext4');
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

const extract = (limits: Partial<ExtractLimits> = {}) => extractDirectory(image, '/root', dest, limits);

/** Refused with this reason; no copy left; the host file and its directory untouched. */
async function expectRefused(reason: RegExp, limits: Partial<ExtractLimits> = {}): Promise<void> {
  const before = statSync(victim);
  const err = await extract(limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BangerError);
  expect((err as BangerError).code).toBe('operation_failed');
  expect((err as BangerError).message).toMatch(reason);
  expect((err as BangerError).message).toContain(image);
  expect(readdirSync(dest)).toEqual([]);
  expect(readdirSync(victimDir)).toEqual(['secret']);
  expect(readFileSync(victim, 'utf8')).toBe('host secret\n');
  const after = statSync(victim);
  expect([after.mode, after.uid, after.mtimeMs]).toEqual([before.mode, before.uid, before.mtimeMs]);
  expect(readdirSync(work).sort()).toEqual(
    ['host', 'hostile.ext4', dest.slice(work.length + 1), 'tree'].sort(),
  );
}

/** An entry mkfs would never write: mkfs a placeholder of the same length, then patch the directory block. */
async function imageWithEntryNamed(name: Buffer): Promise<void> {
  const placeholder = 'A'.repeat(name.length);
  writeFileSync(join(tree, 'root', placeholder), 'payload\n');
  await mkfsFrom(tree, image);
  const [dirBlock] = await blocksOf(image, '/root');
  await patchBlock(image, dirBlock!, Buffer.from(placeholder), name);
}

describe('work-disk seed against hostile ext4 images', () => {
  it('never writes through an image symlink: /root/aaaa -> host file, then a second entry aaaa', async () => {
    // The debugfs rdump attack: rdump made the symlink, then opened the second "aaaa" with O_CREAT|O_TRUNC,
    // followed the symlink and wrote the image's file over the host's, as root.
    symlinkSync(victim, join(tree, 'root', 'aaaa'));
    mkdirSync(join(tree, 'src'));
    writeFileSync(join(tree, 'src', 'aaaa'), 'PWNED\n', { mode: 0o666 });
    await mkfsFrom(tree, image);
    await debugfsWrite(image, 'ln /src/aaaa /root');
    await expectRefused(/two entries named "aaaa"/);
  });

  it('refuses an entry whose name climbs out: ../pwnd', async () => {
    await imageWithEntryNamed(Buffer.from('../pwnd'));
    await expectRefused(/entry named "\.\.\/pwnd"/);
  });

  it('refuses an entry whose name has a NUL', async () => {
    await imageWithEntryNamed(Buffer.from('ab\0cd'));
    await expectRefused(/entry named "ab\\u0000cd"/);
  });

  it('treats a /root that is a symlink to a host directory as absent', async () => {
    mkdirSync(join(tree, 'etc'));
    symlinkSync(victimDir, join(tree, 'root-link'));
    await mkfsFrom(tree, image);
    await debugfsWrite(image, 'rmdir /root', 'ln /root-link /root');
    expect(await extract()).toBeUndefined();
    expect(readdirSync(dest)).toEqual([]);
    expect(readFileSync(victim, 'utf8')).toBe('host secret\n');
  });

  it('refuses an extent that points past the end of the filesystem', async () => {
    writeFileSync(join(tree, 'root', 'f'), Buffer.alloc(4096, 7));
    await mkfsFrom(tree, image);
    await debugfsWrite(image, 'sif /root/f block[5] 0x7fffffff');
    await expectRefused(/extent points past the end/);
  });

  it('refuses an extent tree that points back at itself', async () => {
    writeFileSync(join(tree, 'root', 'f'), Buffer.alloc(4096, 7));
    writeFileSync(join(tree, 'root', 'node'), Buffer.alloc(1024, 1));
    await mkfsFrom(tree, image);
    const [node] = await blocksOf(image, '/root/node');
    // An index node at block `node` whose one entry is block `node` again; /root/f's root points at it.
    const bs = await blockSizeOf(image);
    const raw = Buffer.alloc(24);
    raw.writeUInt16LE(0xf30a, 0);
    raw.writeUInt16LE(1, 2);
    raw.writeUInt16LE((bs - 12) / 12, 4);
    raw.writeUInt16LE(1, 6);
    raw.writeUInt32LE(node!, 16);
    await writeBlock(image, node!, raw);
    await debugfsWrite(
      image,
      'sif /root/f block[0] 0x0001f30a',
      'sif /root/f block[1] 0x00020004',
      'sif /root/f block[3] 0',
      `sif /root/f block[4] ${node}`,
      'sif /root/f block[5] 0',
    );
    await expectRefused(/extent node has depth 1/);
  });

  it('refuses a directory that contains itself (a hard-linked directory)', async () => {
    mkdirSync(join(tree, 'root', 'sub'));
    await mkfsFrom(tree, image);
    await debugfsWrite(image, 'ln /root /root/sub/loop');
    await expectRefused(/directory inode \d+ is reached twice/);
  });

  it('refuses a file whose size field is huge, before reading anything', async () => {
    writeFileSync(join(tree, 'root', 'f'), 'small\n');
    await mkfsFrom(tree, image);
    await debugfsWrite(image, 'sif /root/f size 0x10000000000');
    await expectRefused(/files hold more than 1073741824 bytes/);
  });

  it('enforces the entry and depth caps', async () => {
    for (let i = 0; i < 20; i++) writeFileSync(join(tree, 'root', `f${i}`), '');
    mkdirSync(join(tree, 'root', 'a', 'b', 'c'), { recursive: true });
    await mkfsFrom(tree, image);
    await expectRefused(/more than 10 entries/, { maxEntries: 10 });
    await expectRefused(/nests deeper than 2 directories/, { maxDepth: 2 });
  });

  it('refuses a filesystem that claims more blocks than the file holds', async () => {
    writeFileSync(join(tree, 'root', 'f'), 'x');
    await mkfsFrom(tree, image);
    await runner.run(['truncate', '-s', '8M', image]);
    await expectRefused(/claims 16777216 bytes but the file holds 8388608/);
  });

  it('refuses features it does not read rather than misreading them', async () => {
    writeFileSync(join(tree, 'root', 'f'), 'x');
    await mkfsFrom(tree, image, '16M', ['-O', 'inline_data']);
    await expectRefused(/features this reader does not support \(inline_data\)/);
  });

  it('refuses a directory record whose length runs past its block', async () => {
    writeFileSync(join(tree, 'root', 'zzzz'), 'x');
    await mkfsFrom(tree, image);
    const [dirBlock] = await blocksOf(image, '/root');
    // rec_len sits 4 bytes into a record, the name 8 bytes in: give "zzzz" a rec_len of 0xfffc.
    const block = await readBlock(image, dirBlock!);
    block.writeUInt16LE(0xfffc, block.indexOf('zzzz') - 4);
    await writeBlock(image, dirBlock!, block);
    await expectRefused(/directory record at \d+ has length 65532/);
  });
});

describe('guest-asset injection into images built elsewhere', () => {
  /** The real runner, recording each argv and who owned the image while it ran. */
  function watching(): { runner: Runner; seen: { argv: string[]; owner: number }[] } {
    const seen: { argv: string[]; owner: number }[] = [];
    return {
      seen,
      runner: {
        ...runner,
        async run(argv, options) {
          seen.push({ argv: [...argv], owner: statSync(image).uid });
          return runner.run(argv, options);
        },
      },
    };
  }

  it("reads the image with banger's reader and runs only the debugfs write, confined to 65534", async () => {
    mkdirSync(join(tree, 'etc'));
    writeFileSync(join(tree, 'etc', 'hostname'), 'old\n');
    await mkfsFrom(tree, image);
    const w = watching();
    await injectAssets(
      image,
      [{ kind: 'file', path: '/etc/hostname', content: 'new\n', mode: 0o644 }],
      w.runner,
    );
    expect(w.seen).toEqual([
      {
        argv: [
          'setpriv',
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          '--no-new-privs',
          '--',
          'debugfs',
          '-w',
          '-f',
          '-',
          '/dev/fd/3',
        ],
        owner: 65534,
      },
    ]);
    expect(statSync(image).uid).toBe(0);
    expect((await readImageFile(image, '/etc/hostname')).toString()).toBe('new\n');
  });

  it('refuses a hostile image before any tool runs on it', async () => {
    mkdirSync(join(tree, 'etc'));
    writeFileSync(join(tree, 'etc', 'zzzz'), 'x');
    await mkfsFrom(tree, image);
    const [dirBlock] = await blocksOf(image, '/etc');
    const block = await readBlock(image, dirBlock!);
    block.writeUInt16LE(0xfffc, block.indexOf('zzzz') - 4);
    await writeBlock(image, dirBlock!, block);
    const w = watching();
    await expect(
      injectAssets(image, [{ kind: 'file', path: '/etc/hostname', content: 'x', mode: 0o644 }], w.runner),
    ).rejects.toMatchObject({ code: 'bad_request', message: expect.stringMatching(/has length 65532/) });
    expect(w.seen).toEqual([]);
  });
});
