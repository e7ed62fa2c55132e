import { z } from 'zod';
import type { KernelCapabilities } from '../kernel/index.js';
import type { AgentEndpoint, AgentTransport } from '../model/agent-endpoint.js';
import type { PidfileIdentity, TeardownIdentity } from '../model/identity.js';

/** The two VMMs banger drives. */
export type VmmKind = 'qemu' | 'firecracker';
/** How guest code runs: hardware virtualisation, or QEMU's software emulator. */
export type Accel = 'kvm' | 'tcg';
export type DiskFormat = 'raw' | 'qcow2';
/**
 * The QEMU machine: `microvm` (virtio-mmio devices, the lightest) or `q35` (a PC with virtio-pci devices) for
 * kernels that have no virtio-mmio. Firecracker has its own machine and accepts only `microvm`.
 */
export type Machine = 'microvm' | 'q35';
export const MACHINES: readonly Machine[] = ['microvm', 'q35'];

/** What a driver reads of the kernel's build config: the machine choice and Firecracker's preflight. */
export type KernelFeatures = Pick<
  KernelCapabilities,
  'configKnown' | 'virtioMmio' | 'virtioPci' | 'virtioMmioCmdlineDevices'
>;

/** One disk handed to the guest; the root disk is always the first (/dev/vda). */
export interface VmmDisk {
  path: string;
  format: DiskFormat;
  readOnly?: boolean;
}

/** Everything a driver needs to boot one VM. Paths are absolute; runDir holds sockets and the console log. */
export interface VmmLaunchSpec {
  name: string;
  runDir: string;
  kernelPath: string;
  initrdPath?: string;
  cmdline: string;
  rootDisk: { path: string; format: DiskFormat };
  extraDisks?: VmmDisk[];
  vcpus: number;
  memoryMiB: number;
  net?: { tap: string; mac: string };
  /**
   * The agent transport, one of the driver's `capabilities.agentTransports`: QEMU offers vsock only where
   * the host has vhost-vsock, Firecracker only its hybrid vsock. A driver refuses one it does not offer.
   */
  agent: AgentTransport;
  /** The guest's vsock CID, leased per VM (host/net CidAllocator); needed by both vsock transports. */
  cid?: number;
  accel: Accel;
  /** Default `microvm`; see chooseMachine for picking it from the kernel's capabilities. */
  machine?: Machine;
  /** Network namespace the VMM runs in (the tap lives there). */
  netns?: string;
  /** What the kernel's build config says (src/kernel capabilities); Firecracker's preflight reads it. */
  kernelFeatures?: KernelFeatures;
  /**
   * Restore instead of boot: the guest's memory is read from `memoryPath` (QEMU: a saved migration stream;
   * Firecracker: the guest memory file, with its device state in `statePath`) and the VM resumed. Refused
   * when the running VMM's version is not `vmmVersion` (both VMMs tie their state format to it); the
   * machine and devices must be the snapshot's.
   */
  incoming?: {
    memoryPath: string;
    vmmVersion: string;
    /** Firecracker: the device state file (QEMU's travels in the memory stream). */
    statePath?: string;
    /**
     * QEMU: the guest's RAM as a file of its own (a snapshot of a VM started with `shareableRam`). It is mapped
     * copy-on-write (MAP_PRIVATE): forks share its pages in the page cache and never write into it, and the
     * stream at `memoryPath` holds the device state only.
     */
    ramPath?: string;
  };
  /**
   * QEMU: back the guest's RAM with a file in the run dir mapped shared, so a snapshot saves the RAM as a
   * plain file that forks can map copy-on-write (see `incoming.ramPath`). Costs a disk file as large as the
   * guest's touched memory, so only VMs made to be snapshotted ask for it (warm templates).
   */
  shareableRam?: boolean;
}

/** What a driver can do, read by callers instead of asking which driver they hold. */
export interface VmmCapabilities {
  /** In order of preference: the VM service asks for the first. */
  agentTransports: readonly AgentTransport[];
  diskFormats: readonly DiskFormat[];
  accels: readonly Accel[];
}

const agentEndpointSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('virtio-serial'), socketPath: z.string().min(1) }),
  z.object({ kind: z.literal('vsock'), cid: z.number().int().min(3), port: z.number().int().min(1) }),
  z.object({
    kind: z.literal('firecracker-vsock'),
    udsPath: z.string().min(1),
    port: z.number().int().min(1),
  }),
]);

/**
 * The JSON-serialisable facts that let a new daemon find a running VMM again: the process (pid + start
 * time, since pids are reused, and its executable and proof argument, since a record can be damaged), its
 * control socket and where the agent answers. Written to handles.json.
 */
export const vmmHandlesSchema = z.object({
  kind: z.enum(['qemu', 'firecracker']),
  pid: z.number().int().positive(),
  startTime: z.number().int().nonnegative(),
  /** /proc/PID/exe once the VMM was up: a signal or an adopt requires it still. */
  exe: z.string().startsWith('/'),
  /** The argument its argv holds whole and no other program's does (see the drivers' `plan`). */
  arg: z.string().min(1),
  /** QMP socket (QEMU) or API socket (Firecracker). */
  controlSocket: z.string().min(1),
  consoleLogPath: z.string().min(1),
  agentEndpoint: agentEndpointSchema,
  /** Files the VMM created, removed once it has exited (sockets). */
  files: z.array(z.string()).default([]),
  /** The jailer's per-VM directory (<chroot base>/<exec name>/<vm>), removed once Firecracker has exited. */
  jailDir: z.string().optional(),
});
export type VmmHandles = z.infer<typeof vmmHandlesSchema>;

export interface VmmExit {
  code: number | null;
  signal: string | null;
}

/** Options for a graceful stop. */
export interface VmmStopOptions {
  /** How long the guest may take to power off before the VMM is made to quit, then killed. */
  timeoutMs: number;
  /**
   * Asks the guest to power off (the agent's shutdown). Tried first: the ACPI power button needs modules
   * many guests lack (e2e-notes §5.5), so the driver's own request is only a second line.
   */
  guestShutdown?: () => Promise<void>;
}

/** A running VM as its driver sees it. */
export interface VmmInstance {
  kind: VmmKind;
  pid: number;
  startTime: number;
  handles: VmmHandles;
  identities: TeardownIdentity[];
  agentEndpoint: AgentEndpoint;
  consoleLogPath: string;
  /** Graceful stop (guest shutdown, ACPI power button / Ctrl-Alt-Del), then quit, then SIGKILL. */
  stop(opts: VmmStopOptions): Promise<void>;
  /** Kills the VMM now and waits until it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  alive(): boolean;
  exited: Promise<VmmExit>;
  /** Freezes the guest's vCPUs (QEMU `stop`, Firecracker `PATCH /vm Paused`); memory and devices stay. */
  pause(): Promise<void>;
  /** Lets a paused guest run again (QEMU `cont`, Firecracker `PATCH /vm Resumed`). */
  resume(): Promise<void>;
  /** What the VMM itself says: true while its vCPUs are paused (read at adopt, where the store may lag). */
  paused(): Promise<boolean>;
  /**
   * Writes the paused guest's memory and device state into `dir` (which exists and is empty) and leaves it
   * paused. QEMU: one migration stream (`memory`); Firecracker: `vmstate` + `memory`.
   */
  saveState(dir: string, opts?: { signal?: AbortSignal }): Promise<SavedState>;
}

/** What saveState wrote, and the VMM that can load it again. */
export interface SavedState {
  /** File names in the directory, the memory file first. */
  files: string[];
  /** One of `files`: the guest's RAM as a plain file, mapped copy-on-write by a restore (QEMU, shareableRam). */
  ramFile?: string;
  /** The VMM's version: a restore on another refuses (QEMU's migration stream is tied to it). */
  vmmVersion: string;
}

/** A VMM driver: boots VMs and finds them again after a daemon restart. */
export interface Vmm {
  kind: VmmKind;
  capabilities: VmmCapabilities;
  /**
   * The identity to record before `start`: the pidfile the VMM's spawn writes and the argument that
   * proves it is this VM's VMM. After `start` the instance's `process` identity replaces it.
   */
  plan(spec: VmmLaunchSpec): PidfileIdentity;
  start(spec: VmmLaunchSpec, opts?: { signal?: AbortSignal }): Promise<VmmInstance>;
  /** Reattaches to a VMM started by an earlier daemon; null when that process is gone. */
  adopt(handles: VmmHandles): Promise<VmmInstance | null>;
}
