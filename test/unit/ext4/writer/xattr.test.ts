import { describe, expect, it } from 'vitest';
import { placeXattrs } from '../../../../src/ext4/writer/xattr.js';

describe('xattr placement', () => {
  it('keeps small xattrs in the inode, larger ones in a block, and refuses more than a block', () => {
    expect(placeXattrs(new Map())).toEqual({ kind: 'none' });
    expect(placeXattrs(new Map([['security.capability', Buffer.alloc(20)]]))).toMatchObject({
      kind: 'inline',
    });
    const block = placeXattrs(new Map([['user.big', Buffer.alloc(500)]]));
    expect(block).toMatchObject({ kind: 'block' });
    if (typeof block === 'string' || block.kind !== 'block') throw new Error('not a block');
    const b = block.encode(1234, 0);
    expect(b.readUInt32LE(0)).toBe(0xea020000);
    expect(b.readUInt8(33)).toBe(1); // the user. index; the name is stored without it
    expect(b.subarray(48, 51).toString()).toBe('big');
    expect(placeXattrs(new Map([['user.huge', Buffer.alloc(5000)]]))).toMatch(
      /more than one 4096-byte block/,
    );
  });

  it('stores a POSIX ACL in ext4 form: short entries without ids', () => {
    // version 2, USER_OBJ rw-, USER 1000 r--, GROUP_OBJ r--, MASK r--, OTHER ---
    const acl = Buffer.alloc(4 + 5 * 8);
    acl.writeUInt32LE(2, 0);
    const entries: [number, number, number][] = [
      [1, 6, 0xffffffff],
      [2, 4, 1000],
      [4, 4, 0xffffffff],
      [0x10, 4, 0xffffffff],
      [0x20, 0, 0xffffffff],
    ];
    entries.forEach(([tag, perm, id], i) => {
      acl.writeUInt16LE(tag, 4 + i * 8);
      acl.writeUInt16LE(perm, 6 + i * 8);
      acl.writeUInt32LE(id, 8 + i * 8);
    });
    const placed = placeXattrs(new Map([['system.posix_acl_access', acl]]));
    if (typeof placed === 'string' || placed.kind !== 'inline') throw new Error('not inline');
    // entry: name_len 0, index 2, value size 4 + 4*4 + 8 = 28
    expect(placed.area.readUInt8(4)).toBe(0);
    expect(placed.area.readUInt8(5)).toBe(2);
    expect(placed.area.readUInt32LE(12)).toBe(28);
  });
});
