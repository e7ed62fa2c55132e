import type { z } from 'zod';
import type { KernelManager, LocalKernel } from '../../kernel/index.js';
import type { kernelInfoSchema } from '../../rpc/methods/kernel.js';
import type { HandlerGroup } from './types.js';

type KernelInfo = z.infer<typeof kernelInfoSchema>;

/** The wire shape of a local kernel: its manifest flattened with its paths. */
export function toKernelInfo(k: LocalKernel): KernelInfo {
  const m = k.manifest;
  return {
    name: m.name,
    distro: m.distro,
    arch: m.arch,
    version: m.version,
    source: m.source,
    importedAt: m.importedAt,
    dir: k.dir,
    kernelPath: k.kernelPath,
    vmlinuxPath: k.vmlinuxPath,
    initrdPath: k.initrdPath,
    modulesDir: k.modulesDir,
    sizeBytes: k.sizeBytes,
    files: m.files,
    capabilities: m.capabilities,
  };
}

/** `kernel.*` handlers over the kernel manager. */
export function kernelHandlers(deps: { kernels: KernelManager }): HandlerGroup<'kernel'> {
  const { kernels } = deps;
  return {
    'kernel.list': async ({ available }) => {
      const { kernels: local, broken } = await kernels.list();
      const result = { kernels: local.map(toKernelInfo), broken };
      if (!available) return result;
      const entries = await kernels.listAvailable();
      return {
        ...result,
        available: entries.map((a) => ({
          name: a.entry.name,
          kind: a.entry.kind,
          distro: a.entry.distro,
          arch: a.entry.arch,
          description: a.entry.description,
          state: a.state,
          sizeBytes: a.sizeBytes,
        })),
      };
    },
    'kernel.show': async ({ name }) => ({ kernel: toKernelInfo(await kernels.show(name)) }),
    'kernel.pull': async ({ name, force }, ctx) => ({
      kernel: toKernelInfo(await kernels.pull(name, { force, progress: ctx.progress, signal: ctx.signal })),
    }),
    'kernel.delete': async ({ name }) => {
      await kernels.remove(name);
      return { name };
    },
    'kernel.import': async ({ name, from, deb, force }, ctx) => {
      const options = { force, progress: ctx.progress, signal: ctx.signal };
      const kernel = from
        ? await kernels.importFromDir(name, from, options)
        : await kernels.importFromDeb(name, deb as string, options);
      return { kernel: toKernelInfo(kernel) };
    },
  };
}
