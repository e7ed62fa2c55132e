/**
 * What a kernel can do, read from its build config, so the VMM layer decides from data (never from the
 * kernel's name): Firecracker needs an ELF vmlinux, MMIO devices from the command line and, without an
 * initramfs, built-in virtio; QEMU q35 is happy with modules loaded by banger's initramfs.
 */

/** How the kernel has a feature: compiled in, as a loadable module, absent, or unknown (no config). */
export type Tristate = 'builtin' | 'module' | 'absent' | 'unknown';

export interface KernelCapabilities {
  /** Whether the kernel's config was available (otherwise every tristate is 'unknown'). */
  configKnown: boolean;
  virtioPci: Tristate;
  virtioMmio: Tristate;
  virtioBlk: Tristate;
  virtioNet: Tristate;
  virtioConsole: Tristate;
  virtioRng: Tristate;
  /** The virtio vsock transport (guest side). */
  vsock: Tristate;
  ext4: Tristate;
  /** CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES: `virtio_mmio.device=` works (Firecracker relies on it). */
  virtioMmioCmdlineDevices: boolean;
  /** CONFIG_IP_PNP: the kernel's own `ip=` works; when false, banger's initramfs reads `banger.ip=`. */
  ipAutoconfig: boolean;
  /** True when disk or network drivers are modules: the kernel cannot boot a banger VM without an initramfs. */
  needsInitramfs: boolean;
}

const OPTIONS = {
  virtioPci: 'VIRTIO_PCI',
  virtioMmio: 'VIRTIO_MMIO',
  virtioBlk: 'VIRTIO_BLK',
  virtioNet: 'VIRTIO_NET',
  virtioConsole: 'VIRTIO_CONSOLE',
  virtioRng: 'HW_RANDOM_VIRTIO',
  vsock: 'VIRTIO_VSOCKETS',
  ext4: 'EXT4_FS',
} as const;

/** Parses a kernel `.config` into a map of option name (without CONFIG_) to value ('y', 'm', '"str"', ...). */
export function parseKernelConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) out.set(m[1], m[2]);
  }
  return out;
}

function tristate(config: Map<string, string> | undefined, option: string): Tristate {
  if (!config) return 'unknown';
  const value = config.get(option);
  if (value === 'y') return 'builtin';
  if (value === 'm') return 'module';
  return 'absent';
}

/** Capabilities from a config text; `undefined` (no config shipped) gives all-unknown. */
export function detectCapabilities(configText: string | undefined): KernelCapabilities {
  const config = configText === undefined ? undefined : parseKernelConfig(configText);
  const caps = {
    configKnown: config !== undefined,
    virtioMmioCmdlineDevices: config?.get('VIRTIO_MMIO_CMDLINE_DEVICES') === 'y',
    ipAutoconfig: config?.get('IP_PNP') === 'y',
  } as KernelCapabilities;
  for (const [key, option] of Object.entries(OPTIONS)) {
    caps[key as keyof typeof OPTIONS] = tristate(config, option);
  }
  caps.needsInitramfs = [caps.virtioBlk, caps.virtioNet, caps.ext4].includes('module');
  return caps;
}
