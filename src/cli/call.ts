import type { MethodName, Params, Result } from '../rpc/index.js';
import type { CliContext } from './context.js';
import { createProgressRenderer } from './render/progress.js';

/**
 * Calls a long-running method, rendering its progress on stderr. Ctrl-C closes the connection, which
 * cancels the operation in the daemon (it cleans up what it started).
 */
export async function callWithProgress<M extends MethodName>(
  ctx: CliContext,
  method: M,
  params: Params<M>,
): Promise<Result<M>> {
  const client = await ctx.client();
  const renderer = createProgressRenderer(ctx.err);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    return await client.call(method, params, { onProgress: renderer.render, signal: controller.signal });
  } finally {
    renderer.done();
    process.off('SIGINT', onSigint);
  }
}
