import { z } from 'zod';

/**
 * config.toml, every key optional. Each key has its default here and one line in docs/config.md.
 * Unknown keys are rejected (strict objects) so a typo never silently does nothing.
 */
const duration = z.string().regex(/^\d+(ms|s|m|h)?$/, 'a duration such as "0", "90s", "15m" or "24h"');
const size = z.string().regex(/^\d+(\.\d+)?\s*[a-zA-Z]*$/, 'a size such as "512MiB" or "8G"');
const ipv4 = z.ipv4();

/** A config duration ("0", "500ms", "90s", "15m", "24h"; a bare number is seconds) in milliseconds. */
export function durationMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] as number;
  return Number(m[1]) * unit;
}

export const vmDefaultsSchema = z.strictObject({
  /** Virtual CPUs per VM. */
  vcpu: z.number().int().min(1).max(64).default(2),
  /** Guest memory in MiB. */
  memory_mib: z
    .number()
    .int()
    .min(128)
    .max(1024 * 1024)
    .default(1024),
  /** Size of the per-VM work disk mounted at /root. */
  disk_size: size.default('8G'),
  /** Size of the copy-on-write overlay over the image's root filesystem. */
  system_overlay_size: size.default('8G'),
});

/** No `..` segment: a synced path means what it says, on the host and in the guest. */
const noDotDot = (p: string) => !p.split('/').includes('..');

/** One host file or directory copied into the guest at every start (docs/config.md, file_sync). */
export const fileSyncSchema = z.strictObject({
  /** Absolute, or `~/…` (the daemon owner's home); never `~user/…` or relative. */
  host: z
    .string()
    .regex(/^(\/|~\/)./, 'an absolute path or ~/path on the host')
    .refine(noDotDot, 'no ".." in the path'),
  /** `~/…` (root's home, the work disk) or absolute. */
  guest: z
    .string()
    .regex(/^(\/|~\/)./, 'an absolute path or ~/path in the guest (~ is /root)')
    .refine(noDotDot, 'no ".." in the path'),
  /** Octal mode of a synced file (default 0600); a directory keeps its own modes. */
  mode: z
    .string()
    .regex(/^0?[0-7]{3,4}$/, 'an octal mode such as "0600" or "644"')
    .optional(),
});

export const configSchema = z.strictObject({
  /** debug | info | warn | error; env BANGER_LOG_LEVEL overrides. */
  log_level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /** Which VMM runs guests: auto picks Firecracker when its binary and KVM work, else QEMU. */
  vmm: z.enum(['auto', 'firecracker', 'qemu']).default('auto'),
  /** QEMU acceleration: auto uses KVM when it can really run a guest, else TCG with a notice. */
  accel: z.enum(['auto', 'kvm', 'tcg']).default('auto'),
  /**
   * probe: KVM "works" once a guest kernel booted under it (QEMU, cached). skip: trust KVM untested and let
   * the VMM fail at start when it does not work (a Firecracker-only host has no QEMU to probe with).
   */
  kvm_check: z.enum(['probe', 'skip']).default('probe'),
  /** QEMU binary; resolved from PATH when empty. */
  qemu_bin: z.string().default('qemu-system-x86_64'),
  /** Firecracker binary; resolved from PATH when empty. */
  firecracker_bin: z.string().default('firecracker'),
  jailer_bin: z.string().default('/usr/bin/jailer'),
  jailer_enabled: z.boolean().default(true),
  /** Defaults to <state_dir>/jail; must share a filesystem with the image store. */
  jailer_chroot_base: z.string().optional(),
  /** Defaults to <state_dir>/ssh/id_ed25519, generated on first use. */
  ssh_key_path: z.string().optional(),
  default_image_name: z.string().default('debian-bookworm'),
  default_kernel_name: z.string().default('debian-cloud-amd64'),
  /** Stop VMs untouched for this long; "0" disables. */
  auto_stop_stale_after: duration.default('0'),
  /** How often the daemon samples every running VM's stats (and applies auto_stop_stale_after); at least 1s. */
  stats_poll_interval: duration.refine((d) => durationMs(d) >= 1000, 'at least "1s"').default('30s'),
  /** Where the daemon's DNS server for `<name>.vm` listens (UDP and TCP): a loopback IPv4 address and port. */
  dns_addr: z
    .string()
    .regex(
      /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d{1,5}$/,
      'a loopback address and port such as "127.0.0.1:42069"',
    )
    .refine(
      (a) => ipv4.safeParse(a.split(':')[0]).success && Number(a.split(':')[1]) <= 65535,
      'a valid address and port',
    )
    .default('127.0.0.1:42069'),
  bridge_name: z
    .string()
    .regex(/^br-fc(-[a-z0-9-]+)?$/, 'br-fc or br-fc-<suffix>')
    .max(15)
    .default('br-fc'),
  /** Use an existing bridge_name banger did not create, as it is: never re-addressed, set up or deleted. */
  adopt_bridge: z.boolean().default(false),
  bridge_ip: ipv4.default('172.16.0.1'),
  cidr: z.number().int().min(8).max(30).default(24),
  tap_pool_size: z.number().int().min(0).max(64).default(2),
  default_dns: ipv4.default('1.1.1.1'),
  /** Network namespace in which bridge, taps, NAT and VMMs live; empty means the host's own. */
  netns: z.string().default(''),
  /**
   * bangerd-root's socket: when set, the daemon asks that root helper for every privileged operation
   * instead of running them itself; empty means in-process (the daemon runs as root).
   */
  priv_helper_socket: z
    .string()
    .refine(
      (p) => p === '' || (p.startsWith('/') && p.length <= 107),
      'an absolute socket path (at most 107 bytes)',
    )
    .default(''),
  /** Copy-on-write strategy for root disks; auto picks the first one the host supports. */
  cow_strategy: z.enum(['auto', 'dm-snapshot', 'reflink', 'qcow2', 'copy']).default('auto'),
  /** Registries reached over plain HTTP (loopback always is). */
  insecure_registries: z.array(z.string()).default([]),
  /** Extra CA certificate files (PEM) trusted for registries. */
  registry_ca_files: z.array(z.string()).default([]),
  /** Credentials per registry host, used before ~/.docker/config.json. */
  registry_auths: z
    .record(z.string(), z.strictObject({ username: z.string(), password: z.string() }))
    .default({}),
  /** Tar-bomb limits for image conversion. */
  max_unpacked_size: size.default('64G'),
  max_entries: z.number().int().min(1).default(2_000_000),
  /** Override of the embedded image and kernel catalogs: a file path or an https URL. */
  image_catalog: z.string().optional(),
  kernel_catalog: z.string().optional(),
  vm_defaults: vmDefaultsSchema.default(vmDefaultsSchema.parse({})),
  file_sync: z.array(fileSyncSchema).default([]),
  /** Copy the host's git user.name and user.email into the guest's /root/.gitconfig at every start. */
  git_identity: z.boolean().default(true),
  /**
   * `vm run` restores a warm template (a snapshot of a VM booted once for the same image, kernel, agent and
   * spec) instead of booting, and makes one in the background after a cold run when there is none.
   */
  warm_templates: z.boolean().default(true),
});

export type Config = z.infer<typeof configSchema>;
export type VmDefaults = z.infer<typeof vmDefaultsSchema>;
