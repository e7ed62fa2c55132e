import { crc32c } from './crc32c.js';
import { BLOCK_SIZE, EXTRA_ISIZE, INODE_SIZE } from './layout.js';

const MAGIC = 0xea020000;
/** Bytes after the inode's extra fields: magic, entries, a 4-byte end mark, values. */
const INLINE_AREA = INODE_SIZE - 128 - EXTRA_ISIZE;
const BLOCK_HEADER = 32;

/** ext4's name indexes: the prefix is stored as a number and the rest of the name as bytes. */
const PREFIXES: [string, number][] = [
  ['system.posix_acl_access', 2],
  ['system.posix_acl_default', 3],
  ['user.', 1],
  ['trusted.', 4],
  ['security.', 6],
  ['system.', 7],
];

interface Attr {
  index: number;
  name: Buffer;
  value: Buffer;
}

/** Where an inode's xattrs go: in the inode, in one block of their own, or nowhere (none). */
export type XattrPlacement =
  | { kind: 'none' }
  | { kind: 'inline'; area: Buffer }
  | { kind: 'block'; encode: (blockNr: number, csumSeed: number) => Buffer };

function attrOf(fullName: string, value: Buffer): Attr {
  for (const [prefix, index] of PREFIXES) {
    if (fullName === prefix || (prefix.endsWith('.') && fullName.startsWith(prefix)))
      return { index, name: Buffer.from(fullName.slice(prefix.length)), value: diskValue(index, value) };
  }
  // Unknown namespaces keep their full name under index 0, as e2fsprogs stores them.
  return { index: 0, name: Buffer.from(fullName), value };
}

const entryLen = (a: Attr) => (16 + a.name.length + 3) & ~3;
const valueLen = (a: Attr) => (a.value.length + 3) & ~3;

/** ext4's entry hash: the name, then the value's 32-bit words (signed chars, as x86 kernels computed it). */
function entryHash(a: Attr): number {
  let h = 0;
  for (const c of a.name) h = ((h << 5) ^ (h >>> 27) ^ ((c << 24) >> 24)) >>> 0;
  const padded = Buffer.alloc(valueLen(a));
  a.value.copy(padded);
  for (let i = 0; i < padded.length; i += 4) h = ((h << 16) ^ (h >>> 16) ^ padded.readUInt32LE(i)) >>> 0;
  return h;
}

/** Writes entries at `entriesAt` and values downwards from `end`; value offsets count from `base`. */
function layout(buf: Buffer, attrs: Attr[], entriesAt: number, end: number, base: number): number[] {
  let off = entriesAt;
  let valueEnd = end;
  const hashes: number[] = [];
  for (const a of attrs) {
    let valueOffs = 0;
    if (a.value.length > 0) {
      valueEnd -= valueLen(a);
      a.value.copy(buf, valueEnd);
      valueOffs = valueEnd - base;
    }
    const hash = entryHash(a);
    hashes.push(hash);
    buf.writeUInt8(a.name.length, off);
    buf.writeUInt8(a.index, off + 1);
    buf.writeUInt16LE(valueOffs, off + 2);
    buf.writeUInt32LE(0, off + 4);
    buf.writeUInt32LE(a.value.length, off + 8);
    buf.writeUInt32LE(hash, off + 12);
    a.name.copy(buf, off + 16);
    off += entryLen(a);
  }
  return hashes;
}

/**
 * Decides where `xattrs` go: all in the inode's 96 spare bytes when they fit, else all in one xattr block
 * (entries sorted as the kernel's lookup expects), else the inode cannot be written (a reason).
 */
export function placeXattrs(xattrs: ReadonlyMap<string, Buffer>): XattrPlacement | string {
  if (xattrs.size === 0) return { kind: 'none' };
  const attrs = [...xattrs].map(([n, v]) => attrOf(n, v));
  const need = attrs.reduce((s, a) => s + entryLen(a) + valueLen(a), 0) + 4;
  if (4 + need <= INLINE_AREA) {
    const area = Buffer.alloc(INLINE_AREA);
    area.writeUInt32LE(MAGIC, 0);
    layout(area, attrs, 4, INLINE_AREA, 4);
    return { kind: 'inline', area };
  }
  if (BLOCK_HEADER + need > BLOCK_SIZE)
    return `its xattrs take ${need} bytes, more than one ${BLOCK_SIZE}-byte block holds`;
  attrs.sort((a, b) => a.index - b.index || a.name.length - b.name.length || Buffer.compare(a.name, b.name));
  return {
    kind: 'block',
    encode(blockNr, csumSeed) {
      const b = Buffer.alloc(BLOCK_SIZE);
      b.writeUInt32LE(MAGIC, 0);
      b.writeUInt32LE(1, 4); // h_refcount
      b.writeUInt32LE(1, 8); // h_blocks
      const hashes = layout(b, attrs, BLOCK_HEADER, BLOCK_SIZE, 0);
      let h = 0;
      for (const e of hashes) {
        if (e === 0) {
          h = 0;
          break;
        }
        h = ((h << 16) ^ (h >>> 16) ^ e) >>> 0;
      }
      b.writeUInt32LE(h, 12);
      const nr = Buffer.alloc(8);
      nr.writeBigUInt64LE(BigInt(blockNr));
      b.writeUInt32LE(crc32c(crc32c(csumSeed, nr), b), 16);
      return b;
    },
  };
}

const ACL_XATTR_VERSION = 2;
const ACL_DISK_VERSION = 1;
/** Tags whose disk entry carries an id (ACL_USER, ACL_GROUP); the others are 4 bytes. */
const TAGS_WITH_ID = new Set([0x02, 0x08]);

/**
 * POSIX ACLs arrive as the xattr API's format (version 2, 8-byte entries) and ext4 stores its own shorter
 * one (version 1); e2fsprogs converts the same way. A value that is not a valid ACL is stored as it came.
 */
function diskValue(index: number, value: Buffer): Buffer {
  if (index !== 2 && index !== 3) return value;
  if (value.length < 4 || (value.length - 4) % 8 !== 0 || value.readUInt32LE(0) !== ACL_XATTR_VERSION)
    return value;
  const parts: Buffer[] = [];
  const head = Buffer.alloc(4);
  head.writeUInt32LE(ACL_DISK_VERSION);
  parts.push(head);
  for (let off = 4; off < value.length; off += 8) {
    const tag = value.readUInt16LE(off);
    const e = Buffer.alloc(TAGS_WITH_ID.has(tag) ? 8 : 4);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(value.readUInt16LE(off + 2), 2);
    if (e.length === 8) e.writeUInt32LE(value.readUInt32LE(off + 4), 4);
    parts.push(e);
  }
  return Buffer.concat(parts);
}
