import { EventEmitter } from 'node:events';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { BangerError } from '../model/errors.js';
import type { ForwardedSignal } from '../rpc/index.js';
import type { SdkCall } from './methods.js';

/** How a command ended: its exit code, or the signal (`SIGKILL`, …) that ended it. */
export interface ExitStatus {
  exitCode: number | null;
  signal: string | null;
}

export interface ExecOptions {
  /** `KEY=VALUE` pairs or a record, on top of the image's environment. */
  env?: Record<string, string> | string[];
  /** The working directory in the guest (default: the image's, else /). */
  cwd?: string;
  /**
   * Input for the command: bytes, a string or a Node stream; `'pipe'` gives a writable `stdin` on the handle.
   * Without it the command reads end of file at once.
   */
  stdin?: string | Uint8Array | NodeJS.ReadableStream | 'pipe';
  /** Run on a pseudo-terminal of this size (stdout then carries both streams). */
  tty?: { rows: number; cols: number };
  /** Aborting kills the guest command (SIGKILL to its process group) and rejects `wait()` with `cancelled`. */
  signal?: AbortSignal;
}

const SIGNALS = new Set<string>(['INT', 'TERM', 'HUP', 'QUIT', 'KILL']);

/**
 * A command running in a VM through its agent. `stdout`/`stderr` are Node streams (`Readable.toWeb` gives
 * web streams: see `webStreams()`); `wait()` resolves with how it ended.
 */
export class ExecProcess {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  /** Writable when started with `stdin: 'pipe'`; end it to send end of file. */
  readonly stdin: Writable | undefined;
  readonly #controls = new EventEmitter();
  readonly #abort = new AbortController();
  readonly #done: Promise<ExitStatus>;
  #killed = false;

  /** @internal The SDK's Vm.exec builds it. */
  constructor(call: SdkCall, ref: string, argv: string[], opts: ExecOptions) {
    let input: NodeJS.ReadableStream | undefined;
    if (opts.stdin === 'pipe') {
      const pipe = new PassThrough();
      this.stdin = pipe;
      input = pipe;
    } else if (typeof opts.stdin === 'string' || opts.stdin instanceof Uint8Array) {
      input = Readable.from([Buffer.from(opts.stdin)]);
    } else if (opts.stdin) {
      input = opts.stdin;
    }
    const env = Array.isArray(opts.env)
      ? opts.env
      : Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const onAbort = () =>
      this.#abort.abort(new BangerError('cancelled', `${argv[0]} in VM ${ref} cancelled`));
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.#done = call(
      'vm.exec',
      { ref, argv, env, cwd: opts.cwd, stdin: input !== undefined, tty: opts.tty },
      {
        stdin: input,
        controls: this.#controls,
        signal: this.#abort.signal,
        onOutput: (stream, data) => (stream === 'stdout' ? this.stdout : this.stderr).write(data),
      },
    )
      .then(
        (exit): ExitStatus => exit,
        (err: unknown) => {
          // kill('KILL') closes the call: the daemon kills the command's process group, as it would for
          // a client that went away; there is no exit report to wait for.
          if (this.#killed && !opts.signal?.aborted) return { exitCode: null, signal: 'SIGKILL' };
          throw err;
        },
      )
      .finally(() => {
        opts.signal?.removeEventListener('abort', onAbort);
        this.stdout.end();
        this.stderr.end();
      });
    this.#done.catch(() => {}); // surfaced through wait(); no unhandled rejection before it is called
  }

  /** How the command ended. Rejects with a BangerError (`cancelled` on abort, `not_running`, …). */
  wait(): Promise<ExitStatus> {
    return this.#done;
  }

  /**
   * Sends a signal to the command's process group: INT, TERM, HUP or QUIT (with or without `SIG`), or KILL,
   * which ends the call at once (the daemon kills the group; `wait()` reports SIGKILL).
   */
  kill(signal = 'TERM'): void {
    const name = signal.toUpperCase().replace(/^SIG/, '');
    if (!SIGNALS.has(name))
      throw new BangerError('bad_request', `cannot send ${signal}: use INT, TERM, HUP, QUIT or KILL`);
    if (name === 'KILL') {
      this.#killed = true;
      this.#abort.abort();
    } else this.#controls.emit('signal', name as ForwardedSignal);
  }

  /** Resizes the command's terminal (a `tty` exec). */
  resize(rows: number, cols: number): void {
    this.#controls.emit('resize', rows, cols);
  }

  /** The output as web ReadableStreams (each can be taken once, instead of the Node streams). */
  webStreams(): { stdout: ReadableStream<Uint8Array>; stderr: ReadableStream<Uint8Array> } {
    return {
      stdout: Readable.toWeb(this.stdout) as ReadableStream<Uint8Array>,
      stderr: Readable.toWeb(this.stderr) as ReadableStream<Uint8Array>,
    };
  }
}
