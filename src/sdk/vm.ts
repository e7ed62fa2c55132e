import type { DirEntry } from '../guest/replies.js';
import { BangerError } from '../model/errors.js';
import type { VM } from '../model/vm.js';
import type { VmStats } from '../model/vm-stats.js';
import type { Result } from '../rpc/index.js';
import { type ExecOptions, ExecProcess, type ExitStatus } from './exec.js';
import type { SdkCall } from './methods.js';

/** `vm.run()`'s default cap on each of stdout and stderr. */
export const RUN_MAX_BYTES = 1024 * 1024;

export interface RunOptions extends Omit<ExecOptions, 'stdin' | 'tty'> {
  stdin?: string | Uint8Array | NodeJS.ReadableStream;
  /** Bytes kept of stdout and of stderr each (default 1 MiB); the rest is read and dropped, and flagged. */
  maxBytes?: number;
  /** Kills the command (SIGKILL) after this long; the result then has `timedOut` and signal SIGKILL. */
  timeoutMs?: number;
}

export interface RunResult extends ExitStatus {
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  timedOut: boolean;
}

export interface WriteFileOptions {
  /** Permission bits, e.g. 0o755 (default 0o644). */
  mode?: number;
  /** Owner ids to set (default: unchanged, root for a new file). */
  owner?: { uid: number; gid: number };
  signal?: AbortSignal;
}

/** One listening port of the guest, as `banger vm ports` shows it. */
export type GuestPort = Result<'vm.ports'>['ports'][number];
export type ForwardInfo = Result<'forward.list'>['forwards'][number];
export type { DirEntry, VmStats };

/** A sink that keeps the first `max` bytes and notes whether more came. */
function capped(max: number) {
  const chunks: Buffer[] = [];
  let kept = 0;
  let truncated = false;
  return {
    add(data: Buffer) {
      const room = max - kept;
      if (data.length > room) truncated = true;
      if (room <= 0) return;
      const part = data.subarray(0, room);
      chunks.push(part);
      kept += part.length;
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
    truncated: () => truncated,
  };
}

/**
 * One VM. Methods act on it by id; `info` is the state when this object was made or last refreshed.
 * `await using vm = …` deletes it when the block ends.
 */
export class Vm {
  readonly id: string;
  readonly name: string;
  #info: VM;
  readonly #call: SdkCall;

  /** @internal Made by `banger.vms`. */
  constructor(call: SdkCall, info: VM) {
    this.#call = call;
    this.#info = info;
    this.id = info.id;
    this.name = info.name;
  }

  get info(): VM {
    return this.#info;
  }

  /** Reads the VM again from the daemon. */
  async refresh(opts: { signal?: AbortSignal } = {}): Promise<VM> {
    this.#info = (await this.#call('vm.show', { ref: this.id }, opts)).vm;
    return this.#info;
  }

  /** Starts `argv` in the guest through its agent; output streams while it runs. */
  exec(argv: string[], opts: ExecOptions = {}): ExecProcess {
    if (argv.length === 0) throw new BangerError('bad_request', 'exec needs a command');
    return new ExecProcess(this.#call, this.id, argv, opts);
  }

  /**
   * Runs a command to its end and returns its output as text: a string runs under `sh -c`, an array as is.
   * Each stream is capped (maxBytes) and flagged when it was cut.
   */
  async run(command: string | string[], opts: RunOptions = {}): Promise<RunResult> {
    const argv = typeof command === 'string' ? ['sh', '-c', command] : command;
    const max = opts.maxBytes ?? RUN_MAX_BYTES;
    const timeout = opts.timeoutMs === undefined ? undefined : AbortSignal.timeout(opts.timeoutMs);
    const signal =
      timeout && opts.signal ? AbortSignal.any([timeout, opts.signal]) : (timeout ?? opts.signal);
    const proc = this.exec(argv, { ...opts, signal });
    const out = capped(max);
    const err = capped(max);
    proc.stdout.on('data', (d: Buffer) => out.add(d));
    proc.stderr.on('data', (d: Buffer) => err.add(d));
    try {
      const exit = await proc.wait();
      return result(exit, false);
    } catch (e) {
      if (timeout?.aborted && !opts.signal?.aborted)
        return result({ exitCode: null, signal: 'SIGKILL' }, true);
      throw e;
    }
    function result(exit: ExitStatus, timedOut: boolean): RunResult {
      return {
        ...exit,
        stdout: out.text(),
        stderr: err.text(),
        stdoutTruncated: out.truncated(),
        stderrTruncated: err.truncated(),
        timedOut,
      };
    }
  }

  /** The guest's files through its agent: at most 10 MiB per read or write. */
  readonly files = {
    read: async (path: string, opts: { signal?: AbortSignal } = {}): Promise<Buffer> =>
      Buffer.from((await this.#call('vm.files.read', { ref: this.id, path }, opts)).data, 'base64'),
    write: async (path: string, data: string | Uint8Array, opts: WriteFileOptions = {}): Promise<void> => {
      await this.#call(
        'vm.files.write',
        {
          ref: this.id,
          path,
          data: Buffer.from(data).toString('base64'),
          mode: opts.mode,
          uid: opts.owner?.uid,
          gid: opts.owner?.gid,
        },
        { signal: opts.signal },
      );
    },
    list: async (
      path: string,
      opts: { signal?: AbortSignal } = {},
    ): Promise<{ entries: DirEntry[]; truncated: boolean }> =>
      this.#call('vm.files.list', { ref: this.id, path }, opts),
  };

  /** The guest's listening TCP and bound UDP ports. */
  async ports(opts: { signal?: AbortSignal } = {}): Promise<GuestPort[]> {
    return (await this.#call('vm.ports', { ref: this.id }, opts)).ports;
  }

  /**
   * Forwards host ports to guest ports for as long as the VM runs: `'8080:80'`, `'127.0.0.1:0:80'` (0 picks a
   * free port), or `{ guestPort, hostPort?, hostAddress? }`. Returns the VM's forwards.
   */
  async forward(
    ...specs: (string | { guestPort: number; hostPort?: number; hostAddress?: string })[]
  ): Promise<ForwardInfo[]> {
    const text = specs.map((s) =>
      typeof s === 'string'
        ? s
        : `${s.hostAddress ? `${s.hostAddress}:` : ''}${s.hostPort ?? 0}:${s.guestPort}`,
    );
    return (await this.#call('forward.add', { ref: this.id, specs: text })).forwards;
  }

  /** The VM's active forwards (none when it does not run). */
  async forwards(): Promise<ForwardInfo[]> {
    return (await this.#call('forward.list', { ref: this.id })).forwards;
  }

  /** Stops the forwards listening on these host ports. */
  async unforward(...hostPorts: number[]): Promise<ForwardInfo[]> {
    return (await this.#call('forward.remove', { ref: this.id, hostPorts })).forwards;
  }

  /** A fresh sample of the VM's cost: CPU, memory, disks, network, uptime. */
  async stats(opts: { signal?: AbortSignal } = {}): Promise<VmStats> {
    return (await this.#call('vm.stats', { ref: this.id }, opts)).stats;
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<VM> {
    this.#info = (await this.#call('vm.start', { ref: this.id }, opts)).vm;
    return this.#info;
  }

  /** Powers the guest off (killed after a timeout; at once with force). */
  async stop(opts: { force?: boolean; signal?: AbortSignal } = {}): Promise<VM> {
    this.#info = (
      await this.#call('vm.stop', { ref: this.id, force: opts.force }, { signal: opts.signal })
    ).vm;
    return this.#info;
  }

  /** Stops the VM if it runs and removes everything it owns. */
  async delete(): Promise<void> {
    await this.#call('vm.delete', { ref: this.id });
  }

  /** `await using`: deletes the VM; one already gone is fine. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.delete();
    } catch (err) {
      if (!(err instanceof BangerError && err.code === 'not_found')) throw err;
    }
  }
}
