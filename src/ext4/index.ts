/**
 * ext4 images without mounting and without e2fsprogs. Today: a defensive read-only reader for images
 * banger did not make (registered, bundled, catalogued, guest-written), so no tool has to run as root on
 * a filesystem someone else crafted. See docs/rootfs.md.
 */
export type { RawDirEntry } from './reader/directory.js';
export { refuseImage } from './reader/errors.js';
export type { Extent } from './reader/extents.js';
export { Ext4Image, MAX_DIRECTORY_BYTES, MAX_SYMLINK_BYTES, ROOT_INO } from './reader/image.js';
export type { Inode, InodeKind } from './reader/inode.js';
