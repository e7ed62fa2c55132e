import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { operationFailed } from '../../model/errors.js';

/**
 * The modules a banger guest needs before its root is mounted, by module name: virtio transports (PCI for
 * QEMU q35, MMIO for microvm and Firecracker), disk, network, console (virtio-serial, the agent's fallback
 * channel), vsock and the entropy source. ext4 (and what it needs) is added when it is modular.
 */
export const STAGE1_MODULES = [
  'virtio_pci',
  'virtio_mmio',
  'virtio_blk',
  'virtio_net',
  'virtio_console',
  'virtio_rng',
  'vmw_vsock_virtio_transport',
] as const;

/** The modules ext4 root needs when the kernel builds ext4 as a module. */
export const EXT4_MODULES = ['ext4', 'crc32c_generic'] as const;

/** Module names are compared with '-' and '_' folded, as the kernel does. */
export function normalizeModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

function moduleNameOfPath(path: string): string {
  return normalizeModuleName(basename(path).replace(/\.ko(\.(gz|xz|zst))?$/, ''));
}

/** modules.dep as a map: module name -> its path (relative to the modules dir) and its dependency paths. */
export interface ModuleIndex {
  byName: Map<string, { path: string; deps: string[] }>;
  builtin: Set<string>;
}

/** Parses modules.dep (`path: dep dep ...`) and modules.builtin. */
export function parseModuleIndex(modulesDep: string, modulesBuiltin = ''): ModuleIndex {
  const byName = new Map<string, { path: string; deps: string[] }>();
  for (const line of modulesDep.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    byName.set(moduleNameOfPath(path), { path, deps });
  }
  const builtin = new Set(
    modulesBuiltin
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map(moduleNameOfPath),
  );
  return { byName, builtin };
}

/** Reads modules.dep and modules.builtin from a modules dir (`lib/modules/<version>`). */
export async function readModuleIndex(modulesDir: string): Promise<ModuleIndex> {
  let dep: string;
  try {
    dep = await readFile(join(modulesDir, 'modules.dep'), 'utf8');
  } catch (err) {
    throw operationFailed(`no modules.dep in ${modulesDir}`, {
      hint: 'run depmod -b on the kernel tree first',
      cause: err,
    });
  }
  const builtin = await readFile(join(modulesDir, 'modules.builtin'), 'utf8').catch(() => '');
  return parseModuleIndex(dep, builtin);
}

/** What a module request resolved to. */
export interface ModulePlan {
  /** Module paths relative to the modules dir, each after everything it depends on. */
  ordered: string[];
  /** Requested names the kernel has built in (nothing to load). */
  builtin: string[];
  /** Requested names the kernel has neither as a module nor built in. */
  missing: string[];
}

/**
 * The dependency closure of `wanted`, in load order: a depth-first walk that emits a module after all of
 * its dependencies, so `insmod` in list order never meets an unknown symbol (virtio before virtio_ring
 * fails with `Unknown symbol virtio_break_device`).
 */
export function planModules(index: ModuleIndex, wanted: readonly string[]): ModulePlan {
  const pathToName = new Map<string, string>();
  for (const [name, entry] of index.byName) pathToName.set(entry.path, name);
  const ordered: string[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (name: string): void => {
    if (done.has(name)) return;
    const entry = index.byName.get(name);
    if (!entry) return;
    if (visiting.has(name)) throw operationFailed(`modules.dep has a dependency cycle through ${name}`);
    visiting.add(name);
    for (const dep of entry.deps) visit(pathToName.get(dep) ?? moduleNameOfPath(dep));
    visiting.delete(name);
    done.add(name);
    ordered.push(entry.path);
  };
  const builtin: string[] = [];
  const missing: string[] = [];
  for (const raw of wanted) {
    const name = normalizeModuleName(raw);
    if (index.byName.has(name)) visit(name);
    else if (index.builtin.has(name)) builtin.push(name);
    else missing.push(name);
  }
  return { ordered, builtin, missing };
}
