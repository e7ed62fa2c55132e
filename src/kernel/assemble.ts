import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runner } from '../host/index.js';
import { badRequest, operationFailed } from '../model/errors.js';
import { type ProgressSink, silentProgress } from '../model/progress.js';
import { extractVmlinux, isElf, kernelReleaseOf } from './bzimage.js';
import { detectCapabilities } from './capabilities.js';
import { hashFile, hashTree } from './hash.js';
import { buildInitramfs } from './initramfs/index.js';
import type { KernelSourceTree } from './locate.js';
import { KERNEL_FILES, type KernelManifest } from './manifest.js';

/** When to build banger's initramfs: only when the kernel needs one and none came with it, always, or never. */
export type InitramfsPolicy = 'auto' | 'always' | 'never';

export interface AssembleOptions {
  name: string;
  distro: string;
  arch: string;
  /** Overrides the release found in the tree or in the kernel image. */
  version?: string;
  source: string;
  runner: Runner;
  initramfs?: InitramfsPolicy;
  busyboxPath?: string;
  /** Move (rather than copy) the source's modules: the tree is a scratch extraction on the same filesystem. */
  moveModules?: boolean;
  progress?: ProgressSink;
}

/** Runs depmod on a modules dir that lacks modules.dep (Debian packages ship none: postinst makes it). */
async function ensureDepmod(
  runner: Runner,
  modulesDir: string,
  version: string,
  scratch: string,
): Promise<void> {
  if (existsSync(join(modulesDir, 'modules.dep'))) return;
  // depmod -b BASE wants BASE/lib/modules/<version>; a symlink avoids copying the tree.
  const base = await mkdtemp(join(scratch, 'depmod-'));
  await mkdir(join(base, 'lib', 'modules'), { recursive: true });
  await symlink(modulesDir, join(base, 'lib', 'modules', version));
  try {
    await runner.run(['depmod', '-b', base, version], { timeoutMs: 120_000 });
  } catch (err) {
    throw operationFailed(`depmod failed for kernel ${version}`, {
      hint: 'install the kmod package (apt-get install kmod)',
      cause: err,
    });
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/**
 * Fills a staging directory with a kernel in banger's layout from a located source tree: the boot image
 * (plus an extracted vmlinux ELF), config, modules (depmod'ed), an initrd (the source's, or banger's when the
 * kernel needs one), and returns the manifest to write. Throws a clear error when the tree cannot boot.
 */
export async function assembleKernel(
  staging: string,
  src: KernelSourceTree,
  options: AssembleOptions,
): Promise<KernelManifest> {
  const progress = options.progress ?? silentProgress;
  const image = await readFile(src.kernelImage);
  let version = options.version ?? src.version;
  if (isElf(image)) {
    await writeFile(join(staging, KERNEL_FILES.vmlinux), image);
  } else {
    await writeFile(join(staging, KERNEL_FILES.vmlinuz), image);
    version ??= kernelReleaseOf(image);
    progress({
      kind: 'stage',
      stage: 'extract-vmlinux',
      message: 'extracting the vmlinux ELF (for Firecracker)',
    });
    try {
      await writeFile(join(staging, KERNEL_FILES.vmlinux), await extractVmlinux(image, options.runner));
    } catch (err) {
      progress({
        kind: 'log',
        level: 'warn',
        message: `no vmlinux: ${(err as Error).message}; QEMU can still boot it`,
      });
    }
  }
  if (src.modulesDir && !version) version = src.modulesDir.split('/').filter(Boolean).at(-1);
  if (!version) {
    throw badRequest('cannot tell the kernel version', { hint: 'pass the kernel version explicitly' });
  }

  const configText = src.config ? await readFile(src.config, 'utf8') : undefined;
  if (src.config) await copyFile(src.config, join(staging, KERNEL_FILES.config));
  const capabilities = detectCapabilities(configText);

  const modulesDir = join(staging, KERNEL_FILES.modules);
  if (src.modulesDir) {
    progress({ kind: 'stage', stage: 'modules', message: 'installing kernel modules' });
    if (options.moveModules) await rename(src.modulesDir, modulesDir);
    else await cp(src.modulesDir, modulesDir, { recursive: true, verbatimSymlinks: true });
    await ensureDepmod(options.runner, modulesDir, version, staging);
  }

  const policy = options.initramfs ?? 'auto';
  let initrd: KernelManifest['initrd'];
  if (src.initrd && policy !== 'always') {
    await copyFile(src.initrd, join(staging, KERNEL_FILES.initrd));
    initrd = { builtBy: 'source' };
  } else if (policy === 'always' || (policy === 'auto' && capabilities.needsInitramfs)) {
    if (!src.modulesDir) {
      throw badRequest(`kernel ${version} has its virtio drivers as modules but no modules came with it`, {
        hint: 'import the kernel together with its lib/modules/<version> tree, or supply an initrd.img',
      });
    }
    progress({ kind: 'stage', stage: 'initramfs', message: 'building the initramfs' });
    const built = await buildInitramfs({
      modulesDir,
      busyboxPath: options.busyboxPath,
      ext4Modular: capabilities.ext4 === 'module',
    });
    if (built.modules.missing.length > 0) {
      progress({
        kind: 'log',
        level: 'warn',
        message: `modules not in this kernel: ${built.modules.missing.join(', ')}`,
      });
    }
    await writeFile(join(staging, KERNEL_FILES.initrd), built.data);
    initrd = { builtBy: 'banger', modules: built.modules.ordered.map((p) => p.split('/').pop() ?? p) };
  }

  const files: KernelManifest['files'] = {};
  for (const f of [KERNEL_FILES.vmlinuz, KERNEL_FILES.vmlinux, KERNEL_FILES.initrd, KERNEL_FILES.config]) {
    if (existsSync(join(staging, f))) files[f] = await hashFile(join(staging, f));
  }
  return {
    schemaVersion: 1,
    name: options.name,
    distro: options.distro,
    arch: options.arch,
    version,
    source: options.source,
    importedAt: new Date().toISOString(),
    files,
    modules: existsSync(modulesDir) ? await hashTree(modulesDir) : undefined,
    initrd,
    capabilities,
  };
}
