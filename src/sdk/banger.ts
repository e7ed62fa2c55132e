import { resolve } from 'node:path';
import { bangerVersion, currentLayout } from '../config/index.js';
import { createRunner } from '../host/runner.js';
import type { Image } from '../model/image.js';
import type { ProgressEvent } from '../model/progress.js';
import type { VM } from '../model/vm.js';
import { createSharedRpcClient, ensureDaemon, type Params, type SharedRpcClient } from '../rpc/index.js';
import { type SdkCall, sdkCall } from './methods.js';
import { Vm } from './vm.js';

export interface BangerOptions {
  /**
   * The daemon's socket. Without it the SDK uses the user's daemon (BANGER_HOME or ~/.local/state/banger)
   * and starts it when it does not run, as the CLI does; with it, the daemon there must already run.
   */
  socketPath?: string;
}

/** What a long call takes: its progress (pull, boot stages) and a signal that cancels it in the daemon. */
export interface LongCallOptions {
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface CreateVmOptions extends LongCallOptions {
  /** A DNS label; generated when left out. */
  name?: string;
  /** An image name, catalog entry or OCI reference; pulled when missing. Default: the configured image. */
  image?: string;
  vcpu?: number;
  memoryMib?: number;
  /** The work disk, e.g. '8G'. */
  diskSize?: string;
  /** Outbound network (NAT) for the guest. */
  nat?: boolean;
  /** `[HOST_ADDR:]HOST_PORT:GUEST_PORT` forwards for as long as the VM runs. */
  forwards?: string[];
}

export interface RunVmOptions extends CreateVmOptions {
  /** A host directory (a git repository as git sees it) copied to /root/repo in the guest. */
  workspace?: string;
  /** A new branch to check out in the workspace copy, and the commit it starts from. */
  branch?: string;
  from?: string;
  /** Skip the mise bootstrap a workspace with .mise.toml or .tool-versions asks for. */
  noBootstrap?: boolean;
  /** Delete the VM when the run fails before it is handed over (default true; a failed boot is kept). */
  rm?: boolean;
  /** Start from this snapshot (its image, size and memory) instead of booting; no image or size options. */
  fromSnapshot?: string;
  /** Boot even when a warm template of the image exists. */
  cold?: boolean;
}

export interface PullOptions extends LongCallOptions {
  /** The local name (default: derived from the reference). */
  name?: string;
  /** OS/ARCH of a multi-platform OCI image. */
  platform?: string;
}

const createParams = (o: CreateVmOptions): Params<'vm.create'> => ({
  name: o.name,
  image: o.image,
  vcpu: o.vcpu,
  memoryMib: o.memoryMib,
  diskSize: o.diskSize,
  nat: o.nat,
  forwards: o.forwards,
});
const longCall = (o: LongCallOptions) => ({ onProgress: o.onProgress, signal: o.signal });

/**
 * banger as a library: `const banger = new Banger()` (connects on first use), then `banger.vms.run(…)`.
 * Every failure is a BangerError with a stable `code`, a `hint` and the daemon's `opId`.
 */
export class Banger {
  readonly #client: () => Promise<SharedRpcClient>;
  readonly #call: SdkCall;
  #opened: SharedRpcClient | undefined;
  #closed = false;

  constructor(options: BangerOptions = {}) {
    const version = bangerVersion();
    let client: Promise<SharedRpcClient> | undefined;
    // One connection for all calls (see createSharedRpcClient): a call pays no connect.
    const open = (socketPath: string) => {
      this.#opened = createSharedRpcClient(socketPath, version);
      if (this.#closed) this.#opened.close(); // closed before its first call: calls fail as after
      return this.#opened;
    };
    this.#client = () => {
      if (options.socketPath) {
        client ??= Promise.resolve(open(resolve(options.socketPath)));
      } else {
        const layout = currentLayout();
        client ??= ensureDaemon({ layout, version, runner: createRunner() }).then(() =>
          open(layout.socketPath),
        );
        client.catch(() => {
          client = undefined; // a daemon that failed to start may start on the next call
        });
      }
      return client;
    };
    this.#call = sdkCall(this.#client);
  }

  /**
   * Closes the connection to the daemon (calls in flight fail with a lost connection). Not needed for a
   * script to exit: an idle connection does not keep Node running. Calls after it fail.
   */
  close(): void {
    this.#closed = true;
    this.#opened?.close();
  }

  /** `await using banger = new Banger()` closes it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /** Connects now (starting the user's daemon when needed) rather than on first use; the daemon's version. */
  async connect(): Promise<{ version: string; pid: number }> {
    const { version, pid } = await this.#call('ping', {});
    return { version, pid };
  }

  readonly vms = {
    /**
     * Creates and starts a VM (pulling its image when missing), copies the workspace in and returns the
     * running VM. `await using vm = await banger.vms.run(…)` deletes it at the end of the block.
     */
    run: async (opts: RunVmOptions = {}): Promise<Vm> => {
      const { vm } = await this.#call(
        'vm.run',
        {
          create: createParams(opts),
          workspace: opts.workspace === undefined ? undefined : resolve(opts.workspace),
          branch: opts.branch,
          from: opts.from,
          noBootstrap: opts.noBootstrap,
          rm: opts.rm ?? true,
          fromSnapshot: opts.fromSnapshot,
          cold: opts.cold,
          // Nobody attaches after: the bootstrap (if any) runs before the call returns.
          detach: true,
        },
        longCall(opts),
      );
      return new Vm(this.#call, vm);
    },
    /** Creates a VM and starts it unless `noStart`. */
    create: async (opts: CreateVmOptions & { noStart?: boolean } = {}): Promise<Vm> => {
      const { vm } = await this.#call(
        'vm.create',
        { ...createParams(opts), noStart: opts.noStart },
        longCall(opts),
      );
      return new Vm(this.#call, vm);
    },
    /** A VM by id, name or unique id prefix (not_found otherwise). */
    get: async (ref: string): Promise<Vm> => new Vm(this.#call, (await this.#call('vm.show', { ref })).vm),
    list: async (): Promise<Vm[]> =>
      (await this.#call('vm.list', {})).vms.map((v: VM) => new Vm(this.#call, v)),
  };

  readonly images = {
    /** Pulls a catalog image or an OCI reference into the store. */
    pull: async (ref: string, opts: PullOptions = {}): Promise<Image> =>
      (await this.#call('image.pull', { ref, name: opts.name, platform: opts.platform }, longCall(opts)))
        .image,
    list: async (): Promise<Image[]> => (await this.#call('image.list', {})).images,
    /** Imports a rootfs tarball (plain, gzip, zstd, xz) from a file on the daemon's host. */
    import: async (name: string, file: string, opts: LongCallOptions = {}): Promise<Image> =>
      (await this.#call('image.import', { name, file: resolve(file) }, longCall(opts))).image,
  };
}
