import { createWriteStream } from 'node:fs';
import { mkdir, symlink } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { DecompressStream } from 'zstd-napi';
import { BangerError, badRequest, operationFailed } from '../model/errors.js';
import { type ProgressSink, silentProgress } from '../model/progress.js';
import { catalogDownloadFailures, verifyingStream } from '../model/verify-stream.js';

/** Unpacked bytes allowed from one kernel bundle: kernel + modules are well under this. */
const MAX_UNPACKED_BYTES = 4 * 1024 * 1024 * 1024;

export interface FetchTarballOptions {
  url: string;
  sha256: string;
  sizeBytes: number;
  /** Empty directory that receives the bundle's files. */
  destDir: string;
  fetch?: typeof fetch;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

/** A bundle member's path, normalized; refuses absolute paths and any `..` component. */
export function safeMemberPath(name: string): string | undefined {
  const trimmed = name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (trimmed === '' || trimmed === '.') return undefined;
  if (trimmed.startsWith('/') || trimmed.split('/').includes('..')) {
    throw badRequest(`kernel bundle member ${JSON.stringify(name)} escapes the bundle`, {
      hint: 'the bundle is malformed or hostile; nothing was installed',
    });
  }
  return posix.normalize(trimmed);
}

/** Streams the bundle's entries into destDir: files, directories and symlinks that stay inside it. */
async function unpack(extract: tarStream.Extract, destDir: string): Promise<void> {
  const symlinks = new Set<string>();
  let unpacked = 0;
  for await (const entry of extract) {
    const { header } = entry;
    const rel = safeMemberPath(header.name);
    if (rel === undefined) {
      entry.resume();
      continue;
    }
    // A member under a symlink we created would be written wherever that link points.
    for (let p = posix.dirname(rel); p !== '.'; p = posix.dirname(p)) {
      if (symlinks.has(p)) throw badRequest(`kernel bundle member ${rel} goes through the symlink ${p}`);
    }
    const target = join(destDir, rel);
    switch (header.type) {
      case 'directory':
        await mkdir(target, { recursive: true, mode: 0o755 });
        entry.resume();
        break;
      case 'file':
      case 'contiguous-file': {
        unpacked += header.size ?? 0;
        if (unpacked > MAX_UNPACKED_BYTES) throw badRequest('kernel bundle unpacks to more than 4 GiB');
        await mkdir(dirname(target), { recursive: true, mode: 0o755 });
        await pipeline(
          entry,
          createWriteStream(target, { mode: (header.mode ?? 0o644) & 0o755, flags: 'wx' }),
        );
        break;
      }
      case 'symlink': {
        const linkTarget = header.linkname ?? '';
        const resolved = posix.normalize(posix.join(posix.dirname(rel), linkTarget));
        if (linkTarget.startsWith('/') || resolved === '..' || resolved.startsWith('../')) {
          throw badRequest(`kernel bundle symlink ${rel} -> ${linkTarget} points outside the bundle`);
        }
        await mkdir(dirname(target), { recursive: true, mode: 0o755 });
        await symlink(linkTarget, target);
        symlinks.add(rel);
        entry.resume();
        break;
      }
      case 'link':
      case 'block-device':
      case 'character-device':
      case 'fifo':
      default:
        // Hardlinks, devices, fifos and unknown types: refused, never skipped silently.
        throw badRequest(
          `kernel bundle member ${rel} is a ${header.type}, which a kernel bundle may not contain`,
          {
            hint: 'bundles hold regular files, directories and relative symlinks only; nothing was installed',
          },
        );
    }
  }
}

/**
 * Downloads a `.tar.zst` kernel bundle and unpacks it into `destDir` while it streams, checking size and
 * sha256 against the catalog. On any failure it throws and the caller discards destDir (a staging area).
 */
export async function fetchKernelTarball(options: FetchTarballOptions): Promise<void> {
  const url = new URL(options.url);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw badRequest(`kernel bundle URL ${options.url} must use https`);
  }
  const res = await (options.fetch ?? fetch)(options.url, { signal: options.signal }).catch(
    (err: unknown) => {
      throw operationFailed(`cannot download kernel bundle ${options.url}`, { cause: err });
    },
  );
  if (!res.ok || !res.body)
    throw operationFailed(`cannot download kernel bundle ${options.url}: HTTP ${res.status}`);
  const source = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  const progress = options.progress ?? silentProgress;
  const extract = tarStream.extract();
  const piping = pipeline(
    source,
    verifyingStream({
      sha256: options.sha256,
      size: options.sizeBytes,
      failures: catalogDownloadFailures(`kernel bundle ${options.url}`, options.sha256),
      onBytes: (done) =>
        progress({ kind: 'bytes', stage: 'download', item: options.url, done, total: options.sizeBytes }),
    }),
    new DecompressStream(),
    extract,
  );
  const consuming = unpack(extract, options.destDir).catch((err: unknown) => {
    source.destroy(err as Error);
    throw err;
  });
  const results = await Promise.allSettled([piping, consuming]);
  const reasons = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (reasons.length === 0) return;
  // Our own checks (digest, size, unsafe member) say the most; a transport or codec error gets the URL added.
  const ours = reasons.find((r) => r instanceof BangerError);
  if (ours) throw ours;
  const first = reasons[0];
  const why = first instanceof Error ? first.message : String(first);
  throw operationFailed(`download of kernel bundle ${options.url} failed: ${why}`, {
    hint: 'retry the pull; a .tar.zst that does not decode means the bundle or the catalog entry is wrong',
    cause: first,
  });
}
