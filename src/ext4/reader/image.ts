import { type FileHandle, open } from 'node:fs/promises';
import { parseDirBlock, type RawDirEntry } from './directory.js';
import { refuseImage } from './errors.js';
import { type Extent, readBlockMap, readExtents } from './extents.js';
import { type Inode, parseInode } from './inode.js';
import { parseSuperblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, type Superblock } from './superblock.js';

export const ROOT_INO = 2;
/** Linux's own limit on a symlink target (PATH_MAX less the NUL). */
export const MAX_SYMLINK_BYTES = 4095;
/** A directory larger than this is refused: one holds millions of entries long before it. */
export const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;
/** Symlinks followed while resolving one path, as Linux's MAXSYMLINKS. */
const MAX_SYMLINK_HOPS = 40;
/** File data is copied in pieces of at most this size: memory stays flat whatever the image says. */
const COPY_CHUNK = 1024 * 1024;

/**
 * A read-only view of an ext4 image that does not trust it: every number read from the image is checked
 * against the filesystem's size before use, and every read is a bounded positional read on one handle.
 */
export class Ext4Image {
  readonly path: string;
  readonly sb: Superblock;
  private readonly fh: FileHandle;
  private readonly descriptors: Buffer;

  private constructor(path: string, fh: FileHandle, sb: Superblock, descriptors: Buffer) {
    this.path = path;
    this.fh = fh;
    this.sb = sb;
    this.descriptors = descriptors;
  }

  /** Opens `path` read-only and checks its superblock and group descriptors' size. */
  static async open(path: string): Promise<Ext4Image> {
    const fh = await open(path, 'r');
    try {
      const size = (await fh.stat()).size;
      const raw = Buffer.alloc(SUPERBLOCK_SIZE);
      const { bytesRead } = await fh.read(raw, 0, SUPERBLOCK_SIZE, SUPERBLOCK_OFFSET);
      if (bytesRead !== SUPERBLOCK_SIZE) throw refuseImage(path, 'the file is too small for a superblock');
      const sb = parseSuperblock(path, raw, size);
      const descriptors = Buffer.alloc(sb.groupCount * sb.descSize);
      await readFully(fh, path, descriptors, (sb.firstDataBlock + 1) * sb.blockSize);
      return new Ext4Image(path, fh, sb, descriptors);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /** An error that names this image. */
  refuse(why: string): Error {
    return refuseImage(this.path, why);
  }

  async readBlock(block: number): Promise<Buffer> {
    if (!Number.isSafeInteger(block) || block >= this.sb.blocksCount)
      throw this.refuse(`block ${block} is past the end`);
    const buf = Buffer.alloc(this.sb.blockSize);
    await readFully(this.fh, this.path, buf, block * this.sb.blockSize);
    return buf;
  }

  async inode(ino: number): Promise<Inode> {
    const { inodesCount, inodesPerGroup, inodeSize, blockSize, blocksCount, descSize } = this.sb;
    if (ino < 1 || ino > inodesCount) throw this.refuse(`inode ${ino} does not exist`);
    const group = Math.floor((ino - 1) / inodesPerGroup);
    const desc = this.descriptors.subarray(group * descSize, (group + 1) * descSize);
    const table = desc.readUInt32LE(0x8) + (descSize >= 64 ? desc.readUInt32LE(0x28) * 2 ** 32 : 0);
    if (table + Math.ceil((inodesPerGroup * inodeSize) / blockSize) > blocksCount)
      throw this.refuse(`the inode table of group ${group} lies past the end`);
    const raw = Buffer.alloc(inodeSize);
    await readFully(this.fh, this.path, raw, table * blockSize + ((ino - 1) % inodesPerGroup) * inodeSize);
    return parseInode(ino, raw);
  }

  /** Where an inode's data lies; refuses what this reader cannot read rather than misreading it. */
  async extentsOf(inode: Inode): Promise<Extent[]> {
    if (inode.encrypted) throw this.refuse(`inode ${inode.ino} is encrypted`);
    if (inode.inline)
      throw this.refuse(`inode ${inode.ino} keeps its data inline, which this reader does not read`);
    if (inode.size === 0) return [];
    const bounds = {
      blockSize: this.sb.blockSize,
      blocksCount: this.sb.blocksCount,
      logicalEnd: Math.ceil(inode.size / this.sb.blockSize),
      readBlock: (b: number) => this.readBlock(b),
      refuse: (why: string) => this.refuse(`inode ${inode.ino}: ${why}`),
    };
    return inode.extents ? readExtents(inode.blockMap, bounds) : readBlockMap(inode.blockMap, bounds);
  }

  /** The entries of a directory, `.` and `..` included, as stored (names are bytes). */
  async readDir(dir: Inode): Promise<RawDirEntry[]> {
    if (dir.kind !== 'directory') throw this.refuse(`inode ${dir.ino} is not a directory`);
    if (dir.size > MAX_DIRECTORY_BYTES)
      throw this.refuse(`directory inode ${dir.ino} claims ${dir.size} bytes`);
    const out: RawDirEntry[] = [];
    const refuse = (why: string) => this.refuse(`directory inode ${dir.ino}: ${why}`);
    for (const e of await this.extentsOf(dir)) {
      if (e.unwritten) continue;
      for (let i = 0; i < e.length; i++)
        out.push(...parseDirBlock(await this.readBlock(e.physical + i), refuse));
    }
    return out;
  }

  /** A symlink's target, verbatim. Fast symlinks live in i_block; others in one data block. */
  async readSymlink(link: Inode): Promise<Buffer> {
    if (link.kind !== 'symlink') throw this.refuse(`inode ${link.ino} is not a symlink`);
    if (link.size === 0 || link.size > MAX_SYMLINK_BYTES)
      throw this.refuse(`symlink inode ${link.ino} has a ${link.size}-byte target`);
    if (link.size < link.blockMap.length && !link.extents && !link.inline)
      return Buffer.from(link.blockMap.subarray(0, link.size));
    const target = Buffer.alloc(link.size);
    for (const e of await this.extentsOf(link)) {
      if (e.unwritten) continue;
      const start = e.logical * this.sb.blockSize;
      const len = Math.min(e.length * this.sb.blockSize, link.size - start);
      await readFully(
        this.fh,
        this.path,
        target.subarray(start, start + len),
        e.physical * this.sb.blockSize,
      );
    }
    return target;
  }

  /** Copies a regular file's data into `out` at the same offsets; holes stay holes. */
  async copyFile(file: Inode, out: FileHandle): Promise<void> {
    if (file.kind !== 'regular') throw this.refuse(`inode ${file.ino} is not a regular file`);
    const chunk = Buffer.alloc(Math.min(COPY_CHUNK, Math.max(file.size, 1)));
    for (const e of await this.extentsOf(file)) {
      if (e.unwritten) continue;
      const end = Math.min((e.logical + e.length) * this.sb.blockSize, file.size);
      for (let pos = e.logical * this.sb.blockSize; pos < end; pos += chunk.length) {
        const len = Math.min(chunk.length, end - pos);
        const from = (e.physical - e.logical) * this.sb.blockSize + pos;
        await readFully(this.fh, this.path, chunk.subarray(0, len), from);
        await out.write(chunk, 0, len, pos);
      }
    }
    await out.truncate(file.size);
  }

  /**
   * The inode an absolute path names, or undefined when it does not exist. Symlinks in the middle of the
   * path are followed inside the image (an absolute target from the image's root, as debugfs does); the
   * last component is not followed.
   */
  async lookup(path: string): Promise<Inode | undefined> {
    let hops = 0;
    const resolve = async (start: Inode, parts: string[]): Promise<Inode | undefined> => {
      let dir = start;
      for (const [i, part] of parts.entries()) {
        if (dir.kind !== 'directory') return undefined;
        const hit = (await this.readDir(dir)).find((e) => e.name.equals(Buffer.from(part)));
        if (!hit) return undefined;
        let next = await this.inode(hit.ino);
        if (next.kind === 'symlink' && i < parts.length - 1) {
          if (++hops > MAX_SYMLINK_HOPS) throw this.refuse(`too many symlinks resolving ${path}`);
          const target = (await this.readSymlink(next)).toString();
          const from = target.startsWith('/') ? await this.inode(ROOT_INO) : dir;
          const found = await resolve(from, components(target));
          if (!found) return undefined;
          next = found;
        }
        dir = next;
      }
      return dir;
    };
    return resolve(await this.inode(ROOT_INO), components(path));
  }
}

function components(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}

async function readFully(fh: FileHandle, image: string, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0)
      throw refuseImage(image, `a read at byte ${position + done} runs past the end of the file`);
    done += bytesRead;
  }
}
