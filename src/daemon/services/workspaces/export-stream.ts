import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { BangerError } from '../../../model/errors.js';
import { STREAM_MAGIC } from './export-guest.js';

/** The listing of a hostile guest is bounded: more paths than this is refused (a real change is far smaller). */
export const MAX_CHANGED_PATHS = 200_000;
/** Bytes of the NUL-separated list (paths are at most PATH_MAX each; this is generous for the count above). */
export const MAX_LIST_BYTES = 64 * 1024 * 1024;
const MAX_PATH_BYTES = 4096;
const MAX_LINK_BYTES = 4096;

/** What the guest's stream says, as the host consumes it (see EXPORT_CHANGES_SCRIPT). */
export interface ChangeSink {
  /** The base commit the guest resolved; called once, before anything else. */
  base(oid: string): Promise<void>;
  /** Every path that may differ from the base (validated), before any content. */
  list(paths: string[]): void;
  /** A regular file's content (streamed, `size` bytes), or a symlink's target as its content. */
  blob(
    path: string,
    mode: '100644' | '100755' | '120000',
    size: number,
    data: AsyncIterable<Buffer> | Iterable<Buffer>,
  ): Promise<void>;
  /** A hard link to a member sent earlier: the same content and mode. */
  hardlink(path: string, target: string): void;
}

/** A guest that broke the stream's rules: refused, with what it did. */
export function hostileStream(what: string): BangerError {
  return new BangerError('operation_failed', `the guest sent a bad export stream: ${what}`);
}

/**
 * A path as git would take it from a work tree, or why not: relative, no empty, `.` or `..` component, no
 * `.git` (any case: a case-insensitive checkout reads `.GIT` as `.git`), no control character, backslash
 * or leading quote (the guest script hands paths git would quote to the guest-side diff, so only a hostile
 * guest sends them). Names are latin1 strings: one char per byte, as the guest's file system has them.
 */
export function checkGuestPath(path: string): string | undefined {
  if (path.length === 0 || path.length > MAX_PATH_BYTES) return 'an empty or overlong path';
  if (path.startsWith('/')) return `an absolute path (${path})`;
  if (/[\x00-\x1f\x7f\\]/.test(path) || path.startsWith('"'))
    return `a path with a control character, backslash or quote (${JSON.stringify(path)})`;
  for (const part of path.split('/')) {
    if (part === '' || part === '.' || part === '..')
      return `a path with an empty, . or .. component (${path})`;
    if (part.toLowerCase() === '.git') return `a path into .git (${path})`;
  }
  return undefined;
}

/** A tar member's name as a path: GNU tar and busybox keep the `./` the list gave them. */
function memberPath(name: string): string {
  return name.startsWith('./') ? name.slice(2) : name;
}

/**
 * A Writable for the guest's export stream: header line, path list, tar. Everything is checked as it comes:
 * the header's shape, the list's size and paths, and each tar member (a listed path, once, a regular file,
 * symlink or hard link to an earlier member; nothing under a member that is a file). Members under a
 * symlink member are dropped (git treats a path beyond a symlink as deleted). Nothing is written to disk
 * here: content goes to the sink. Once the guest's exec has ended, `done()` ends the tar and settles when
 * every member was handled (or with the first error).
 */
export function changeStream(sink: ChangeSink): {
  stream: Writable;
  done(): Promise<void>;
  /** Stops the parser when the exec failed (nothing more will come). */
  abort(): void;
} {
  let state: 'header' | 'list' | 'tar' = 'header';
  let pending: Buffer = Buffer.alloc(0);
  let listBytes = 0;
  const paths: string[] = [];
  const listed = new Set<string>();
  const sent = new Map<string, 'file' | 'link'>();
  const links: string[] = [];
  const tarIn = new PassThrough();
  const extract = tarStream.extract({ filenameEncoding: 'latin1' } as object);
  let failed: Error | undefined;
  const fail = (err: Error) => {
    failed ??= err;
    tarIn.destroy();
    extract.destroy();
  };

  const underLink = (p: string) => links.some((l) => p.startsWith(`${l}/`));
  const check = (p: string): void => {
    if (!listed.has(p)) throw hostileStream(`a member that was not listed (${JSON.stringify(p)})`);
    if (sent.has(p)) throw hostileStream(`a member sent twice (${p})`);
    for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1))
      if (sent.get(p.slice(0, i)) === 'file') throw hostileStream(`a member under a file (${p})`);
  };
  const entry = async (header: tarStream.Header, body: AsyncIterable<Buffer>): Promise<void> => {
    const path = memberPath(header.name);
    check(path);
    const drop = underLink(path);
    if (header.type === 'file' || header.type === 'contiguous-file') {
      sent.set(path, 'file');
      const mode = (header.mode ?? 0) & 0o100 ? '100755' : '100644';
      if (drop) return drain(body);
      return sink.blob(path, mode, header.size ?? 0, body);
    }
    if (header.type === 'symlink') {
      const target = Buffer.from(header.linkname ?? '', 'latin1');
      if (target.length === 0 || target.length > MAX_LINK_BYTES)
        throw hostileStream(`a symlink with an empty or overlong target (${path})`);
      sent.set(path, 'link');
      if (!drop) {
        links.push(path);
        await sink.blob(path, '120000', target.length, [target]);
      }
      return drain(body);
    }
    if (header.type === 'link') {
      const target = memberPath(header.linkname ?? '');
      if (sent.get(target) !== 'file')
        throw hostileStream(`a hard link to something not sent before (${path})`);
      sent.set(path, 'file');
      if (!drop && !underLink(target)) sink.hardlink(path, target);
      return drain(body);
    }
    throw hostileStream(`a member of type ${header.type} (${path}): only files and symlinks are exported`);
  };
  const feeding = pipeline(tarIn, extract);
  feeding.catch(() => {});
  const consume = async (): Promise<void> => {
    try {
      for await (const e of extract) {
        const t = e as unknown as AsyncIterable<Buffer> & { header: tarStream.Header };
        await entry(t.header, t);
      }
      await feeding;
    } catch (err) {
      // No tar at all is a change with nothing to send (every listed path was deleted).
      if (!(tarBytes === 0 && !failed))
        fail(err instanceof BangerError ? err : hostileStream(`a broken tar: ${(err as Error).message}`));
    }
    if (failed) throw failed;
  };
  const consuming = consume();
  consuming.catch(() => {});
  /** Into the tar parser, waiting while it is behind (or gone: then the data is dropped). */
  let tarBytes = 0;
  const push = async (chunk: Buffer): Promise<void> => {
    tarBytes += chunk.length;
    if (tarIn.destroyed || tarIn.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const go = () => {
        tarIn.off('drain', go);
        tarIn.off('close', go);
        resolve();
      };
      tarIn.on('drain', go);
      tarIn.on('close', go);
    });
  };

  const takeList = (buf: Buffer): Buffer => {
    let at = 0;
    for (let nul = buf.indexOf(0, at); nul >= 0; nul = buf.indexOf(0, at)) {
      const record = buf.subarray(at, nul).toString('latin1');
      at = nul + 1;
      if (record === '') {
        state = 'tar';
        sink.list(paths);
        return buf.subarray(at);
      }
      // A nested repository or submodule comes as `dir/`: git diffs it as nothing, and so does the host.
      if (record.endsWith('/')) continue;
      const bad = checkGuestPath(record);
      if (bad) throw hostileStream(bad);
      if (!listed.has(record)) paths.push(record);
      listed.add(record);
      if (paths.length > MAX_CHANGED_PATHS)
        throw hostileStream(`more than ${MAX_CHANGED_PATHS} changed paths`);
    }
    return buf.subarray(at);
  };

  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (failed) return cb(); // keep taking what the guest sends; the exec ends and the error is reported
      const run = async (): Promise<void> => {
        if (state === 'tar') return push(chunk);
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        if (state === 'header') {
          const nl = pending.indexOf(0x0a);
          if (nl < 0) {
            if (pending.length > 256) throw hostileStream('no header line');
            return;
          }
          const line = pending.subarray(0, nl).toString('latin1');
          const oid = line.startsWith(STREAM_MAGIC) ? line.slice(STREAM_MAGIC.length) : '';
          if (!/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(oid)) throw hostileStream('a bad header line');
          pending = pending.subarray(nl + 1);
          state = 'list';
          await sink.base(oid);
        }
        if (state === 'list') {
          listBytes += chunk.length;
          const rest = takeList(pending);
          if (state === 'list') {
            if (listBytes > MAX_LIST_BYTES) throw hostileStream(`a path list over ${MAX_LIST_BYTES} bytes`);
            pending = Buffer.from(rest);
            return;
          }
          pending = Buffer.alloc(0);
          if (rest.length) await push(rest);
        }
      };
      run().then(
        () => cb(),
        (err: Error) => {
          fail(err);
          cb();
        },
      );
    },
  });
  /** The tar and its members all handled, or the first failure (of the stream or of the sink). */
  const done = async (): Promise<void> => {
    if (state !== 'tar' && !failed) fail(hostileStream('the stream ended before its path list did'));
    if (failed) throw failed;
    if (!tarIn.writableEnded) tarIn.end();
    await consuming;
  };
  return { stream, done, abort: () => fail(hostileStream('the exec ended early')) };
}

async function drain(body: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of body);
}
