import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ProgressExtra, progressRelay } from '../../../src/mcp/progress.js';

type Sent = Parameters<ProgressExtra['sendNotification']>[0]['params'];

function extra(token?: string | number) {
  const sent: Sent[] = [];
  const e: ProgressExtra = {
    ...(token === undefined ? {} : { _meta: { progressToken: token } }),
    sendNotification: async (n) => {
      sent.push(n.params);
    },
  };
  return { e, sent };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('MCP progress relay', () => {
  it('relays nothing to a client that sent no progressToken', () => {
    expect(progressRelay(extra().e)).toBeUndefined();
  });

  it('counts up with every notification and says what moved', () => {
    const { e, sent } = extra('tok');
    const relay = progressRelay(e);
    relay?.({ kind: 'stage', stage: 'resolve' });
    relay?.({ kind: 'bytes', stage: 'download', item: 'sha256:ab', done: 10, total: 100 });
    relay?.({ kind: 'log', level: 'warn', message: 'slow registry' });
    relay?.({ kind: 'stage', stage: 'flatten', message: '3 layers' });
    expect(sent).toEqual([
      { progressToken: 'tok', progress: 1, message: 'resolve' },
      { progressToken: 'tok', progress: 2, message: 'download sha256:ab: 10 of 100 bytes' },
      { progressToken: 'tok', progress: 3, message: 'slow registry' },
      { progressToken: 'tok', progress: 4, message: 'flatten: 3 layers' },
    ]);
  });

  it('sends a few byte counts a second per stage, and always the last one', () => {
    vi.useFakeTimers();
    const { e, sent } = extra(7);
    const relay = progressRelay(e);
    for (let done = 1; done <= 50; done++) relay?.({ kind: 'bytes', stage: 'download', done, total: 100 });
    expect(sent.map((s) => s.message)).toEqual(['download: 1 of 100 bytes']);
    vi.advanceTimersByTime(300);
    relay?.({ kind: 'bytes', stage: 'download', done: 60, total: 100 });
    relay?.({ kind: 'bytes', stage: 'download', done: 100, total: 100 }); // the end always goes
    relay?.({ kind: 'bytes', stage: 'write', done: 1 }); // a new stage always goes
    expect(sent.map((s) => s.message)).toEqual([
      'download: 1 of 100 bytes',
      'download: 60 of 100 bytes',
      'download: 100 of 100 bytes',
      'write: 1 bytes',
    ]);
    expect(sent.map((s) => s.progress)).toEqual([1, 2, 3, 4]);
  });

  it('a client gone away does not throw into the call', async () => {
    const relay = progressRelay({
      _meta: { progressToken: 1 },
      sendNotification: () => Promise.reject(new Error('closed')),
    });
    expect(() => relay?.({ kind: 'stage', stage: 'resolve' })).not.toThrow();
    await new Promise((r) => setTimeout(r, 10)); // no unhandled rejection
  });
});
