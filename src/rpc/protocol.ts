import type { z } from 'zod';
import { daemonMethods } from './methods/daemon.js';
import { buildLazily } from './methods/define.js';
import { fileMethods } from './methods/files.js';
import { forwardMethods } from './methods/forward.js';
import { imageMethods } from './methods/image.js';
import { kernelMethods } from './methods/kernel.js';
import { snapshotMethods } from './methods/snapshot.js';
import { vmMethods } from './methods/vm.js';
import { vmStatsMethods } from './methods/vm-stats.js';
import { workspaceMethods } from './methods/workspace.js';

export { operationSummarySchema } from './methods/daemon.js';

/**
 * The one method table shared by client and server (our swagger): name -> params schema, result schema,
 * and a line on when it is allowed. Each group lives in methods/<group>.ts. A method's schemas are built the
 * first time it is read from here (a CLI call builds one method's, not the table's).
 */
export const methods = buildLazily({
  ...daemonMethods,
  ...imageMethods,
  ...kernelMethods,
  ...vmMethods,
  ...vmStatsMethods,
  ...fileMethods,
  ...forwardMethods,
  ...workspaceMethods,
  ...snapshotMethods,
});

export type Methods = typeof methods;
export type MethodName = keyof Methods;
export type Params<M extends MethodName> = z.input<Methods[M]['params']>;
export type Result<M extends MethodName> = z.output<Methods[M]['result']>;

/** Methods a client of another version may still call, so the CLI can restart an old daemon. */
export const VERSION_EXEMPT: ReadonlySet<string> = new Set(['ping', 'shutdown']);

export const isMethodName = (name: string): name is MethodName => Object.hasOwn(methods, name);
