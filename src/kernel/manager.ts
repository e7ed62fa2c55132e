import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  findCatalogEntry,
  type KernelCatalog,
  type KernelCatalogEntry,
  loadKernelCatalog,
} from '../catalog/kernels/index.js';
import type { Runner } from '../host/index.js';
import { badRequest } from '../model/errors.js';
import { validateArtifactName } from '../model/names.js';
import { type ProgressSink, silentProgress } from '../model/progress.js';
import { type AssembleOptions, assembleKernel, type InitramfsPolicy } from './assemble.js';
import { refuseEscapingSymlinks } from './beneath.js';
import { downloadDebianPackage, extractDeb, resolveDebianKernelPackage } from './debian.js';
import { type KernelSourceTree, locateKernel } from './locate.js';
import type { KernelManifest, LocalKernel } from './manifest.js';
import { type BrokenKernel, createKernelStore, type KernelStore } from './store.js';
import { fetchKernelTarball } from './tarball.js';

/** What the kernel manager needs from the daemon's composition root. */
export interface KernelManagerOptions {
  /** Layout.kernelsDir */
  kernelsDir: string;
  runner: Runner;
  /** config.kernel_catalog: a file path or https URL replacing the embedded catalog. */
  catalogOverride?: string | undefined;
  /** A static busybox for the initramfs (default /bin/busybox from busybox-static). */
  busyboxPath?: string;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** Per-call options of the long-running operations. */
export interface KernelOpOptions {
  force?: boolean;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

/** Options of `kernel import`. */
export interface KernelImportOptions extends KernelOpOptions {
  distro?: string;
  arch?: string;
  version?: string;
  initramfs?: InitramfsPolicy;
}

/** A catalog entry with its local state, for `kernel list --available`. */
export interface AvailableKernel {
  entry: KernelCatalogEntry;
  state: 'pulled' | 'available';
  /** Download size when known (tarball entries; Debian packages as apt reports them). */
  sizeBytes: number | undefined;
}

/** The library behind `banger kernel …`: one object per daemon. */
export interface KernelManager {
  readonly store: KernelStore;
  catalog(): Promise<KernelCatalog>;
  list(): Promise<{ kernels: LocalKernel[]; broken: BrokenKernel[] }>;
  listAvailable(): Promise<AvailableKernel[]>;
  show(name: string): Promise<LocalKernel>;
  pull(name: string, options?: KernelOpOptions): Promise<LocalKernel>;
  remove(name: string): Promise<void>;
  importFromDir(name: string, dir: string, options?: KernelImportOptions): Promise<LocalKernel>;
  importFromDeb(name: string, debPath: string, options?: KernelImportOptions): Promise<LocalKernel>;
}

/** The host architecture in kernel terms (x86_64, aarch64). */
export function hostKernelArch(nodeArch: string = process.arch): string {
  return nodeArch === 'x64' ? 'x86_64' : nodeArch === 'arm64' ? 'aarch64' : nodeArch;
}

/** Creates the kernel manager over a store directory. */
export function createKernelManager(options: KernelManagerOptions): KernelManager {
  const store = createKernelStore({ kernelsDir: options.kernelsDir });
  const { runner } = options;
  const catalog = () => loadKernelCatalog({ override: options.catalogOverride, fetch: options.fetch });

  const assembleOpts = (
    name: string,
    o: KernelImportOptions,
    source: string,
    distro: string,
  ): AssembleOptions => ({
    name,
    distro: o.distro ?? distro,
    arch: o.arch ?? hostKernelArch(),
    version: o.version,
    source,
    runner,
    initramfs: o.initramfs,
    busyboxPath: options.busyboxPath,
    progress: o.progress,
  });

  /** Extracts a .deb inside the staging dir and assembles it; the scratch tree never reaches the store. */
  const fillFromDeb = async (
    staging: string,
    debPath: string,
    opts: AssembleOptions,
  ): Promise<KernelManifest> => {
    const work = join(staging, '.work');
    await mkdir(join(work, 'tree'), { recursive: true });
    try {
      (opts.progress ?? silentProgress)({
        kind: 'stage',
        stage: 'extract',
        message: `extracting ${debPath}`,
      });
      await extractDeb(runner, debPath, join(work, 'tree'));
      const src = await locateUnpacked(join(work, 'tree'), 'kernel package');
      if (!src) {
        throw badRequest(`${debPath} contains no kernel (no boot/vmlinuz-*)`, {
          hint: 'pass a linux-image-<version> package, not a metapackage or headers package',
        });
      }
      return await assembleKernel(staging, src, { ...opts, moveModules: true });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  };

  const pull = async (name: string, o: KernelOpOptions = {}): Promise<LocalKernel> => {
    validateArtifactName('kernel', name);
    const entry = findCatalogEntry(await catalog(), name);
    if (entry.arch !== hostKernelArch()) {
      throw badRequest(`kernel ${name} is for ${entry.arch}, this host is ${hostKernelArch()}`);
    }
    const progress = o.progress ?? silentProgress;
    if (entry.kind === 'debian-package') {
      progress({ kind: 'stage', stage: 'resolve', message: `resolving ${entry.package} with apt` });
      const pkg = await resolveDebianKernelPackage(runner, entry.package, o.signal);
      const source = `debian-package:${pkg.package}=${pkg.version}`;
      return store.install(name, o, async (staging) => {
        const dl = join(staging, '.download');
        await mkdir(dl);
        try {
          progress({ kind: 'stage', stage: 'download', message: `apt-get download ${pkg.package}` });
          const deb = await downloadDebianPackage(runner, pkg, dl, o.signal);
          return await fillFromDeb(
            staging,
            deb,
            assembleOpts(name, { ...o, initramfs: 'auto' }, source, entry.distro),
          );
        } finally {
          await rm(dl, { recursive: true, force: true });
        }
      });
    }
    return store.install(name, o, async (staging) => {
      const tree = join(staging, '.work');
      await mkdir(tree);
      try {
        await fetchKernelTarball({
          ...entry,
          destDir: tree,
          fetch: options.fetch,
          progress,
          signal: o.signal,
        });
        const src = await locateUnpacked(tree, 'kernel bundle');
        if (!src) throw badRequest(`kernel bundle ${entry.url} holds no vmlinux or vmlinuz`);
        return await assembleKernel(staging, src, {
          ...assembleOpts(name, o, `tarball:${entry.url}`, entry.distro),
          version: entry.kernelVersion,
          moveModules: true,
        });
      } finally {
        await rm(tree, { recursive: true, force: true });
      }
    });
  };

  return {
    store,
    catalog,
    list: () => store.list(),
    async listAvailable() {
      const out: AvailableKernel[] = [];
      for (const entry of (await catalog()).entries) {
        let sizeBytes: number | undefined;
        if (entry.kind === 'tarball') sizeBytes = entry.sizeBytes;
        else sizeBytes = await debianPackageSize(runner, entry.package);
        out.push({ entry, state: (await store.has(entry.name)) ? 'pulled' : 'available', sizeBytes });
      }
      return out;
    },
    show: (name) => store.get(name),
    pull,
    remove: (name) => store.remove(name),
    importFromDir(name, dir, o = {}) {
      validateArtifactName('kernel', name);
      const abs = resolve(dir);
      return store.install(name, o, async (staging) => {
        const src = await locateKernel(abs);
        if (!src) {
          throw badRequest(`no kernel in ${abs}`, {
            hint: 'the directory needs vmlinuz or vmlinux (optionally initrd.img, modules/, config), or boot/vmlinuz-<version>',
          });
        }
        return assembleKernel(staging, src, assembleOpts(name, o, `import:dir:${abs}`, 'unknown'));
      });
    },
    importFromDeb(name, debPath, o = {}) {
      validateArtifactName('kernel', name);
      const abs = resolve(debPath);
      return store.install(name, o, (staging) =>
        fillFromDeb(staging, abs, assembleOpts(name, o, `import:deb:${abs}`, 'debian')),
      );
    },
  };
}

/**
 * Locates the kernel in a tree a bundle or package made, once no symlink in it leads out (checked by what
 * is on disk, not by spelling). Its modules move into the store, so their links must stay inside them too.
 */
async function locateUnpacked(tree: string, what: string): Promise<KernelSourceTree | undefined> {
  await refuseEscapingSymlinks(tree, what);
  const src = await locateKernel(tree);
  if (src?.modulesDir) await refuseEscapingSymlinks(src.modulesDir, `${what} modules`);
  return src;
}

async function debianPackageSize(runner: Runner, name: string): Promise<number | undefined> {
  try {
    const pkg = await resolveDebianKernelPackage(runner, name);
    const show = await runner.run(
      ['apt-cache', 'show', '--no-all-versions', `${pkg.package}=${pkg.version}`],
      {
        allowFailure: true,
      },
    );
    const size = /^Size:\s*(\d+)/m.exec(show.stdout)?.[1];
    return size ? Number(size) : undefined;
  } catch {
    return undefined;
  }
}
