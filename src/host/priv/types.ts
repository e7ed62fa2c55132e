/**
 * Every privileged operation banger performs, as one interface. The in-process implementation runs the
 * commands itself (as root); a separate root helper can implement the same interface later without any
 * caller changing. Every input is validated by the implementation, never trusted from the caller.
 * Removal operations are idempotent: they succeed when the object is already gone.
 *
 * Links carry this instance's mark (`linkMark`, written as the link's alias when it is created); a link
 * without it is never changed or deleted, whatever its name.
 */
export interface PrivOps {
  /** The alias (`banger:<instance-id>`) on every link this instance created; how a link proves it is ours. */
  linkMark(): Promise<string>;
  /**
   * Creates the bridge (marked) if missing, adds `ip/prefix` if missing, and sets it up. A bridge of that
   * name without our mark is refused, or with `adopt` used as it is: never re-addressed, set up or deleted.
   */
  ensureBridge(req: BridgeRequest): Promise<void>;
  /** Deletes the bridge only when it carries our mark; `foreign` means it was left alone. */
  deleteBridge(req: { name: string; netns?: string }): Promise<LinkRemoval>;
  /**
   * Creates a persistent tap (marked) attached to `bridge` and up; `owner` lets an unprivileged VMM open
   * it. An existing link of that name without our mark is refused.
   */
  createTap(req: TapRequest): Promise<void>;
  /** Deletes the tap only when it carries our mark; `foreign` means it was left alone. */
  deleteTap(req: { name: string; netns?: string }): Promise<LinkRemoval>;
  /** Adds the MASQUERADE + FORWARD rules for one guest; a no-op when they are already there. */
  addNat(req: NatRequest): Promise<void>;
  /** Removes that guest's rules (and banger's nft table once it holds none). */
  removeNat(req: NatRemoveRequest): Promise<void>;
  setIpForward(req: { enabled: boolean; netns?: string }): Promise<void>;
  /**
   * Attaches a loop device over a file under the state dir; returns `/dev/loopN` and the resolved backing
   * path, as the kernel reports it (what `detachLoop` matches on).
   */
  attachLoop(req: { file: string; readOnly: boolean }): Promise<{ device: string; backingFile: string }>;
  /**
   * Detaches `device` if it is still backed by `backingFile`; with `device: ''`, every loop device backed by
   * `backingFile` (the path string banger attached) is detached.
   */
  detachLoop(req: { device: string; backingFile: string }): Promise<void>;
  /** `dmsetup create NAME` with a persistent snapshot target over two loop devices; returns /dev/mapper/NAME. */
  createDmSnapshot(req: DmSnapshotRequest): Promise<string>;
  /** `dmsetup remove`, retried while the device is busy. */
  removeDm(req: { name: string }): Promise<void>;
  /**
   * Sends an allow-listed signal to a process only when it is provably the one recorded: same start time
   * (a recycled pid is someone else's process), owned by banger's uid, the recorded executable, and the
   * recorded argument whole in its argv. `gone` when that process no longer runs; `refused` (with the
   * reason) when a live process has the pid and start time but is not it.
   */
  signalProcess(req: SignalRequest): Promise<SignalResult>;
  /**
   * systemd-resolved: sends `*.vm` queries made on this host to the daemon's DNS server (per-link DNS and
   * routing domain `~vm` on banger's bridge). The server must be a loopback address.
   */
  routeResolver(req: ResolverRouteRequest): Promise<void>;
}

export interface ResolverRouteRequest {
  /** banger's bridge (`br-fc…`). */
  link: string;
  host: string;
  port: number;
}

/** What a link removal did: `foreign` links (no mark of ours) are refused and left in place. */
export type LinkRemoval = 'deleted' | 'absent' | 'foreign';

export interface SignalRequest {
  pid: number;
  startTime: number;
  /** One whole argument of the process's argv (the VMM's control socket). */
  arg: string;
  /** /proc/PID/exe as recorded; absent only for a VMM found through its pidfile before it was recorded. */
  exe?: string;
  signal: string;
}

export type SignalResult =
  | { outcome: 'signalled' }
  | { outcome: 'gone' }
  | { outcome: 'refused'; reason: string };

export interface BridgeRequest {
  name: string;
  ip: string;
  prefix: number;
  netns?: string;
  /** Config `adopt_bridge`: use an existing bridge banger did not make, without changing it. */
  adopt?: boolean;
}

export interface TapRequest {
  name: string;
  bridge: string;
  owner?: number;
  netns?: string;
}

/** `nft` keeps the rules in banger's own table; `iptables` is the fallback where nft is missing. */
export type NatBackend = 'nft' | 'iptables';

export interface NatRequest {
  backend: NatBackend;
  table: string;
  tap: string;
  guestIp: string;
  /** The interface toward the outside world (the default route's device). */
  uplink: string;
  netns?: string;
}

export interface NatRemoveRequest {
  backend: NatBackend;
  table: string;
  tap: string;
  guestIp: string;
  /** Needed by the iptables backend only, which deletes rules by their full spec. */
  uplink?: string;
  netns?: string;
}

export interface DmSnapshotRequest {
  name: string;
  /** Read-only loop device over the base image. */
  origin: string;
  /** Loop device over the per-VM sparse COW file. */
  cow: string;
  /** Size of the origin in 512-byte sectors. */
  sectors: number;
  /** Snapshot chunk size in sectors, a power of two (default 8 = 4 KiB). */
  chunkSectors?: number;
}
