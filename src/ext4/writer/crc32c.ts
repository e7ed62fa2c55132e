/**
 * CRC-32C (Castagnoli), reflected, without the usual pre/post inversion: ext4's metadata_csum chains
 * `crc32c_le(seed, bytes)` calls and stores the raw result. Slicing-by-8 tables: only metadata is
 * checksummed (inodes, directory and extent blocks, bitmaps), a few MiB per image.
 */
const POLY = 0x82f63b78;
const TABLES: Uint32Array[] = (() => {
  const t: Uint32Array[] = [];
  const first = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    first[i] = c >>> 0;
  }
  t.push(first);
  for (let n = 1; n < 8; n++) {
    const prev = t[n - 1]!;
    const next = new Uint32Array(256);
    for (let i = 0; i < 256; i++) next[i] = (first[prev[i]! & 0xff]! ^ (prev[i]! >>> 8)) >>> 0;
    t.push(next);
  }
  return t;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

/** crc32c_le as ext4 and e2fsprogs call it: `crc` is the running value (the seed for the first call). */
export function crc32c(crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const lo = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      T7[lo & 0xff]! ^
      T6[(lo >>> 8) & 0xff]! ^
      T5[(lo >>> 16) & 0xff]! ^
      T4[lo >>> 24]! ^
      T3[data[i + 4]!]! ^
      T2[data[i + 5]!]! ^
      T1[data[i + 6]!]! ^
      T0[data[i + 7]!]!;
  }
  for (; i < n; i++) c = T0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** crc32c_le over a little-endian 32-bit number (inode numbers, group numbers, generations). */
export function crc32cU32(crc: number, value: number): number {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return crc32c(crc, b);
}
