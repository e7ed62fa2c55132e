import { once } from 'node:events';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import writeFileAtomic from 'write-file-atomic';
import type { Runner } from '../../../host/index.js';
import { badRequest, operationFailed } from '../../../model/errors.js';
import type { GuestAsset } from '../../../model/guest-asset.js';
import { silentProgress } from '../../../model/progress.js';
import type {
  BuildRootfsOptions,
  FidelityReport,
  GuestModule,
  OciPuller,
  RootfsModule,
} from './contracts.js';
import { detectCompression, peekStream } from './tar-magic.js';

/*
 * TEMPORARY stand-ins for src/rootfs, src/guest and src/oci, which other branches are rebuilding. They
 * satisfy the contracts in contracts.ts with plain host tools so the image service works end to end today;
 * daemon.ts swaps in the real modules when those branches land. Limits of the stand-ins:
 *   - rootfs: GNU tar (as root) + `mkfs.ext4 -d`; no OCI whiteouts, no debugfs ownership pass, the report
 *     only counts bytes; hostile members are refused by GNU tar itself (`..`, leading `/` stripped).
 *   - guest: no assets (the agent is not built yet).
 *   - oci: no registry client; `image pull <oci-ref>` fails with a clear message.
 */

const MIB = 1024 * 1024;
/** ext4 floor (the original: 1 GiB, sparse, so it costs nothing until written). */
const MIN_EXT4_BYTES = 1024 * MIB;

const TAR_FLAG = { gzip: ['-z'], zstd: ['--zstd'], xz: ['-J'], bzip2: ['-j'], none: [] } as const;

async function extractLayer(
  runner: Runner,
  stream: Readable,
  tree: string,
  o: BuildRootfsOptions,
  item: string,
) {
  const { head, stream: whole } = await peekStream(stream, 512);
  const kind = detectCompression(head);
  const child = runner.spawn(
    [
      'tar',
      '-x',
      ...TAR_FLAG[kind],
      '--numeric-owner',
      '--same-owner',
      '-p',
      '--xattrs',
      '--xattrs-include=*',
      '-C',
      tree,
      '-f',
      '-',
    ],
    { pipe: true },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += d.toString();
  });
  child.stdout?.resume();
  let done = 0;
  const progress = o.progress ?? silentProgress;
  whole.on('data', (chunk: Buffer) => {
    done += chunk.length;
    progress({ kind: 'bytes', stage: 'extract', item, done, total: undefined });
  });
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  try {
    await pipeline(whole, child.stdin!, { signal: o.signal });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
  }
  const [code] = await exited;
  if (code !== 0) {
    const tail = stderr.trim().split('\n').slice(-5).join('\n');
    throw badRequest(`the tarball (${item}) was refused: ${tail || `tar exited with ${code}`}`, {
      hint: 'nothing was imported; fix the tarball (or check it with `tar -tvf`)',
    });
  }
  return done;
}

async function writeAssets(tree: string, assets: GuestAsset[]) {
  for (const a of assets) {
    const p = join(tree, a.path);
    await mkdir(dirname(p), { recursive: true });
    if (a.kind === 'dir') await mkdir(p, { recursive: true, mode: a.mode });
    else if (a.kind === 'file') {
      const c = a.content;
      const data =
        typeof c === 'string' || Buffer.isBuffer(c)
          ? c
          : await import('node:fs/promises').then((f) => f.readFile(c.hostPath));
      await writeFile(p, data, { mode: a.mode });
    } else {
      await rm(p, { force: true });
      await import('node:fs/promises').then((f) => f.symlink(a.target, p));
    }
  }
}

/** The rootfs stand-in (see the comment at the top of this file). */
export function standInRootfs(runner: Runner): RootfsModule {
  return {
    async buildRootfs(o) {
      const progress = o.progress ?? silentProgress;
      const tree = join(o.workDir, 'tree');
      await mkdir(tree, { recursive: true, mode: 0o755 });
      try {
        let read = 0;
        for (const [i, layer] of o.layers.entries()) {
          progress({ kind: 'stage', stage: 'extract', message: `layer ${i + 1} of ${o.layers.length}` });
          read += await extractLayer(
            runner,
            await layer.open(),
            tree,
            o,
            layer.digest ?? (o.layers.length > 1 ? `layer ${i + 1}` : 'input'),
          );
        }
        if (o.assets?.length) await writeAssets(tree, o.assets);
        const du = await runner.run(['du', '-sb', tree], { signal: o.signal });
        const content = Number(du.stdout.split('\t')[0]);
        if (o.limits && content > o.limits.maxUnpackedBytes) {
          throw badRequest(
            `the image unpacks to ${content} bytes, over max_unpacked_size (${o.limits.maxUnpackedBytes})`,
          );
        }
        const size = o.sizeBytes ?? Math.max(MIN_EXT4_BYTES, Math.ceil((content * 1.5) / MIB) * MIB);
        if (size < content)
          throw badRequest(`--size ${size} bytes is smaller than the content (${content} bytes)`);
        progress({ kind: 'stage', stage: 'mkfs', message: `mkfs.ext4 -d (${Math.round(size / MIB)} MiB)` });
        const tmp = `${o.output}.tmp`;
        await runner.run(['truncate', '-s', String(size), tmp], { signal: o.signal });
        await runner
          .run(
            [
              'mkfs.ext4',
              '-F',
              '-q',
              '-t',
              'ext4',
              '-L',
              'banger-rootfs',
              '-E',
              'root_owner=0:0',
              '-d',
              tree,
              tmp,
            ],
            { signal: o.signal },
          )
          .catch(async (err: unknown) => {
            await rm(tmp, { force: true });
            throw err;
          });
        await rename(tmp, o.output);
        return {
          sizeBytes: size,
          report: { builder: 'stand-in (GNU tar + mkfs.ext4 -d)', bytesRead: read, contentBytes: content },
        };
      } finally {
        await rm(o.workDir, { recursive: true, force: true });
      }
    },
    async writeFidelityReport(path, report: FidelityReport) {
      await writeFileAtomic(path, `${JSON.stringify(report, null, 2)}\n`);
    },
    async injectAssets(_ext4Path, assets) {
      if (assets.length > 0)
        throw operationFailed('guest asset injection needs the rootfs builder, not in this build');
    },
  };
}

/** The guest stand-in: no assets until the agent branch lands. */
export const standInGuest: GuestModule = { guestAssets: () => [] };

/** The OCI stand-in: no registry client yet; the cache is only measured and pruned. */
export function standInPuller(ociDir: string, runner: Runner): OciPuller {
  const blobs = join(ociDir, 'blobs');
  const measure = async () => {
    const r = await runner.run(['du', '-sb', blobs], { allowFailure: true });
    return r.exitCode === 0 ? Number(r.stdout.split('\t')[0]) : 0;
  };
  return {
    async pull(ref) {
      throw operationFailed(`cannot pull ${ref}: OCI registry pulls are not in this build yet`, {
        hint: 'import a rootfs tarball instead: banger image import NAME FILE',
      });
    },
    cacheSize: measure,
    async pruneCache() {
      const r = await runner.run(['find', blobs, '-type', 'f'], { allowFailure: true });
      const removed = r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean).length : 0;
      const bytes = await measure();
      await rm(blobs, { recursive: true, force: true });
      return { removed, bytes };
    },
  };
}
