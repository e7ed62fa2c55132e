import { createRequire } from 'node:module';

const SCHILY = 'SCHILY.xattr.';
const LIBARCHIVE = 'LIBARCHIVE.xattr.';

interface TarStreamHeaders {
  decodePax(buf: Buffer): Record<string, string>;
  __bangerRawXattrs?: boolean;
}

/** Set once the decoder is in place (see installRawPaxXattrs). */
let installed = false;

/**
 * tar-stream decodes every PAX value as UTF-8, which destroys binary xattr values such as
 * `security.capability` (GNU tar stores their raw bytes). This swaps in a decoder that keeps
 * `SCHILY.xattr.*` values as latin1 strings (one char per byte), so `xattrsOf` can recover the bytes.
 * Everything else decodes exactly as before; installing twice is a no-op.
 */
export function installRawPaxXattrs(): void {
  // Resolved once per process: a build that runs after its process dropped privileges (and so may no
  // longer read node_modules) must not need to look tar-stream up again.
  if (installed) return;
  const require = createRequire(import.meta.url);
  const headers = require(
    require.resolve('tar-stream').replace(/index\.js$/, 'headers.js'),
  ) as TarStreamHeaders;
  if (!headers.__bangerRawXattrs) {
    headers.decodePax = decodePaxKeepingBytes;
    headers.__bangerRawXattrs = true;
  }
  installed = true;
}

function decodePaxKeepingBytes(input: Buffer): Record<string, string> {
  const result: Record<string, string> = {};
  let buf = input;
  while (buf.length) {
    let i = 0;
    while (i < buf.length && buf[i] !== 32) i++;
    const len = Number.parseInt(buf.subarray(0, i).toString('utf8'), 10);
    if (!len) return result;
    const record = buf.subarray(i + 1, len - 1);
    const eq = record.indexOf(0x3d);
    if (eq === -1) return result;
    const key = record.subarray(0, eq).toString('utf8');
    const value = record.subarray(eq + 1);
    result[key] = key.startsWith(SCHILY) ? value.toString('latin1') : value.toString('utf8');
    buf = buf.subarray(len);
  }
  return result;
}

/** The xattrs carried by an entry's PAX records, as raw bytes. */
export function xattrsOf(pax: Record<string, string> | undefined | null): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!pax) return out;
  for (const [key, value] of Object.entries(pax)) {
    if (key.startsWith(SCHILY)) out.set(key.slice(SCHILY.length), Buffer.from(value, 'latin1'));
    else if (key.startsWith(LIBARCHIVE))
      out.set(decodeURIComponent(key.slice(LIBARCHIVE.length)), Buffer.from(value, 'base64'));
  }
  return out;
}
