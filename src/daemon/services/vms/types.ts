import type { Logger } from 'pino';
import type { Config } from '../../../config/index.js';
import type { HostDisks, HostNetwork, PrivOps, Runner } from '../../../host/index.js';
import type { ProgressSink } from '../../../model/progress.js';
import type { Snapshot } from '../../../model/snapshot.js';
import type { VM } from '../../../model/vm.js';
import type { Store } from '../../../store/index.js';
import type { Guest, ImageSource, KernelSource, VmmPort } from './ports.js';

/** Everything the VM service needs, handed in by the composition root. */
export interface VmServiceDeps {
  store: Store;
  config: Config;
  /** `<stateDir>/vms`: one directory per VM. */
  vmsDir: string;
  stateDir: string;
  runner: Runner;
  priv: PrivOps;
  network: HostNetwork;
  disks: HostDisks;
  /** Resolved lazily: choosing a VMM probes the host, which a daemon that only lists VMs never needs. */
  vmm: () => Promise<VmmPort>;
  guest: Guest;
  images: ImageSource;
  kernels: KernelSource;
  log: Logger;
  /**
   * Where `vm run PATH` puts the workspace in the guest (default /root/repo). The service's tests run the
   * agent on the host itself and point this at a directory of their own.
   */
  workspaceDir?: string;
  /** The daemon user's home, which `~/` in [[file_sync]] means; without it such entries are skipped. */
  home?: string;
  /** banger's ssh key (made on first use) and its TOFU known_hosts. */
  ssh?: {
    keyPath: string;
    knownHostsPath: string /** banger's ssh_config (`banger ssh-config`). */;
    configPath?: string;
  };
  /** How long a booting guest may take to answer on its agent channel. */
  agentTimeoutMs?: number;
  /** How long a guest with sshd may take after its agent answers to listen on port 22. */
  sshdTimeoutMs?: number;
  /** How long `vm stop` waits for a clean poweroff before killing the VMM. */
  stopTimeoutMs?: number;
  /**
   * Called at named points of start, stop and delete (after each side effect is recorded and made). Tests
   * pause here and SIGKILL the daemon to prove reconcile leaves nothing behind; production passes nothing.
   */
  checkpoint?: (stage: string, vmId: string) => Promise<void>;
  /**
   * The snapshots `vm run` restores instead of booting (--from-snapshot, warm templates). A getter: the
   * snapshot service is built on top of this one. Absent (or returning nothing): every run boots.
   */
  restores?: () => RestoreSource | undefined;
  /**
   * sha256 (hex) of a kernel a restore must match (restore-check.ts): the daemon passes its digest cache, so
   * an unchanged kernel is read once per daemon, not on every warm `vm run`. Absent: read every time.
   */
  kernelDigest?: (path: string) => Promise<string>;
}

/** What `vm run` asks of the snapshot service. */
export interface RestoreSource {
  /** --from-snapshot: the snapshot, its VMM checked and every file's digest verified; refused otherwise. */
  snapshot(ref: string, opts: OpOptions): Promise<Snapshot>;
  /** The warm template made for `key` when one is ready and verifies; undefined (boot) otherwise. */
  template(key: string): Promise<Snapshot | undefined>;
  /** A template that did not restore: removed (when no VM uses it), so the next cold run makes a new one. */
  drop(template: Snapshot): Promise<void>;
  /** Makes the template for `key` in the background, from a VM of its own, when there is none yet. */
  warmUp(key: string, from: { imageId: string; spec: VM['spec'] }): void;
}

export interface CreateVmRequest {
  name?: string;
  image?: string;
  vcpu?: number;
  memoryMib?: number;
  diskSizeBytes?: number;
  systemOverlaySizeBytes?: number;
  nat?: boolean;
  noStart?: boolean;
  /** Who made it, when a program did (`mcp`); stored with the VM. */
  createdBy?: string | undefined;
}

export interface OpOptions {
  progress?: ProgressSink;
  signal?: AbortSignal;
  /**
   * Start: wait (bounded) for the guest's sshd and pin its host key (default true). `vm run -- cmd` skips
   * the wait, as its command goes through the agent; `vm ssh` pins on demand.
   */
  waitForSsh?: boolean;
  /**
   * Exec: the caller's control events for the command, 'resize' (rows, cols) for a tty and 'signal' (a
   * name such as `INT`) to send to it. The RPC server emits them on the call's stdin stream.
   */
  control?: NodeJS.EventEmitter;
  /**
   * Start: called once the VM runs and its agent answered, before the call returns (a `--forward` of
   * `vm create|run` attaches its forwards here, before a `vm run` command starts). A failure fails the call.
   */
  afterStart?: (vm: VM) => Promise<void>;
  /** Start: restore this snapshot's memory instead of booting (a fork's first start; QEMU only). */
  restore?: Snapshot;
}
