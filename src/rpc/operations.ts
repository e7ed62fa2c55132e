import type { z } from 'zod';
import type { operationSummarySchema } from './protocol.js';

export type OperationSummary = z.infer<typeof operationSummarySchema>;

/** Every RPC call is an operation with an id; this registry answers `daemon.operations.list`. */
export class Operations {
  readonly #inflight = new Map<string, OperationSummary & { controller: AbortController }>();

  begin(opId: string, method: string, controller: AbortController): void {
    this.#inflight.set(opId, { opId, method, startedAt: new Date().toISOString(), controller });
  }

  stage(opId: string, stage: string): void {
    const op = this.#inflight.get(opId);
    if (op) op.stage = stage;
  }

  end(opId: string): void {
    this.#inflight.delete(opId);
  }

  list(): OperationSummary[] {
    return [...this.#inflight.values()].map(({ controller: _c, ...summary }) => summary);
  }

  /** Cancels everything in flight (daemon shutdown). */
  abortAll(reason: string): void {
    for (const op of this.#inflight.values()) op.controller.abort(new Error(reason));
  }

  get size(): number {
    return this.#inflight.size;
  }
}
