import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** The pieces of a kernel found in a directory tree, before they are copied into the store. */
export interface KernelSourceTree {
  /** vmlinuz (bzImage) or vmlinux (ELF). */
  kernelImage: string;
  initrd: string | undefined;
  /** A `lib/modules/<version>`-style directory (with or without modules.dep). */
  modulesDir: string | undefined;
  config: string | undefined;
  /** The release, when the layout names it (modules dir or `vmlinuz-<version>`). */
  version: string | undefined;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

async function versionedDirs(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/**
 * Finds a kernel in `root`, which is either banger's layout (`vmlinuz`|`vmlinux`|`bzImage`, `initrd.img`,
 * `modules/`, `config`) or an installed-system layout such as an extracted Debian package
 * (`boot/vmlinuz-<v>`, `boot/config-<v>`, `lib/modules/<v>/`). Undefined when there is no kernel image.
 */
export async function locateKernel(root: string): Promise<KernelSourceTree | undefined> {
  for (const name of ['vmlinuz', 'vmlinux', 'bzImage']) {
    const path = join(root, name);
    if (await isFile(path)) {
      const initrd = join(root, 'initrd.img');
      const modules = join(root, 'modules');
      const config = join(root, 'config');
      return {
        kernelImage: path,
        initrd: (await isFile(initrd)) ? initrd : undefined,
        modulesDir: existsSync(modules) ? modules : undefined,
        config: (await isFile(config)) ? config : undefined,
        version: undefined,
      };
    }
  }
  const boot = join(root, 'boot');
  const images = existsSync(boot)
    ? (await readdir(boot)).filter((n) => /^(vmlinuz|vmlinux)-/.test(n)).sort()
    : [];
  const image = images.at(-1);
  if (!image) return undefined;
  const version = image.replace(/^vmlinu[zx]-/, '');
  let modulesDir: string | undefined;
  for (const base of [join(root, 'lib', 'modules'), join(root, 'usr', 'lib', 'modules')]) {
    if ((await versionedDirs(base)).includes(version)) modulesDir = join(base, version);
  }
  const config = join(boot, `config-${version}`);
  const initrd = join(boot, `initrd.img-${version}`);
  return {
    kernelImage: join(boot, image),
    initrd: (await isFile(initrd)) ? initrd : undefined,
    modulesDir,
    config: (await isFile(config)) ? config : undefined,
    version,
  };
}
