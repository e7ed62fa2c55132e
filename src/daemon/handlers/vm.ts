import type { Store } from '../../store/index.js';
import type { HandlerGroup } from './types.js';

/** `vm.*` handlers: thin, each calls one service function. */
export function vmHandlers(deps: { store: Store }): HandlerGroup<'vm'> {
  return {
    'vm.list': async () => ({ vms: deps.store.vms.list() }),
  };
}
