import { stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Runner } from '../../../../host/index.js';
import { badRequest } from '../../../../model/errors.js';
import type { LayerSource } from '../../../../model/layer.js';
import type { ProgressSink } from '../../../../model/progress.js';
import { silentProgress } from '../../../../model/progress.js';
import type { FidelityReport } from '../contracts.js';
import type { StagingContext } from '../install.js';
import { IMAGE_FILES } from '../layout.js';
import type { ImageServiceDeps } from '../service-deps.js';
import { detectCompression, peekStream } from '../tar-magic.js';
import { checkInputKind, openInput } from './input.js';

/** Where a tarball comes from: a regular file, or the FIFO the CLI feeds from its stdin. */
export interface TarInput {
  file: string;
  /** `file` is the CLI's stdin FIFO (`-`). */
  stdin?: boolean | undefined;
  /** The command that feeds this input through stdin, for the refusal of a FIFO or device path. */
  pipeHint: string;
}

/**
 * A tarball (plain, gzip, zstd, xz; detected by magic bytes downstream) as a single layer. The CLI's stdin
 * arrives as a FIFO it made (`banger image import NAME -`); that stream can be opened once.
 */
export async function tarLayer(
  input: TarInput,
  runner: Runner,
  o: { progress?: ProgressSink | undefined; signal?: AbortSignal | undefined } = {},
): Promise<LayerSource> {
  const { file } = input;
  const progress = o.progress ?? silentProgress;
  if (!isAbsolute(file)) throw badRequest(`tarball path ${file} must be absolute`);
  const st = await stat(file).catch((err: unknown) => {
    throw badRequest(`cannot read tarball ${file}`, { cause: err });
  });
  const kind = { stdin: input.stdin === true, pipeHint: input.pipeHint };
  // Refused before any work; checked again on the opened descriptor.
  checkInputKind(file, st, kind);
  return {
    size: st.isFile() ? st.size : undefined,
    async open() {
      const { stream, size: total } = await openInput(file, {
        ...kind,
        name: input.stdin ? 'stdin' : file,
        signal: o.signal,
      });
      let done = 0;
      stream.on('data', (chunk: Buffer) => {
        done += chunk.length;
        progress({ kind: 'bytes', stage: 'read', done, total });
      });
      return decompressForeign(stream, runner);
    },
  };
}

/**
 * The rootfs builder reads plain, gzip and zstd layers (the OCI media types); tarballs made by hand also
 * come as xz or bzip2, which we decompress with the host's xz/bzip2 before the builder sees them.
 */
async function decompressForeign(stream: Readable, runner: Runner): Promise<Readable> {
  const { head, stream: whole } = await peekStream(stream, 8);
  const kind = detectCompression(head);
  if (kind !== 'xz' && kind !== 'bzip2') return whole;
  const child = runner.spawn([kind, '-dc'], { pipe: true });
  const out = child.stdout as Readable;
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  whole.pipe(child.stdin as Writable).on('error', () => undefined);
  whole.on('error', (err) => out.destroy(err));
  child.on('exit', (code) => {
    whole.destroy();
    if (code !== 0) {
      out.destroy(badRequest(`the ${kind} tarball does not decompress: ${stderr.trim() || `exit ${code}`}`));
    }
  });
  return out;
}

/** Builds `<staging>/rootfs.ext4` (guest assets injected) from layers and stores the fidelity report. */
export async function buildRootfsInto(
  deps: ImageServiceDeps,
  ctx: Pick<StagingContext, 'staging' | 'finalDir'>,
  layers: LayerSource[],
  o: { sizeBytes?: number | undefined; progress?: ProgressSink; signal?: AbortSignal },
): Promise<{ reportPath: string; report: FidelityReport }> {
  const { rootfs, guest } = deps.parts;
  const { report } = await rootfs.buildRootfs({
    layers,
    output: join(ctx.staging, IMAGE_FILES.rootfs),
    ...(o.sizeBytes === undefined ? {} : { sizeBytes: o.sizeBytes }),
    assets: guest.guestAssets(),
    limits: deps.limits,
    ...(o.progress ? { progress: o.progress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  await rootfs.writeFidelityReport(join(ctx.staging, IMAGE_FILES.report), report);
  return { reportPath: join(ctx.finalDir, IMAGE_FILES.report), report };
}
