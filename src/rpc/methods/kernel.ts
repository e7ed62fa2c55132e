import { z } from 'zod';
import { method } from './define.js';

const tristate = z.enum(['builtin', 'module', 'absent', 'unknown']);

/** A local kernel as the CLI shows it (the store's manifest plus where its files are). */
export const kernelInfoSchema = z.object({
  name: z.string(),
  distro: z.string(),
  arch: z.string(),
  version: z.string(),
  source: z.string(),
  importedAt: z.string(),
  dir: z.string(),
  kernelPath: z.string(),
  vmlinuxPath: z.string().optional(),
  initrdPath: z.string().optional(),
  modulesDir: z.string().optional(),
  sizeBytes: z.number(),
  files: z.record(z.string(), z.object({ sha256: z.string(), size: z.number() })),
  capabilities: z.record(z.string(), z.union([tristate, z.boolean()])),
});

export const availableKernelSchema = z.object({
  name: z.string(),
  kind: z.string(),
  distro: z.string(),
  arch: z.string(),
  description: z.string().optional(),
  state: z.enum(['pulled', 'available']),
  sizeBytes: z.number().optional(),
});

const name = z.string().min(1);

/** `kernel.*` methods. */
export const kernelMethods = {
  'kernel.list': method(() => ({
    params: z.strictObject({ available: z.boolean().default(false) }),
    result: z.object({
      kernels: z.array(kernelInfoSchema),
      broken: z.array(z.object({ name: z.string(), reason: z.string() })),
      available: z.array(availableKernelSchema).optional(),
    }),
    summary: 'Local kernels; with available, the catalog entries and whether each is pulled.',
  })),
  'kernel.show': method(() => ({
    params: z.strictObject({ name }),
    result: z.object({ kernel: kernelInfoSchema }),
    summary: 'One local kernel with files, checksums and capabilities.',
  })),
  'kernel.pull': method(() => ({
    params: z.strictObject({ name, force: z.boolean().default(false) }),
    result: z.object({ kernel: kernelInfoSchema }),
    summary: 'Fetch a catalog kernel into the store (progress events); force replaces a pulled one.',
  })),
  'kernel.delete': method(() => ({
    params: z.strictObject({ name }),
    result: z.object({ name: z.string() }),
    summary: 'Remove a local kernel.',
  })),
  'kernel.import': method(() => ({
    params: z
      .strictObject({
        name,
        from: z.string().optional(),
        deb: z.string().optional(),
        force: z.boolean().default(false),
      })
      .refine((p) => (p.from === undefined) !== (p.deb === undefined), 'give exactly one of from or deb'),
    result: z.object({ kernel: kernelInfoSchema }),
    summary:
      'Import a kernel from a directory or a Debian kernel package (absolute paths on the daemon host).',
  })),
} as const;
