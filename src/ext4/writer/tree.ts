import type { FileData } from './file-data.js';
import type { InodeKind } from './inode.js';

/** One inode as the writer takes it; names that share an InodeSpec object are hard links to one inode. */
export interface InodeSpec {
  kind: InodeKind;
  /** Permission bits with setuid/setgid/sticky (07777), no type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (1901..2446). */
  mtime: number;
  mtimeNsec?: number;
  xattrs: ReadonlyMap<string, Buffer>;
  devMajor?: number;
  devMinor?: number;
  /** A regular file's content, placed by `Ext4Writer.writeFile`; none is an empty file. */
  data?: FileData;
  symlinkTarget?: string;
}

/** A name in a directory: the tree the image will hold, root first. */
export interface TreeEntry {
  name: string;
  inode: InodeSpec;
  /** A directory's entries; present exactly when `inode.kind` is 'dir'. */
  children?: Iterable<TreeEntry>;
}
