import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { packageRoot } from '../../config/index.js';
import { operationFailed } from '../../model/errors.js';
import { type CpioEntry, writeCpio } from './cpio.js';
import { EXT4_MODULES, type ModulePlan, planModules, readModuleIndex, STAGE1_MODULES } from './modules.js';

/** Where banger's stage-1 init lives (shipped beside the code, not generated). */
export function initScriptPath(): string {
  return join(packageRoot(), 'src', 'kernel', 'assets', 'init.sh');
}

/** The default busybox: Debian's busybox-static puts a static binary at /bin/busybox. */
export const DEFAULT_BUSYBOX = '/bin/busybox';

export interface InitramfsOptions {
  /** `lib/modules/<version>` of the kernel, with modules.dep (run depmod first). */
  modulesDir: string;
  /** A statically linked busybox. */
  busyboxPath?: string;
  /** Extra module names to load after the stage-1 set. */
  extraModules?: readonly string[];
  /** Whether ext4 is a module in this kernel (then ext4 and its dependencies are loaded too). */
  ext4Modular?: boolean;
}

export interface Initramfs {
  /** The gzip-compressed newc archive. */
  data: Buffer;
  /** What was (and was not) put in it. */
  modules: ModulePlan;
}

/** True when an ELF binary has no PT_INTERP segment, i.e. it runs without a dynamic loader. */
export function isStaticElf(bytes: Buffer): boolean {
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46) return false;
  if (bytes[4] !== 2) return false; // ELFCLASS64 only: banger guests are 64-bit
  const phoff = Number(bytes.readBigUInt64LE(0x20));
  const phentsize = bytes.readUInt16LE(0x36);
  const phnum = bytes.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > bytes.length) return false;
    if (bytes.readUInt32LE(off) === 3) return false; // PT_INTERP
  }
  return true;
}

/**
 * Builds banger's initramfs: busybox, /init (assets/init.sh), /dev/console, and the stage-1 modules with
 * their dependencies, flattened into /lib/modules and listed in load order in /etc/banger/modules.
 */
export async function buildInitramfs(options: InitramfsOptions): Promise<Initramfs> {
  const busyboxPath = options.busyboxPath ?? DEFAULT_BUSYBOX;
  const busybox = await readFile(busyboxPath).catch((err: unknown) => {
    throw operationFailed(`cannot read busybox at ${busyboxPath}`, {
      hint: 'install the busybox-static package (apt-get install busybox-static)',
      cause: err,
    });
  });
  if (!isStaticElf(busybox)) {
    throw operationFailed(`${busyboxPath} is not a static 64-bit ELF binary`, {
      hint: 'install the busybox-static package: the initramfs has no libc',
    });
  }
  const init = await readFile(initScriptPath());
  const index = await readModuleIndex(options.modulesDir);
  const wanted = [
    ...STAGE1_MODULES,
    ...(options.ext4Modular ? EXT4_MODULES : []),
    ...(options.extraModules ?? []),
  ];
  const plan = planModules(index, wanted);

  const entries: CpioEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'dir', path: 'dev' },
    // The kernel opens /dev/console for init's stdio before init can mount devtmpfs.
    { type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'dir', path: 'etc' },
    { type: 'dir', path: 'etc/banger' },
    { type: 'dir', path: 'lib' },
    { type: 'dir', path: 'lib/modules' },
    { type: 'dir', path: 'newroot' },
    { type: 'dir', path: 'proc' },
    { type: 'dir', path: 'sbin' },
    { type: 'dir', path: 'sys' },
    { type: 'dir', path: 'usr' },
    { type: 'dir', path: 'usr/bin' },
    { type: 'dir', path: 'usr/sbin' },
    { type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { type: 'file', path: 'init', data: init, mode: 0o755 },
  ];
  const names: string[] = [];
  for (const rel of plan.ordered) {
    const data = await readFile(join(options.modulesDir, rel));
    const name = rel.split('/').pop() ?? rel;
    if (!name.endsWith('.ko')) {
      throw operationFailed(`module ${rel} is compressed; busybox insmod needs plain .ko files`, {
        hint: 'decompress the kernel modules (or use a kernel built with CONFIG_MODULE_COMPRESS_NONE)',
      });
    }
    entries.push({ type: 'file', path: `lib/modules/${name}`, data, mode: 0o644 });
    names.push(name);
  }
  entries.push({
    type: 'file',
    path: 'etc/banger/modules',
    data: Buffer.from(names.map((n) => `${n}\n`).join('')),
  });
  return { data: gzipSync(writeCpio(entries), { level: 9 }), modules: plan };
}
