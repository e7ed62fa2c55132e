import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRunner, type Runner } from '../host/index.js';
import { BangerError, operationFailed } from '../model/errors.js';
import type { GuestAsset } from '../model/guest-asset.js';
import type { LayerSource } from '../model/layer.js';
import { type ProgressSink, silentProgress } from '../model/progress.js';
import { addAssetsToTree } from './assets.js';
import { buildDebugfsScript, type ScriptEntry } from './debugfs-script.js';
import { chooseSize, estimateBytes, makeExt4, runDebugfs } from './ext4.js';
import { flattenLayers } from './flatten.js';
import { DEFAULT_LIMITS } from './limits.js';
import { buildReport } from './report.js';
import { Staging } from './staging.js';
import { FlatTree } from './tree.js';
import type { EntryMeta, FidelityReport, RootfsLimits } from './types.js';

export interface BuildRootfsOptions {
  /** Oldest first. */
  layers: LayerSource[];
  /** The ext4 file to create; it appears only when the build succeeded. */
  output: string;
  /** Scratch space for the staging tree; what the build creates here is removed at the end. */
  workDir: string;
  /** Image size; default content × 1.5, at least 1 GiB. */
  sizeBytes?: number;
  assets?: GuestAsset[];
  limits?: RootfsLimits;
  runner?: Runner;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

/**
 * OCI layers -> a bootable ext4, rootless: flatten into a staging tree plus metadata, `mkfs.ext4 -d`, then
 * one debugfs batch for what staging cannot hold (owners, special modes, devices, FIFOs, xattrs), then
 * `e2fsck -fn`. The output is renamed into place only on success; staging is always removed.
 */
export async function buildRootfs(
  opts: BuildRootfsOptions,
): Promise<{ sizeBytes: number; report: FidelityReport }> {
  const runner = opts.runner ?? createRunner();
  const progress = opts.progress ?? silentProgress;
  const { signal } = opts;
  await mkdir(opts.workDir, { recursive: true });
  const work = await mkdtemp(join(opts.workDir, 'rootfs-'));
  const tmpOutput = `${opts.output}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    const stagingDir = join(work, 'tree');
    await mkdir(stagingDir, { mode: 0o700 });
    const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    const tree = new FlatTree(new Staging(stagingDir), self.uid === 0, self);

    progress({ kind: 'stage', stage: 'flatten', message: `${opts.layers.length} layer(s)` });
    const stats = await flattenLayers({
      layers: opts.layers,
      tree,
      limits: opts.limits ?? DEFAULT_LIMITS,
      progress,
      signal,
    });
    const assets = opts.assets ?? [];
    if (assets.length > 0) await addAssetsToTree(tree, assets, opts.layers.length);
    await tree.finish();
    signal?.throwIfAborted();

    const nodes = [...tree.walk()];
    const sizes = nodes.filter((n) => n.meta.kind === 'file' && !n.hardlink).map((n) => n.size ?? 0);
    const estimate = estimateBytes(sizes, nodes.length - sizes.length);
    const sizeBytes = chooseSize(estimate, opts.sizeBytes);

    progress({ kind: 'stage', stage: 'mkfs', message: `ext4 of ${sizeBytes} bytes` });
    await makeExt4({ runner, stagingDir, output: tmpOutput, sizeBytes, inodes: estimate.inodes, signal });

    progress({ kind: 'stage', stage: 'metadata', message: 'owners, modes, devices, xattrs' });
    const xattrDir = join(work, 'xattrs');
    await mkdir(xattrDir);
    const script = buildDebugfsScript(scriptEntries(tree), (i) => join(xattrDir, String(i)));
    for (const [i, value] of script.xattrValues.entries()) await writeFile(join(xattrDir, String(i)), value);
    if (script.text) {
      const scriptPath = join(work, 'metadata.debugfs');
      await writeFile(scriptPath, script.text);
      await runDebugfs({ runner, image: tmpOutput, scriptPath, signal });
    }

    progress({ kind: 'stage', stage: 'check', message: 'e2fsck -fn' });
    const fsck = await runner.run(['e2fsck', '-fn', tmpOutput], { allowFailure: true, signal });
    if (fsck.exitCode !== 0) {
      throw operationFailed(
        `the built image does not pass e2fsck: ${fsck.stdout.trim().split('\n').slice(-5).join('; ')}`,
      );
    }
    await rename(tmpOutput, opts.output);
    const imageBytes = (await stat(opts.output)).blocks * 512;
    return { sizeBytes, report: buildReport(tree, stats, imageBytes, assets.length) };
  } catch (err) {
    await rm(tmpOutput, { force: true });
    if (signal?.aborted && !(err instanceof BangerError && err.code !== 'operation_failed'))
      throw new BangerError('cancelled', 'rootfs build was cancelled', { cause: err });
    throw err;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** One entry per inode (hardlinked names share one), root first. */
function* scriptEntries(tree: FlatTree): Generator<ScriptEntry> {
  const seen = new Set<EntryMeta>();
  for (const node of tree.walk()) {
    if (seen.has(node.meta)) continue;
    seen.add(node.meta);
    yield { parts: node.parts, meta: node.meta, staged: node.virtual ? undefined : tree.staged(node.meta) };
  }
}
