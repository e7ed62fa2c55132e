/** What the guest needs to know about itself, passed on the kernel command line (no disk patching). */
export interface GuestBootConfig {
  hostname: string;
  /** `ADDR/PREFIX` */
  address?: string;
  gateway?: string;
  dns?: string;
  /** `init=` when the image needs banger's init shim. */
  init?: string;
}

/**
 * The kernel command line. banger's initramfs applies `root=` and `banger.ip=` before switch_root; the
 * agent applies hostname and DNS. `net.ifnames=0` keeps the interface `eth0`, which `banger.ip` names;
 * `panic=-1` turns a failed boot into a VMM exit instead of a hang.
 */
export function guestCmdline(cfg: GuestBootConfig): string {
  const parts = ['console=ttyS0', 'root=/dev/vda', 'rw', 'net.ifnames=0', 'panic=-1'];
  if (cfg.address) parts.push(`banger.ip=${cfg.address},${cfg.gateway ?? ''},eth0`);
  parts.push(`banger.hostname=${cfg.hostname}`);
  if (cfg.dns) parts.push(`banger.dns=${cfg.dns}`);
  if (cfg.init) parts.push(`init=${cfg.init}`);
  return parts.join(' ');
}
