import { describe, expect, it } from 'vitest';
import { writeCpio } from '../../../src/kernel/index.js';

interface Parsed {
  name: string;
  mode: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Buffer;
  offset: number;
}

/** An independent newc reader, to check what the writer produced. */
function parse(archive: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let pos = 0;
  for (;;) {
    expect(archive.toString('ascii', pos, pos + 6)).toBe('070701');
    const field = (i: number) =>
      Number.parseInt(archive.toString('ascii', pos + 6 + i * 8, pos + 14 + i * 8), 16);
    const nameSize = field(11);
    const size = field(6);
    const name = archive.toString('utf8', pos + 110, pos + 110 + nameSize - 1);
    const dataStart = Math.ceil((pos + 110 + nameSize) / 4) * 4;
    out.push({
      name,
      mode: field(1),
      size,
      rdevMajor: field(9),
      rdevMinor: field(10),
      data: archive.subarray(dataStart, dataStart + size),
      offset: pos,
    });
    pos = Math.ceil((dataStart + size) / 4) * 4;
    if (name === 'TRAILER!!!') break;
  }
  expect(pos).toBe(archive.length);
  return out;
}

describe('writeCpio', () => {
  it('writes newc members, 4-byte aligned, with a trailer', () => {
    const archive = writeCpio([
      { type: 'dir', path: 'dev' },
      { type: 'char', path: '/dev/console', major: 5, minor: 1 },
      { type: 'file', path: 'init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
      { type: 'file', path: 'odd', data: Buffer.from('abcde') },
      { type: 'symlink', path: 'sbin', target: 'bin' },
    ]);
    const members = parse(archive);
    expect(members.map((m) => m.name)).toEqual(['dev', 'dev/console', 'init', 'odd', 'sbin', 'TRAILER!!!']);
    for (const m of members) expect(m.offset % 4).toBe(0);
    const [dir, con, init, odd, link] = members;
    expect(dir?.mode).toBe(0o040755);
    expect(con).toMatchObject({ mode: 0o020600, rdevMajor: 5, rdevMinor: 1, size: 0 });
    expect(init?.mode).toBe(0o100755);
    expect(init?.data.toString()).toBe('#!/bin/sh\n');
    expect(odd?.data.toString()).toBe('abcde');
    expect(link).toMatchObject({ mode: 0o120777 });
    expect(link?.data.toString()).toBe('bin');
  });

  it('refuses paths that climb out of the archive', () => {
    expect(() => writeCpio([{ type: 'dir', path: '../etc' }])).toThrow(/bad cpio path/);
    expect(() => writeCpio([{ type: 'dir', path: '/' }])).toThrow(/bad cpio path/);
  });
});
