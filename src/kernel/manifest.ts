import { z } from 'zod';

/** The files of a kernel directory `<kernelsDir>/<name>/`, by role. */
export const KERNEL_FILES = {
  /** The compressed boot image (bzImage) as shipped; QEMU boots it. */
  vmlinuz: 'vmlinuz',
  /** The uncompressed ELF; Firecracker boots it. */
  vmlinux: 'vmlinux',
  initrd: 'initrd.img',
  config: 'config',
  modules: 'modules',
  manifest: 'manifest.json',
} as const;

const tristate = z.enum(['builtin', 'module', 'absent', 'unknown']);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** manifest.json, validated whenever it is read (a hand-edited or truncated one is reported, not trusted). */
export const kernelManifestSchema = z.object({
  schemaVersion: z.literal(1),
  name: z.string(),
  distro: z.string(),
  arch: z.string(),
  /** The kernel release, as `uname -r` prints it. */
  version: z.string(),
  /** Where it came from: `debian-package:<pkg>=<version>`, `tarball:<url>`, `import:dir:<path>`, `import:deb:<file>`. */
  source: z.string(),
  importedAt: z.string(),
  /** sha256 and size of each top-level file, by file name (vmlinuz, vmlinux, initrd.img, config). */
  files: z.record(z.string(), z.object({ sha256, size: z.number().int().nonnegative() })),
  /** The modules tree, summarized: a digest over every `path\0sha256\n` line in path order. */
  modules: z.object({ count: z.number().int(), bytes: z.number().int(), treeSha256: sha256 }).optional(),
  /** Whether initrd.img was built by banger (and from which modules) or supplied with the kernel. */
  initrd: z
    .object({ builtBy: z.enum(['banger', 'source']), modules: z.array(z.string()).optional() })
    .optional(),
  capabilities: z.object({
    configKnown: z.boolean(),
    virtioPci: tristate,
    virtioMmio: tristate,
    virtioBlk: tristate,
    virtioNet: tristate,
    virtioConsole: tristate,
    virtioRng: tristate,
    vsock: tristate,
    ext4: tristate,
    virtioMmioCmdlineDevices: z.boolean(),
    ipAutoconfig: z.boolean(),
    needsInitramfs: z.boolean(),
  }),
});

/** A local kernel's manifest. */
export type KernelManifest = z.infer<typeof kernelManifestSchema>;

/** A local kernel: its manifest plus absolute paths of what a VMM needs. */
export interface LocalKernel {
  manifest: KernelManifest;
  dir: string;
  /** The image QEMU should boot (vmlinuz when there is one, else vmlinux). */
  kernelPath: string;
  /** The ELF image for Firecracker, when there is one. */
  vmlinuxPath: string | undefined;
  initrdPath: string | undefined;
  modulesDir: string | undefined;
  /** Bytes on disk (all files, modules included). */
  sizeBytes: number;
}
