import type {
  DirEntry,
  ExecHandle,
  ExecIo,
  ExecRequest,
  FileReadLimit,
  GuestTcpStream,
  TcpTarget,
} from '../../../guest/index.js';
import type { AgentEndpoint, AgentTransport } from '../../../model/agent-endpoint.js';
import type { PidfileIdentity } from '../../../model/identity.js';
import type { Image } from '../../../model/image.js';
import type { ProgressSink } from '../../../model/progress.js';
import type { KernelFeatures, VmmDisk, VmmInstance, VmmLaunchSpec } from '../../../vmm/index.js';

export type { ExecHandle, ExecIo, ExecRequest, VmmDisk, VmmLaunchSpec };

/**
 * What the VM service needs of the parts it drives (src/vmm, src/guest, the images and kernel services),
 * narrowed to what it calls, so the composition root passes the real ones and the crash tests a stand-in
 * VMM process. Shapes the parts already export are re-exported, not restated; a narrower view of a part's
 * type is a `…Port` (VmmPort is what the service needs of src/vmm's Vmm), never the part's own name.
 */

/** JSON-serialisable: enough to find the VMM again after a daemon restart (src/vmm's VmmHandles, loosened). */
export type VmmHandlesPort = { pid: number; startTime: number } & Record<string, unknown>;

/** A running VM as the driver gives it (src/vmm's VmmInstance), less what the service never asks (its kind, alive()). */
export type VmmInstancePort = Omit<VmmInstance, 'kind' | 'alive' | 'handles'> & { handles: VmmHandlesPort };

/** What the service needs of a VMM driver (src/vmm's Vmm). */
export interface VmmPort {
  kind: 'qemu' | 'firecracker';
  /** The agent transport to ask for on this host (the composition root decides from the driver's capabilities). */
  agentTransport: AgentTransport;
  /** The acceleration chosen for this host (chooseVmm). */
  accel?: 'kvm' | 'tcg';
  /** The identity recorded before `start` (see src/vmm's Vmm.plan); the instance's identities replace it. */
  plan(spec: VmmLaunchSpec): PidfileIdentity;
  start(spec: VmmLaunchSpec, opts?: { signal?: AbortSignal }): Promise<VmmInstancePort>;
  /** Reattach after a daemon restart; null when the process is gone or is not ours. */
  adopt(handles: VmmHandlesPort): Promise<VmmInstancePort | null>;
}

/** What the service asks of a guest agent connection (src/guest's AgentClient). */
export interface AgentPort {
  /** True once the connection is gone (the guest broke a limit, the VM stopped): connect again. */
  readonly closed?: boolean;
  health(): Promise<unknown>;
  ports(): Promise<unknown>;
  exec(req: ExecRequest, io: ExecIo): ExecHandle | Promise<ExecHandle>;
  readFile(path: string, limit: FileReadLimit): Promise<Buffer>;
  writeFile(path: string, data: Buffer, opts?: { mode?: number; uid?: number; gid?: number }): Promise<void>;
  listDir(path: string): Promise<{ entries: DirEntry[]; truncated: boolean }>;
  shutdown(): Promise<void>;
  /** A TCP connection to a port of the guest itself (forwards); GuestConnectError when it cannot. */
  connectTcp(target: TcpTarget, timeoutMs?: number): Promise<GuestTcpStream>;
  close(): void | Promise<void>;
}

export interface Guest {
  waitForAgent(
    endpoint: AgentEndpoint,
    opts: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<AgentPort>;
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
  manifest?: { capabilities: KernelFeatures };
}

export interface KernelSource {
  /** The named kernel, pulled from the catalog when missing. */
  ensure(name: string, opts: { progress?: ProgressSink; signal?: AbortSignal }): Promise<BootKernel>;
}
