import { BangerError } from '../../model/errors.js';
import type { McpLimits } from '../limits.js';

/**
 * The request's signal, also aborted once the server's setup bound has passed (every tool but the
 * command ones, which keep their own clocks): the call's connection closes and the daemon cancels the
 * operation, removing what it made.
 */
export function setupSignal(limits: McpLimits, request: AbortSignal, what: string) {
  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        new BangerError('cancelled', `${what} took longer than ${limits.setupTimeoutMs / 1000} s`, {
          hint: 'start banger mcp serve with a larger --setup-timeout',
        }),
      ),
    limits.setupTimeoutMs,
  );
  return { signal: AbortSignal.any([controller.signal, request]), done: () => clearTimeout(timer) };
}
