/** One directory entry as stored: the raw name bytes and the inode it names. */
export interface RawDirEntry {
  ino: number;
  name: Buffer;
}

/**
 * The live entries of one directory block. Linear and htree directories alike: an htree's root and
 * interior blocks look like entries with inode 0 or one long `..` record, so walking by rec_len skips
 * them, as does the checksum tail (inode 0, rec_len 12). A rec_len that is not a multiple of 4, runs
 * past the block or is too short for its name is refused.
 */
export function parseDirBlock(block: Buffer, refuse: (why: string) => Error): RawDirEntry[] {
  const out: RawDirEntry[] = [];
  let off = 0;
  while (off < block.length) {
    if (off + 8 > block.length) throw refuse(`a directory record at ${off} is cut off`);
    const ino = block.readUInt32LE(off);
    const recLen = block.readUInt16LE(off + 4);
    const nameLen = block.readUInt8(off + 6);
    const len = block.length < 65536 ? recLen : decode64k(recLen);
    if (len < 8 || len % 4 !== 0 || off + len > block.length)
      throw refuse(`a directory record at ${off} has length ${recLen}`);
    if (ino !== 0) {
      if (8 + nameLen > len) throw refuse(`a directory record at ${off} is shorter than its name`);
      out.push({ ino, name: Buffer.from(block.subarray(off + 8, off + 8 + nameLen)) });
    }
    off += len;
  }
  return out;
}

/** 64 KiB blocks do not fit rec_len's 16 bits: ext4 keeps bits 16-17 in the low two bits, 0/65535 = 64 KiB. */
function decode64k(recLen: number): number {
  if (recLen === 0 || recLen === 65535) return 65536;
  return (recLen & 65532) | ((recLen & 3) << 16);
}
