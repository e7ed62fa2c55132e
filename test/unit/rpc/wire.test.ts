import { describe, expect, it } from 'vitest';
import { lineSplitter, MAX_LINE_BYTES } from '../../../src/rpc/wire.js';

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
