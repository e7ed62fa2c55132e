/**
 * Long work reports progress as typed events to a sink it was given; only cli/render decides how they look.
 */
export type ProgressEvent =
  | { kind: 'stage'; stage: string; message?: string }
  | { kind: 'bytes'; stage: string; item?: string; done: number; total?: number }
  | { kind: 'log'; level: 'info' | 'warn'; message: string };

export type ProgressSink = (event: ProgressEvent) => void;

/** A sink that drops everything, for callers that do not render progress. */
export const silentProgress: ProgressSink = () => {};
