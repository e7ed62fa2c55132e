import type { Store } from '../../store/index.js';
import type { HandlerGroup } from './types.js';

/** `image.*` handlers: thin, each calls one service function. */
export function imageHandlers(deps: { store: Store }): HandlerGroup<'image'> {
  return {
    'image.list': async () => ({ images: deps.store.images.list() }),
  };
}
