import { copyFile, link, mkdir, stat } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import type { Runner } from '../../../host/index.js';
import type { KernelManager, LocalKernel } from '../../../kernel/index.js';
import { BangerError, badRequest } from '../../../model/errors.js';
import type { ImageArtifacts } from '../../../model/image.js';
import type { ProgressSink } from '../../../model/progress.js';
import { IMAGE_FILES } from './layout.js';

/** How the user chose an image's kernel: a kernel store name, or host files (the original's triple). */
export interface KernelInputs {
  kernelRef?: string | undefined;
  kernel?: string | undefined;
  initrd?: string | undefined;
  modules?: string | undefined;
}

/** `--kernel-ref` and the triple exclude each other (checked by the CLI and again here, at the edge). */
export function checkKernelInputs(k: KernelInputs): void {
  if (k.kernelRef && (k.kernel || k.initrd || k.modules)) {
    throw badRequest('--kernel-ref cannot be combined with --kernel/--initrd/--modules');
  }
  if (!k.kernel && (k.initrd || k.modules)) throw badRequest('--initrd and --modules need --kernel');
  for (const p of [k.kernel, k.initrd, k.modules]) {
    if (p !== undefined && !isAbsolute(p)) throw badRequest(`kernel path ${p} must be absolute`);
  }
}

/** The local kernel called `name`, pulled from the kernel catalog when it is not local yet. */
export async function ensureKernel(
  kernels: KernelManager,
  name: string,
  opts: { progress?: ProgressSink; signal?: AbortSignal },
): Promise<LocalKernel> {
  try {
    return await kernels.show(name);
  } catch (err) {
    if (!(err instanceof BangerError) || err.code !== 'not_found') throw err;
  }
  opts.progress?.({ kind: 'stage', stage: 'kernel', message: `pulling kernel ${name}` });
  try {
    return await kernels.pull(name, opts);
  } catch (err) {
    if (err instanceof BangerError && err.code === 'not_found') {
      throw new BangerError('not_found', `kernel ${name} is neither local nor in the kernel catalog`, {
        hint: "run 'banger kernel list' (and 'banger kernel list --available')",
        cause: err,
      });
    }
    throw err;
  }
}

/** Hardlinks a file into the image (a later `kernel rm` cannot break it), copying across filesystems. */
async function stageFile(src: string, dest: string): Promise<void> {
  await link(src, dest).catch(() => copyFile(src, dest));
}

async function mustExist(path: string, what: string): Promise<void> {
  await stat(path).catch((err: unknown) => {
    throw badRequest(`${what} ${path} does not exist`, { cause: err });
  });
}

/**
 * Stages the chosen kernel into `<staging>/kernel/` and returns the artifact fields, with paths as they
 * will read after `staging` is renamed to `finalDir`. No kernel chosen: nothing staged, and VMs boot the
 * configured default kernel.
 */
export async function stageKernel(o: {
  inputs: KernelInputs;
  kernels: KernelManager;
  runner: Runner;
  staging: string;
  finalDir: string;
  progress?: ProgressSink;
  signal?: AbortSignal;
}): Promise<Pick<ImageArtifacts, 'kernelRef' | 'kernelPath' | 'initrdPath' | 'modulesDir'>> {
  const { inputs } = o;
  let kernelPath: string | undefined;
  let initrdPath: string | undefined;
  let modulesDir: string | undefined;
  if (inputs.kernelRef) {
    const k = await ensureKernel(o.kernels, inputs.kernelRef, o);
    kernelPath = k.kernelPath;
    initrdPath = k.initrdPath;
  } else if (inputs.kernel) {
    kernelPath = inputs.kernel;
    initrdPath = inputs.initrd;
    modulesDir = inputs.modules;
    await mustExist(kernelPath, 'kernel');
    if (initrdPath) await mustExist(initrdPath, 'initrd');
    if (modulesDir) await mustExist(modulesDir, 'modules directory');
  } else {
    return {};
  }
  o.progress?.({
    kind: 'stage',
    stage: 'kernel',
    message: `staging kernel ${inputs.kernelRef ?? kernelPath}`,
  });
  const dir = join(o.staging, IMAGE_FILES.kernelDir);
  const finalDir = join(o.finalDir, IMAGE_FILES.kernelDir);
  await mkdir(dir, { mode: 0o755 });
  const out: Pick<ImageArtifacts, 'kernelRef' | 'kernelPath' | 'initrdPath' | 'modulesDir'> = {
    kernelRef: inputs.kernelRef,
  };
  const kname = basename(kernelPath);
  await stageFile(kernelPath, join(dir, kname));
  out.kernelPath = join(finalDir, kname);
  if (initrdPath) {
    await stageFile(initrdPath, join(dir, 'initrd.img'));
    out.initrdPath = join(finalDir, 'initrd.img');
  }
  if (modulesDir) {
    await o.runner.run(['cp', '-a', '--', modulesDir, join(dir, 'modules')], { signal: o.signal });
    out.modulesDir = join(finalDir, 'modules');
  }
  return out;
}
