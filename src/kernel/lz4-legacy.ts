/**
 * Decoder for the LZ4 "legacy" frame the kernel build uses for LZ4-compressed bzImages (`lz4 -l`, Debian's
 * choice): a magic, then blocks of `<le32 compressed size><lz4 block>`, each expanding to at most 8 MiB.
 * Node has no LZ4, and this is forty lines.
 */

const LEGACY_MAGIC = 0x184c2102;
const LEGACY_BLOCK_MAX = 8 * 1024 * 1024;

/** Decodes one raw LZ4 block into `out` starting at 0; returns the number of bytes written. */
function decodeBlock(src: Uint8Array, out: Uint8Array): number {
  let i = 0;
  let o = 0;
  while (i < src.length) {
    const token = src[i++] as number;
    let literals = token >> 4;
    if (literals === 15) {
      let b: number;
      do {
        b = src[i++] as number;
        literals += b;
      } while (b === 255 && i < src.length);
    }
    if (i + literals > src.length || o + literals > out.length) throw new Error('lz4: literal run overflows');
    out.set(src.subarray(i, i + literals), o);
    i += literals;
    o += literals;
    if (i >= src.length) break; // the last sequence has literals only
    const offset = (src[i] as number) | ((src[i + 1] as number) << 8);
    i += 2;
    if (offset === 0 || offset > o) throw new Error('lz4: bad match offset');
    let length = token & 15;
    if (length === 15) {
      let b: number;
      do {
        b = src[i++] as number;
        length += b;
      } while (b === 255 && i < src.length);
    }
    length += 4;
    if (o + length > out.length) throw new Error('lz4: match overflows the block');
    // Byte by byte: matches may overlap their own output (run-length style).
    for (let k = 0; k < length; k++, o++) out[o] = out[o - offset] as number;
  }
  return o;
}

/** True when `data` starts with the LZ4 legacy magic. */
export function isLz4Legacy(data: Uint8Array): boolean {
  return data.length >= 4 && Buffer.from(data.buffer, data.byteOffset, 4).readUInt32LE(0) === LEGACY_MAGIC;
}

/**
 * Decodes a legacy frame (possibly several concatenated). Stops at the end of input or at a block size
 * that runs past it, which is how the 4-byte uncompressed-size trailer the kernel appends is skipped.
 */
export function decodeLz4Legacy(data: Uint8Array): Buffer {
  const view = Buffer.from(data.buffer, data.byteOffset, data.length);
  if (!isLz4Legacy(view)) throw new Error('lz4: not a legacy frame');
  const parts: Buffer[] = [];
  let pos = 4;
  const scratch = Buffer.allocUnsafe(LEGACY_BLOCK_MAX);
  while (pos + 4 <= view.length) {
    const size = view.readUInt32LE(pos);
    if (size === LEGACY_MAGIC) {
      pos += 4;
      continue;
    }
    if (size === 0 || pos + 4 + size > view.length) break;
    const n = decodeBlock(view.subarray(pos + 4, pos + 4 + size), scratch);
    parts.push(Buffer.from(scratch.subarray(0, n)));
    pos += 4 + size;
  }
  return Buffer.concat(parts);
}
