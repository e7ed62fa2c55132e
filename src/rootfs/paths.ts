import { badRequest } from '../model/errors.js';

/** ext4 (and every Linux filesystem we meet) caps a name at 255 bytes. */
const MAX_NAME_BYTES = 255;
/** Keeps `<staging>/<path>` under the kernel's 4096-byte PATH_MAX with room for the staging prefix. */
const MAX_PATH_BYTES = 3800;

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
  if (Buffer.byteLength(parts.join('/')) > MAX_PATH_BYTES)
    throw unsafeName(name, `is longer than ${MAX_PATH_BYTES} bytes`);
  return parts;
}

function checkComponent(whole: string, part: string): void {
  if (/[\n\r]/.test(part)) throw unsafeName(whole, 'contains a newline, which a debugfs script cannot carry');
  if (part.includes('\uFFFD')) throw unsafeName(whole, 'is not valid UTF-8');
  if (Buffer.byteLength(part) > MAX_NAME_BYTES)
    throw unsafeName(whole, `has a component longer than ${MAX_NAME_BYTES} bytes`);
}

function unsafeName(name: string, why: string) {
  return badRequest(`layer entry ${JSON.stringify(name)} ${why}`, {
    hint: 'the image is malformed or hostile; nothing was written outside the staging directory',
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
