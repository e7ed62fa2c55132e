import type { Handler, MethodName } from '../../rpc/index.js';

/** The handlers of one method group, e.g. every `image.*` method. */
export type HandlerGroup<Prefix extends string> = {
  [M in MethodName as M extends `${Prefix}.${string}` ? M : never]: Handler<M>;
};
