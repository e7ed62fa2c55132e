import { describe, expect, it } from 'vitest';
import { BoundedOutput, utf8Prefix, utf8Suffix } from '../../../src/mcp/index.js';

describe('BoundedOutput', () => {
  it('keeps a stream within budget whole', () => {
    const out = new BoundedOutput(16);
    out.write(Buffer.from('hello '));
    out.write(Buffer.from('world'));
    expect(out.text()).toBe('hello world');
    expect(out.truncated).toBe(false);
    expect(out.totalBytes).toBe(11);
  });

  it('exactly at budget is not truncated', () => {
    const out = new BoundedOutput(8);
    out.write(Buffer.from('12345678'));
    expect(out.truncated).toBe(false);
    expect(out.text()).toBe('12345678');
  });

  it('keeps the head and the tail of a large stream, says how much was dropped', () => {
    const out = new BoundedOutput(10);
    // Many small writes: the tail is compacted as it goes, and the kept text is still the last 5 bytes.
    const all = Array.from({ length: 1000 }, (_, i) => String(i % 10)).join('');
    for (const ch of all) out.write(Buffer.from(ch));
    expect(out.truncated).toBe(true);
    expect(out.totalBytes).toBe(1000);
    expect(out.text()).toBe(`01234\n[… 990 bytes omitted …]\n56789`);
  });

  it('one huge chunk is cut the same way', () => {
    const out = new BoundedOutput(6);
    out.write(Buffer.from(`abc${'x'.repeat(100_000)}xyz`));
    expect(out.text()).toBe('abc\n[… 100000 bytes omitted …]\nxyz');
  });

  it('holds about its budget in memory however much is written', () => {
    const out = new BoundedOutput(1024);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    for (let i = 0; i < 200; i++) out.write(chunk);
    expect(out.totalBytes).toBe(200 * 64 * 1024);
    expect(Buffer.byteLength(out.text())).toBeLessThan(1024 + 64);
  });

  it('never cuts a UTF-8 character in half at either cut', () => {
    // '€' is 3 bytes: a head of 5 bytes ends 2 bytes into a '€', a tail of 5 starts on its last byte.
    const out = new BoundedOutput(10);
    out.write(Buffer.from('abc€€€€€€d€'));
    const text = out.text();
    expect(text).not.toContain('\uFFFD');
    expect(text).toBe('abc\n[… 18 bytes omitted …]\nd€');
  });

  it('utf8Prefix and utf8Suffix drop only partial characters', () => {
    const euro = Buffer.from('€'); // e2 82 ac
    expect(utf8Prefix(Buffer.concat([Buffer.from('a'), euro.subarray(0, 2)]))).toBe('a');
    expect(utf8Prefix(Buffer.concat([Buffer.from('a'), euro]))).toBe('a€');
    expect(utf8Suffix(Buffer.concat([euro.subarray(1), Buffer.from('z')]))).toBe('z');
    expect(utf8Suffix(Buffer.concat([euro, Buffer.from('z')]))).toBe('€z');
    expect(utf8Prefix(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x41]))).toBe('\uFFFD\uFFFD\uFFFD\uFFFDA');
  });
});
