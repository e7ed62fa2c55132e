import { type ChildProcess, spawn as spawnChild } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { BangerError } from '../model/errors.js';
import { CONSOLE_KEEPER_SCRIPT } from './console-keeper.js';
import { withPidFile } from './pidfile.js';

/**
 * The only place that spawns host programs. Always argv arrays, never a shell string. Every command can
 * run inside a network namespace (`ip netns exec NS …`), which the tests use to keep traffic in namespaces
 * they own and which users get as the `netns` config key.
 */
export interface RunOptions {
  input?: string | Buffer;
  cwd?: string;
  /** Added to (not replacing) the daemon's environment. */
  env?: Record<string, string>;
  timeoutMs?: number;
  netns?: string;
  signal?: AbortSignal;
  /** Return the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /** Open descriptors of ours the command inherits, as its fds 3, 4, … in this order. */
  passFds?: readonly number[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string>;
  netns?: string;
  /** File that receives stdout and stderr (a VMM's console log). */
  logPath?: string;
  /**
   * Bounds logPath on disk: output goes through a pipe to a keeper process (console-keeper.ts) that rotates
   * it to `<logPath>.1` at this size, so at most twice this is kept.
   */
  logMaxBytes?: number;
  /** Detached processes outlive the daemon (VMMs must survive a daemon restart). */
  detached?: boolean;
  /** Keep stdio as pipes for the caller to read and write. */
  pipe?: boolean;
  /** Share the caller's terminal (interactive programs such as ssh run by the CLI). */
  inherit?: boolean;
  /**
   * The process writes `<pid> <start time>` here itself, before it execs the program (see pidfile.ts), so
   * it stays findable even when the caller dies right after the spawn.
   */
  pidFile?: string;
}

/** A spawned program; with `logMaxBytes`, `logClosed` settles once its keeper has written all it was sent. */
export type SpawnedProcess = ChildProcess & { logClosed?: Promise<void> };

export interface Runner {
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  spawn(argv: readonly string[], options?: SpawnOptions): SpawnedProcess;
}

/** A failed host command: argv, exit code and stderr kept for the message and the log. */
export class CommandError extends BangerError {
  readonly argv: readonly string[];
  readonly exitCode: number | undefined;
  readonly stderr: string;

  constructor(argv: readonly string[], exitCode: number | undefined, stderr: string, reason?: string) {
    const tail = stderr.trim().split('\n').slice(-5).join('\n');
    const why = reason ?? `exited with ${exitCode}`;
    super('operation_failed', `${argv.join(' ')} ${why}${tail ? `: ${tail}` : ''}`);
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export function withNetns(argv: readonly string[], netns: string | undefined): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, ...argv] : [...argv];
}

/**
 * execa, loaded on first use (importing it takes ~100 ms, which every CLI call would pay at start-up) and
 * then kept, so a process that has since lost read access to node_modules (a build that dropped
 * privileges) still runs tools.
 */
let execaModule: Promise<typeof import('execa')> | undefined;
const loadExeca = () => {
  execaModule ??= import('execa');
  return execaModule;
};

/** The real runner: execa for one-shot tools, child_process.spawn for long-lived ones. */
export function createRunner(): Runner {
  return {
    async run(argv, options = {}) {
      const full = withNetns(argv, options.netns);
      const [file, ...args] = full;
      if (!file) throw new BangerError('bad_request', 'empty command');
      const { execa } = await loadExeca();
      const result = await execa(file, args, {
        input: options.input,
        cwd: options.cwd,
        env: options.env,
        // execa's types only name fds 3-9 as extra stdio items; any open descriptor of ours works at run time.
        ...(options.passFds ? { stdio: ['pipe', 'pipe', 'pipe', ...(options.passFds as 3[])] as const } : {}),
        timeout: options.timeoutMs,
        cancelSignal: options.signal,
        reject: false,
        stripFinalNewline: false,
        encoding: 'utf8',
      });
      const out: RunResult = {
        stdout: result.stdout ?? '',
        stderr: result.stderr ?? '',
        exitCode: result.exitCode ?? -1,
      };
      if (result.failed && !options.allowFailure) {
        let reason: string | undefined;
        if (result.timedOut) reason = `timed out after ${options.timeoutMs} ms`;
        else if (result.isCanceled) reason = 'was cancelled';
        else if (result.signal) reason = `was killed by ${result.signal}`;
        else if (result.exitCode === undefined)
          reason = `could not start (${result.originalMessage ?? 'unknown'})`;
        throw new CommandError(full, result.exitCode, out.stderr, reason);
      }
      if (result.failed && result.exitCode === undefined && !result.timedOut) {
        // Not even started (ENOENT): no exit code to hand back, so this is always an error.
        throw new CommandError(
          full,
          undefined,
          '',
          `could not start (${result.originalMessage ?? 'unknown'})`,
        );
      }
      return out;
    },

    spawn(argv, options = {}) {
      if (argv.length === 0) throw new BangerError('bad_request', 'empty command');
      const inNetns = withNetns(argv, options.netns);
      const [file, ...args] = options.pidFile ? withPidFile(options.pidFile, inNetns) : inNetns;
      if (!file) throw new BangerError('bad_request', 'empty command');
      if (options.logPath && options.logMaxBytes !== undefined) return spawnWithKeeper(file, args, options);
      let logFd: number | undefined;
      if (options.logPath) logFd = openSync(options.logPath, 'a', 0o600);
      try {
        return spawnOne(file, args, options, logFd ?? 'ignore');
      } finally {
        if (logFd !== undefined) closeSync(logFd);
      }
    },
  };
}

type Output = number | 'ignore' | Writable;

function spawnOne(file: string, args: string[], options: SpawnOptions, output: Output): ChildProcess {
  const stdio = options.inherit
    ? (['inherit', 'inherit', 'inherit'] as const)
    : options.pipe
      ? (['pipe', 'pipe', 'pipe'] as const)
      : (['ignore', output, output] as const);
  const child = spawnChild(file, args, {
    cwd: options.cwd,
    env: options.env ? { ...process.env, ...options.env } : process.env,
    detached: options.detached ?? false,
    stdio: [...stdio],
  });
  if (options.detached) child.unref();
  return child;
}

/** The program writes into a pipe whose reader is the keeper; our copy of the pipe is closed at once. */
function spawnWithKeeper(file: string, args: string[], options: SpawnOptions): SpawnedProcess {
  const log = options.logPath as string;
  const max = options.logMaxBytes as number;
  if (!Number.isSafeInteger(max) || max < 4096)
    throw new BangerError('bad_request', `log cap ${max} must be a whole number of bytes, at least 4096`);
  // Its cwd, not its argv, names the directory: nothing scanning argv for a VM's run dir mistakes it for a VMM.
  const keeper = spawnChild(
    'sh',
    ['-c', CONSOLE_KEEPER_SCRIPT, 'banger-console', basename(log), String(max)],
    {
      cwd: dirname(log),
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    },
  );
  keeper.unref();
  // The keeper ends when the program (the pipe's last writer) has ended and its output is on disk.
  const logClosed = new Promise<void>((resolve) => keeper.once('exit', () => resolve()));
  const pipe = keeper.stdin as Writable;
  try {
    const child = spawnOne(file, args, { ...options, detached: options.detached ?? false }, pipe);
    return Object.assign(child, { logClosed });
  } finally {
    pipe.destroy();
  }
}
