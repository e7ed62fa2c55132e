import { Writable } from 'node:stream';
import type { CallContext } from '../../rpc/index.js';
import type { WorkspaceService } from '../services/workspaces/index.js';
import type { HandlerGroup } from './types.js';

/** The call's stdout output notifications as a stream (the patch goes to the client as it comes). */
function stdoutOf(ctx: CallContext): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      ctx.output('stdout', chunk);
      done();
    },
  });
}

/** `workspace.*` handlers: thin, each calls one service function. */
export function workspaceHandlers(deps: { workspaces: WorkspaceService }): HandlerGroup<'workspace'> {
  const { workspaces } = deps;
  return {
    'workspace.prepare': async ({ ref, path, branch, from, force }, ctx) => {
      const r = await workspaces.prepare(ref, path, { branch, from, force }, ctx);
      return { ...r, branch: r.branch, baseCommit: r.baseCommit };
    },
    'workspace.export': async ({ ref, baseCommit }, ctx) =>
      workspaces.export(ref, { baseCommit }, stdoutOf(ctx), ctx),
  };
}
