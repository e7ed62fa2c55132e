import { z } from 'zod';
import { method, noParams } from './define.js';

export const operationSummarySchema = z.object({
  opId: z.string(),
  method: z.string(),
  startedAt: z.string(),
  stage: z.string().optional(),
});

/** The daemon's own methods. */
export const daemonMethods = {
  ping: method(() => ({
    params: noParams,
    result: z.object({ version: z.string(), pid: z.number().int(), uptimeMs: z.number() }),
    summary: 'Liveness and version; allowed whatever the client version.',
  })),
  shutdown: method(() => ({
    params: noParams,
    result: z.object({ stopping: z.literal(true) }),
    summary: 'Graceful daemon exit (VMs keep running); allowed whatever the client version.',
  })),
  'daemon.operations.list': method(() => ({
    params: noParams,
    result: z.object({ operations: z.array(operationSummarySchema) }),
    summary: 'Operations in flight, with their last progress stage.',
  })),
} as const;
