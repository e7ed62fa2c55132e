import { EventEmitter } from 'node:events';
import { BangerError } from '../model/errors.js';
import type { Params, Result, RpcClient } from '../rpc/index.js';
import { BoundedOutput } from './bounded-output.js';
import type { McpLimits } from './limits.js';

/** How a command ended, as a tool reports it. */
export interface CommandOutcome {
  exitCode: number | null;
  signal: string | null;
  /** The command ran past its timeout and was killed (TERM, then KILL after a grace). */
  timedOut: boolean;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  stdoutBytes: number;
  stderrBytes: number;
}

type CommandMethod = 'vm.exec' | 'vm.run';

export interface BoundedCallOptions {
  limits: McpLimits;
  /** The command's own time. */
  timeoutMs: number;
  /** The MCP request's cancellation: closing the call kills the command in the guest. */
  signal?: AbortSignal | undefined;
}

/**
 * Calls vm.exec or vm.run with the server's bounds. A command's clock starts when it starts: at once for
 * vm.exec, at vm.run's `command` stage (setup before it has its own bound). Past its time the command gets
 * TERM through the call, and KILL when it outlives the grace: closing the call makes the daemon KILL the
 * guest process group. Output is kept within the byte budget per stream.
 */
export async function boundedCommand<M extends CommandMethod>(
  client: RpcClient,
  method: M,
  params: Params<M>,
  options: BoundedCallOptions,
): Promise<{ result: Result<M> | undefined; outcome: CommandOutcome }> {
  const { limits } = options;
  const out = new BoundedOutput(limits.maxOutputBytes);
  const err = new BoundedOutput(limits.maxOutputBytes);
  const controls = new EventEmitter();
  const controller = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  let timedOut = false;

  const startClock = () => {
    timers.push(
      setTimeout(() => {
        timedOut = true;
        controls.emit('signal', 'TERM');
        timers.push(
          setTimeout(
            () => controller.abort(new BangerError('cancelled', 'command killed at its timeout')),
            limits.killGraceMs,
          ),
        );
      }, options.timeoutMs),
    );
  };
  if (method === 'vm.run') {
    const setup = setTimeout(
      () =>
        controller.abort(
          new BangerError(
            'cancelled',
            `setup (image, boot, workspace) took longer than ${limits.setupTimeoutMs / 1000} s`,
            { hint: 'start banger mcp serve with a larger --setup-timeout' },
          ),
        ),
      limits.setupTimeoutMs,
    );
    timers.push(setup);
    controls.once('command', () => {
      clearTimeout(setup);
      startClock();
    });
  } else {
    startClock();
  }

  const signal = options.signal ? AbortSignal.any([controller.signal, options.signal]) : controller.signal;
  let result: Result<M> | undefined;
  let ended: { exitCode: number | null; signal: string | null };
  try {
    result = await client.call(method, params, {
      signal,
      controls,
      onOutput: (stream, data) => (stream === 'stdout' ? out : err).write(data),
      onProgress: (event) => {
        if (event.kind === 'stage' && event.stage === 'command') controls.emit('command');
      },
    });
    const answer = result as Result<CommandMethod>;
    const exit = 'vm' in answer ? answer.exit : answer;
    ended = { exitCode: exit?.exitCode ?? null, signal: exit?.signal ?? null };
  } catch (error) {
    // Killed at its timeout: the daemon sent KILL when the call closed; that is the command's end.
    if (!(timedOut && controller.signal.aborted)) throw error;
    ended = { exitCode: null, signal: 'SIGKILL' };
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  return {
    result,
    outcome: {
      ...ended,
      timedOut,
      stdout: out.text(),
      stderr: err.text(),
      stdoutTruncated: out.truncated,
      stderrTruncated: err.truncated,
      stdoutBytes: out.totalBytes,
      stderrBytes: err.totalBytes,
    },
  };
}
