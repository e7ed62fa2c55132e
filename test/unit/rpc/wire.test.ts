import { describe, expect, it } from 'vitest';
import { lineSplitter, MAX_LINE_BYTES, parseResponse } from '../../../src/rpc/wire.js';

describe('lineSplitter', () => {
  it('reassembles lines split across chunks and skips blank lines', () => {
    const lines: string[] = [];
    const feed = lineSplitter(
      (l) => lines.push(l),
      () => lines.push('OVERFLOW'),
    );
    feed(Buffer.from('{"a":1}\n{"b"'));
    feed(Buffer.from(':2}\n\n{"c":'));
    feed(Buffer.from('3}\n'));
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it('keeps multi-byte characters split across chunks intact', () => {
    const lines: string[] = [];
    const bytes = Buffer.from('"héllo"\n');
    const feed = lineSplitter(
      (l) => lines.push(l),
      () => {},
    );
    feed(bytes.subarray(0, 3));
    feed(bytes.subarray(3));
    expect(lines).toEqual(['"héllo"']);
  });

  it('reports a line over the limit instead of buffering it', () => {
    let overflow = 0;
    const feed = lineSplitter(
      () => {},
      () => overflow++,
    );
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    for (let i = 0; i <= MAX_LINE_BYTES / chunk.length; i++) feed(chunk);
    expect(overflow).toBe(1);
  });
});

describe('parseResponse', () => {
  const line = (m: unknown) => JSON.stringify(m);

  it('reads results, errors, progress and output frames', () => {
    expect(parseResponse(line({ jsonrpc: '2.0', id: 1, result: { vms: [] } }))).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: { vms: [] },
    });
    const boot = { vmId: 'a', vmName: 'b', logPath: '/x', keptDespiteRm: false };
    const error = { code: -32000, message: 'no', data: { code: 'boot_failed', boot } };
    expect(parseResponse(line({ jsonrpc: '2.0', id: null, error }))).toMatchObject({ error });
    expect(
      parseResponse(line({ jsonrpc: '2.0', method: 'progress', params: { id: 1, event: {} } })),
    ).toBeDefined();
    const output = { id: 'x', stream: 'stderr', data: 'aGk=' };
    expect(parseResponse(line({ jsonrpc: '2.0', method: 'output', params: output }))).toBeDefined();
  });

  it('skips what is not a frame of ours rather than acting on it', () => {
    for (const bad of [
      'not json',
      line(null),
      line([1]),
      line({ jsonrpc: '1.0', id: 1, result: 1 }),
      line({ jsonrpc: '2.0', id: { x: 1 }, result: 1 }),
      line({ jsonrpc: '2.0', id: 1, error: { code: 1, message: 'm', data: { code: 'made_up' } } }),
      line({
        jsonrpc: '2.0',
        id: 1,
        error: { code: 1, message: 'm', data: { code: 'boot_failed', boot: 1 } },
      }),
      line({ jsonrpc: '2.0', id: 1, error: 'x' }),
      line({ jsonrpc: '2.0', method: 'output', params: { id: 1, stream: 'stdin', data: '' } }),
      line({ jsonrpc: '2.0', method: 'output', params: { id: 1, stream: 'stdout', data: 5 } }),
      line({ jsonrpc: '2.0', method: 'other', params: { id: 1 } }),
      line({ jsonrpc: '2.0', method: 'progress', params: { event: {} } }),
    ]) {
      expect(parseResponse(bad), bad).toBeUndefined();
    }
  });
});
