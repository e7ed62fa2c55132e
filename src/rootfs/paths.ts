import { badRequest } from '../model/errors.js';

/** ext4 (and every Linux filesystem we meet) caps a name at 255 bytes. */
const MAX_NAME_BYTES = 255;
/**
 * The longest path in the image a layer may write. It was set for the staging tree `mkfs.ext4 -d` used to
 * read (e2fsprogs 1.47.0 overflows a heap buffer on a path of exactly 2039 bytes); the writer has no such
 * bug, and the cap stays: no real image comes near it, and it keeps far below PATH_MAX (4096) for the guest.
 */
export const MAX_STAGED_PATH_BYTES = 1900;

/**
 * Splits a tar entry name into safe components. Returns `[]` for the root itself (`/`, `.`, `./`, which
 * umoci and `tar -C dir .` write). Refuses absolute names, `..`, names the debugfs script cannot carry
 * (newline, carriage return), bytes that were not UTF-8, and names longer than ext4 allows.
 */
export function entryComponents(name: string): string[] {
  if (name === '/' || name === '') return [];
  if (name.startsWith('/')) throw unsafeName(name, 'is absolute');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  for (const part of parts) {
    if (part === '..') throw unsafeName(name, 'contains ".."');
    checkComponent(name, part);
  }
  if (Buffer.byteLength(parts.join('/')) > MAX_STAGED_PATH_BYTES)
    throw unsafeName(name, `is longer than ${MAX_STAGED_PATH_BYTES} bytes`);
  return parts;
}

/**
 * Refuses an entry whose place in the image, once symlinks in the image are followed, is longer than
 * the cap allows: a short name below a symlink to a long directory lands at a long path.
 */
export function checkStagedPath(parts: readonly string[]): void {
  const bytes = Buffer.byteLength(parts.join('/'));
  if (bytes > MAX_STAGED_PATH_BYTES) {
    throw badRequest(
      `layer entry ${JSON.stringify(absolute(parts))} is ${bytes} bytes long, over the ${MAX_STAGED_PATH_BYTES}-byte limit for a path in the image`,
      {
        hint: 'the image is malformed or hostile (paths in an image are capped at 1900 bytes); nothing was written',
      },
    );
  }
}

function checkComponent(whole: string, part: string): void {
  if (/[\n\r]/.test(part)) throw unsafeName(whole, 'contains a newline, which a debugfs script cannot carry');
  if (part.includes('\uFFFD')) throw unsafeName(whole, 'is not valid UTF-8');
  if (Buffer.byteLength(part) > MAX_NAME_BYTES)
    throw unsafeName(whole, `has a component longer than ${MAX_NAME_BYTES} bytes`);
}

function unsafeName(name: string, why: string) {
  return badRequest(`layer entry ${JSON.stringify(name)} ${why}`, {
    hint: 'the image is malformed or hostile; nothing was built',
  });
}

/**
 * Quotes one argument for a debugfs command file. debugfs (libss) splits on whitespace, honours double
 * quotes and reads `""` inside quotes as one `"`; a newline always ends the command, so it is refused.
 */
export function debugfsQuote(arg: string): string {
  if (/[\n\r\0]/.test(arg)) {
    throw badRequest(`${JSON.stringify(arg)} cannot be written into a debugfs script`, {
      hint: 'names with newlines are not supported in images',
    });
  }
  return `"${arg.replaceAll('"', '""')}"`;
}

/** `a/b` -> `/a/b`; the root is `/`. */
export function absolute(parts: readonly string[]): string {
  return `/${parts.join('/')}`;
}
