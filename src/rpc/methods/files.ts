import { z } from 'zod';
import { dirEntrySchema } from '../../guest/replies.js';
import { method } from './define.js';

const ref = z.string().min(1);
/** A guest path: absolute, as the agent requires; the guest resolves it in its own tree. */
const guestPath = z.string().startsWith('/', 'an absolute guest path').max(4096);
/** 10 MiB (the daemon's FILE_MAX_BYTES) in base64: the one RPC line stays under 16 MiB. */
const MAX_BASE64 = Math.ceil((10 * 1024 * 1024) / 3) * 4;
/** File bytes on the wire: base64, as stdin and output notifications carry bytes. */
const bytes = z.base64().max(MAX_BASE64, 'at most 10 MiB per file');
const id = z.number().int().min(0).max(4294967294);

/** `vm.files.*` methods: a running VM's files through its guest agent (issue 21). */
export const fileMethods = {
  'vm.files.read': method(() => ({
    params: z.strictObject({ ref, path: guestPath }),
    result: z.object({ data: bytes, size: z.number().int() }),
    summary: "A regular file of a running VM (at most 10 MiB), base64; the VM's idle clock is reset.",
  })),
  'vm.files.write': method(() => ({
    params: z.strictObject({
      ref,
      path: guestPath,
      data: bytes,
      /** Permission bits; 0o644 when left out. */
      mode: z.number().int().min(0).max(0o7777).optional(),
      /** Owner ids to set; unchanged (root for a new file) when left out. */
      uid: id.optional(),
      gid: id.optional(),
    }),
    result: z.object({ size: z.number().int() }),
    summary: 'Write a file of a running VM atomically (temporary name, fsync, rename), at most 10 MiB.',
  })),
  'vm.files.list': method(() => ({
    params: z.strictObject({ ref, path: guestPath }),
    result: z.object({ entries: z.array(dirEntrySchema), truncated: z.boolean() }),
    summary:
      'A directory of a running VM: name, type, size, mode, owner, mtime (symlinks not followed), by name.',
  })),
} as const;

/** The names above, for the `vm.*` handler group that leaves them to the file handlers. */
export type FileMethod = keyof typeof fileMethods;
