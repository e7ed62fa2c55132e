import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Mutex } from 'async-mutex';
import writeFileAtomic from 'write-file-atomic';
import { alreadyExists, notFound, operationFailed } from '../model/errors.js';
import { validateArtifactName } from '../model/names.js';
import { KERNEL_FILES, type KernelManifest, kernelManifestSchema, type LocalKernel } from './manifest.js';

/** A kernel directory that exists but cannot be read as a kernel (listed, never fatal for a listing). */
export interface BrokenKernel {
  name: string;
  reason: string;
}

/** The kernel store: one directory per kernel under `kernelsDir`, installed whole or not at all. */
export interface KernelStore {
  readonly kernelsDir: string;
  /** Every local kernel, sorted by name, plus the directories that are not readable kernels. */
  list(): Promise<{ kernels: LocalKernel[]; broken: BrokenKernel[] }>;
  /** One kernel; `not_found` when absent. */
  get(name: string): Promise<LocalKernel>;
  has(name: string): Promise<boolean>;
  /** Deletes a kernel; `not_found` when absent. */
  remove(name: string): Promise<void>;
  /**
   * Fills a fresh staging directory with `fill` and renames it into place under the name's lock. Refuses an
   * existing name unless `force`; on any failure the staging directory is removed and the store is unchanged.
   */
  install(
    name: string,
    options: { force?: boolean },
    fill: (stagingDir: string) => Promise<KernelManifest>,
  ): Promise<LocalKernel>;
  /** Runs `fn` holding the per-name lock (pull, import and delete of one name never interleave). */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Removes staging and trash directories a crash left behind; call once at daemon start. */
  sweep(): Promise<void>;
}

async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** Reads one kernel directory into a LocalKernel; throws with the reason when it is not a valid kernel. */
export async function readKernelDir(dir: string): Promise<LocalKernel> {
  const raw = await readFile(join(dir, KERNEL_FILES.manifest), 'utf8');
  const manifest = kernelManifestSchema.parse(JSON.parse(raw));
  const has = (f: string) => existsSync(join(dir, f));
  const kernelFile = has(KERNEL_FILES.vmlinuz) ? KERNEL_FILES.vmlinuz : KERNEL_FILES.vmlinux;
  if (!has(kernelFile)) throw new Error('no vmlinuz or vmlinux');
  return {
    manifest,
    dir,
    kernelPath: join(dir, kernelFile),
    vmlinuxPath: has(KERNEL_FILES.vmlinux) ? join(dir, KERNEL_FILES.vmlinux) : undefined,
    initrdPath: has(KERNEL_FILES.initrd) ? join(dir, KERNEL_FILES.initrd) : undefined,
    modulesDir: has(KERNEL_FILES.modules) ? join(dir, KERNEL_FILES.modules) : undefined,
    sizeBytes: await dirSize(dir),
  };
}

/** Creates the store over `kernelsDir` (created 0700 on first install). */
export function createKernelStore(options: { kernelsDir: string }): KernelStore {
  const { kernelsDir } = options;
  const locks = new Map<string, Mutex>();
  const lockOf = (name: string) => {
    let m = locks.get(name);
    if (!m) {
      m = new Mutex();
      locks.set(name, m);
    }
    return m;
  };
  const withLock = <T>(name: string, fn: () => Promise<T>) => lockOf(name).runExclusive(fn);
  const pathOf = (name: string) => join(kernelsDir, validateArtifactName('kernel', name));

  const get = async (name: string): Promise<LocalKernel> => {
    const dir = pathOf(name);
    if (!existsSync(dir)) {
      throw notFound(`kernel ${name} not found`, {
        hint: 'see `banger kernel list`; pull one with `banger kernel pull`',
      });
    }
    try {
      return await readKernelDir(dir);
    } catch (err) {
      throw operationFailed(
        `kernel ${name} is damaged: ${err instanceof Error ? err.message : String(err)}`,
        {
          hint: `remove it with \`banger kernel rm ${name}\` and pull or import it again`,
          cause: err,
        },
      );
    }
  };

  return {
    kernelsDir,
    async list() {
      const kernels: LocalKernel[] = [];
      const broken: BrokenKernel[] = [];
      const entries = existsSync(kernelsDir) ? await readdir(kernelsDir, { withFileTypes: true }) : [];
      for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
        try {
          kernels.push(await readKernelDir(join(kernelsDir, entry.name)));
        } catch (err) {
          broken.push({ name: entry.name, reason: err instanceof Error ? err.message : String(err) });
        }
      }
      return { kernels, broken };
    },
    get,
    async has(name) {
      return existsSync(pathOf(name));
    },
    async remove(name) {
      const dir = pathOf(name);
      await withLock(name, async () => {
        if (!existsSync(dir))
          throw notFound(`kernel ${name} not found`, { hint: 'see `banger kernel list`' });
        // Rename first so a half-deleted directory never looks like a kernel.
        const trash = join(kernelsDir, `.trash-${name}-${randomBytes(4).toString('hex')}`);
        await rename(dir, trash);
        await rm(trash, { recursive: true, force: true });
      });
    },
    async install(name, installOptions, fill) {
      const dir = pathOf(name);
      return withLock(name, async () => {
        if (existsSync(dir) && !installOptions.force) {
          throw alreadyExists(`kernel ${name} already exists`, {
            hint: 'use --force to replace it, or `banger kernel rm` first',
          });
        }
        await mkdir(kernelsDir, { recursive: true, mode: 0o700 });
        const staging = join(kernelsDir, `.staging-${name}-${randomBytes(4).toString('hex')}`);
        await mkdir(staging, { mode: 0o755 });
        try {
          const manifest = await fill(staging);
          await writeFileAtomic(
            join(staging, KERNEL_FILES.manifest),
            `${JSON.stringify(manifest, null, 2)}\n`,
          );
          if (existsSync(dir)) {
            const trash = join(kernelsDir, `.trash-${name}-${randomBytes(4).toString('hex')}`);
            await rename(dir, trash);
            await rename(staging, dir);
            await rm(trash, { recursive: true, force: true });
          } else {
            await rename(staging, dir);
          }
        } catch (err) {
          await rm(staging, { recursive: true, force: true });
          throw err;
        }
        return get(name);
      });
    },
    withLock,
    async sweep() {
      if (!existsSync(kernelsDir)) return;
      for (const entry of await readdir(kernelsDir)) {
        if (entry.startsWith('.staging-') || entry.startsWith('.trash-')) {
          await rm(join(kernelsDir, entry), { recursive: true, force: true });
        }
      }
    },
  };
}
