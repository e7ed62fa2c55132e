import type { Readable, Writable } from 'node:stream';
import type { AgentEndpoint } from '../../../model/agent-endpoint.js';
import type { TeardownIdentity } from '../../../model/identity.js';
import type { Image } from '../../../model/image.js';
import type { ProgressSink } from '../../../model/progress.js';

/**
 * The faces of the parts the VM service drives, as the helpers' brief states them (src/vmm, src/guest,
 * the images service). They live here so the service compiles and is tested before those parts land; the
 * composition root passes the real ones, which satisfy these shapes structurally.
 */

export interface VmmDisk {
  path: string;
  format: 'raw' | 'qcow2';
  readOnly?: boolean;
}

export interface VmmLaunchSpec {
  name: string;
  /** Sockets and the console log live here. */
  runDir: string;
  kernelPath: string;
  initrdPath?: string;
  cmdline: string;
  rootDisk: { path: string; format: 'raw' | 'qcow2' };
  extraDisks?: VmmDisk[];
  vcpus: number;
  memoryMiB: number;
  net?: { tap: string; mac: string };
  agent: 'vsock' | 'virtio-serial';
  cid?: number;
  accel: 'kvm' | 'tcg';
  /** Network namespace the VMM runs in (the tap lives there). */
  netns?: string;
  /** QEMU's machine type, from the kernel's capabilities (chooseMachine). */
  machine?: 'microvm' | 'q35';
}

/** JSON-serialisable: enough to find the VMM again after a daemon restart. */
export type VmmHandles = { pid: number; startTime: number } & Record<string, unknown>;

export interface VmmInstance {
  pid: number;
  startTime: number;
  handles: VmmHandles;
  identities: TeardownIdentity[];
  agentEndpoint: AgentEndpoint;
  consoleLogPath: string;
  /** Graceful (the guest's own shutdown first, then ACPI), then quit, then SIGKILL. */
  stop(opts: { timeoutMs: number; guestShutdown?: () => Promise<void> }): Promise<void>;
  /** Kills the VMM now and waits until it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

export interface Vmm {
  kind: 'qemu' | 'firecracker';
  /** The agent transport to ask for on this host (the composition root decides from the driver's capabilities). */
  agentTransport?: 'vsock' | 'virtio-serial';
  /** The acceleration chosen for this host (chooseVmm). */
  accel?: 'kvm' | 'tcg';
  start(spec: VmmLaunchSpec, opts?: { signal?: AbortSignal }): Promise<VmmInstance>;
  /** Reattach after a daemon restart; null when the process is gone or is not ours. */
  adopt(handles: VmmHandles): Promise<VmmInstance | null>;
}

export interface ExecRequest {
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  user?: string;
  tty?: { rows: number; cols: number };
}

export interface ExecIo {
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
}

export interface ExecHandle {
  resize(rows: number, cols: number): void;
  signal(name: string): void;
  wait(): Promise<{ exitCode: number | null; signal: string | null }>;
}

export interface AgentClient {
  health(): Promise<unknown>;
  ports(): Promise<unknown>;
  exec(req: ExecRequest, io: ExecIo): ExecHandle | Promise<ExecHandle>;
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Buffer, opts?: { mode?: number; uid?: number; gid?: number }): Promise<void>;
  shutdown(): Promise<void>;
  close(): void | Promise<void>;
}

export interface Guest {
  waitForAgent(
    endpoint: AgentEndpoint,
    opts: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<AgentClient>;
}

export interface ImageSource {
  /** An existing image by name, id or reference, pulled when missing. */
  ensure(nameOrRef: string, opts: { progress?: ProgressSink; signal?: AbortSignal }): Promise<Image>;
}

/** The boot files of a kernel (the kernel manager's LocalKernel, reduced to what a boot needs). */
export interface BootKernel {
  kernelPath: string;
  initrdPath?: string | undefined;
  /** From the kernel's manifest; absent for a kernel an image carries (the machine then stays microvm). */
  manifest?: { capabilities: { virtioMmio: Tristate; virtioPci: Tristate } };
}

type Tristate = 'builtin' | 'module' | 'absent' | 'unknown';

export interface KernelSource {
  /** The named kernel, pulled from the catalog when missing. */
  ensure(name: string, opts: { progress?: ProgressSink; signal?: AbortSignal }): Promise<BootKernel>;
}
