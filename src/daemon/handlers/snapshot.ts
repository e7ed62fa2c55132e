import type { SnapshotService } from '../services/snapshots/index.js';
import type { VmService } from '../services/vms/index.js';
import type { HandlerGroup } from './types.js';

/** `snapshot.*` handlers: thin, each calls one service function. */
export function snapshotHandlers(deps: {
  snapshots: SnapshotService;
  /** `snapshot rm` waits for the teardowns under way: a fork `vm delete` answered for still uses it. */
  vms?: Pick<VmService, 'settleDeletes'> | undefined;
}): HandlerGroup<'snapshot'> {
  const { snapshots } = deps;
  return {
    'snapshot.create': async ({ vm, name }, ctx) => ({
      snapshot: await snapshots.create(vm, name, { signal: ctx.signal }),
    }),
    'snapshot.list': async () => ({ snapshots: snapshots.list() }),
    'snapshot.show': async ({ ref, verify }) => ({
      snapshot: verify ? await snapshots.verify(ref) : snapshots.get(ref),
    }),
    'snapshot.fork': async ({ ref, name }, ctx) =>
      snapshots.fork(ref, name ? { name } : {}, { signal: ctx.signal }),
    'snapshot.rm': async ({ ref }) => {
      await deps.vms?.settleDeletes();
      return { snapshot: await snapshots.remove(ref) };
    },
  };
}
