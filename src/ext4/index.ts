/**
 * ext4 images without mounting and without e2fsprogs: a writer that turns a stream of entries into a
 * finished image (file data placed once, as it streams), and a defensive read-only reader for images
 * banger did not make (registered, bundled, catalogued, guest-written), so no tool has to run as root on
 * a filesystem someone else crafted. See docs/rootfs.md.
 */
export type { RawDirEntry } from './reader/directory.js';
export { refuseImage } from './reader/errors.js';
export type { Extent } from './reader/extents.js';
export { Ext4Image, MAX_DIRECTORY_BYTES, MAX_SYMLINK_BYTES, ROOT_INO } from './reader/image.js';
export type { Inode, InodeKind } from './reader/inode.js';
export type { FileData } from './writer/file-data.js';
export { Ext4Writer, type FinishOptions, ImageTooSmallError } from './writer/image-writer.js';
export { ImageContentError } from './writer/plan.js';
export type { InodeSpec, TreeEntry } from './writer/tree.js';
