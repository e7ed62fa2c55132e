/**
 * A file, directory or symlink that banger writes into a guest root filesystem (agent binary, units,
 * scripts, per-VM config). The guest side produces lists of these; the rootfs builder writes them in the
 * same debugfs batch as everything else, without mounting.
 */
export type GuestAsset =
  | {
      kind: 'file';
      /** Absolute path inside the guest, e.g. `/usr/local/bin/banger-agent`. */
      path: string;
      /** Either bytes/text, or a host file to copy. */
      content: Buffer | string | { hostPath: string };
      mode: number;
      uid?: number;
      gid?: number;
    }
  | { kind: 'dir'; path: string; mode: number; uid?: number; gid?: number }
  | { kind: 'symlink'; path: string; target: string; uid?: number; gid?: number };
