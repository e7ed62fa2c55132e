import { z } from 'zod';
import { imageSchema } from '../model/image.js';
import { vmSchema } from '../model/vm.js';

/**
 * The one method table shared by client and server: name -> params schema, result schema, and a line on
 * when it is allowed. Params are strict: an unknown field is a bad_request naming it.
 */
interface MethodSpec<P extends z.ZodType, R extends z.ZodType> {
  params: P;
  result: R;
  summary: string;
}

const method = <P extends z.ZodType, R extends z.ZodType>(spec: MethodSpec<P, R>) => spec;
const none = z.strictObject({});

export const operationSummarySchema = z.object({
  opId: z.string(),
  method: z.string(),
  startedAt: z.string(),
  stage: z.string().optional(),
});

export const methods = {
  ping: method({
    params: none,
    result: z.object({ version: z.string(), pid: z.number().int(), uptimeMs: z.number() }),
    summary: 'Liveness and version; allowed whatever the client version.',
  }),
  shutdown: method({
    params: none,
    result: z.object({ stopping: z.literal(true) }),
    summary: 'Graceful daemon exit (VMs keep running); allowed whatever the client version.',
  }),
  'daemon.operations.list': method({
    params: none,
    result: z.object({ operations: z.array(operationSummarySchema) }),
    summary: 'Operations in flight, with their last progress stage.',
  }),
  'image.list': method({
    params: none,
    result: z.object({ images: z.array(imageSchema) }),
    summary: 'Every image in the store.',
  }),
  'vm.list': method({
    params: none,
    result: z.object({ vms: z.array(vmSchema) }),
    summary: 'Every VM in the store, any state.',
  }),
} as const;

export type Methods = typeof methods;
export type MethodName = keyof Methods;
export type Params<M extends MethodName> = z.input<Methods[M]['params']>;
export type Result<M extends MethodName> = z.output<Methods[M]['result']>;

/** Methods a client of another version may still call, so the CLI can restart an old daemon. */
export const VERSION_EXEMPT: ReadonlySet<string> = new Set(['ping', 'shutdown']);

export const isMethodName = (name: string): name is MethodName => Object.hasOwn(methods, name);
