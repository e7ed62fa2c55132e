import type tarStream from 'tar-stream';
import { badRequest } from '../model/errors.js';

/** ext4 keeps 32-bit owners, and (uint32)-1 means "leave unchanged" to chown: it is nobody's id. */
const MAX_ID = 0xfffffffe;
/** ext4 timestamps (256-byte inodes, extra epoch bits) span 1901-12-13 to 2446-05-10. */
const MIN_TIME = -(2 ** 31);
const MAX_TIME = 2 ** 34 - 1;
/** Linux majors have 12 bits; minors have 20, but debugfs `mknod` (which makes them) takes at most 65535. */
const MAX_MAJOR = 0xfff;
const MAX_MINOR = 0xffff;

/** PAX decimal records: an unsigned integer, or (times) a signed decimal with an optional fraction. */
const UNSIGNED = /^[0-9]+$/;
const TIME = /^-?[0-9]+(\.[0-9]+)?$/;

/** The numbers of one tar entry, each a value ext4, debugfs and the host calls can take as it is. */
export interface HeaderNumbers {
  uid: number;
  gid: number;
  /** Whole seconds since the epoch. */
  mtime: number;
  /** A PAX mtime's fraction, in nanoseconds (0 for ustar times). */
  mtimeNsec: number;
  devMajor: number;
  devMinor: number;
}

/**
 * Reads and checks every number a tar header or its PAX records carry (uid, gid, size, mtime, atime,
 * ctime, and a device's numbers). A layer controls all of them: a PAX `uid=-5` or `mtime=1e300` would otherwise
 * reach lchown or utimes as a raw RangeError, a `size=1e3` is read as 1 by tar-stream, and base-256 header
 * fields can be negative or huge. Anything that is not a plain decimal in range refuses the layer, naming
 * the entry and the field.
 */
export function headerNumbers(header: tarStream.Header, shown: string): HeaderNumbers {
  const pax = (header.pax ?? {}) as Record<string, string | undefined>;
  const bad = (field: string, value: unknown, why: string) =>
    badRequest(`layer entry ${shown} has ${field} ${JSON.stringify(String(value))}: ${why}`, {
      hint: 'the image is malformed or hostile; nothing was built',
    });
  const pick = (
    field: string,
    paxValue: string | undefined,
    headerValue: number | undefined,
    max: number,
  ) => {
    if (paxValue !== undefined && !UNSIGNED.test(paxValue))
      throw bad(`PAX ${field}`, paxValue, 'not a non-negative whole number');
    const n = paxValue !== undefined ? Number(paxValue) : (headerValue ?? 0);
    if (!Number.isSafeInteger(n) || n < 0 || n > max)
      throw bad(paxValue !== undefined ? `PAX ${field}` : field, paxValue ?? n, `outside 0..${max}`);
    return n;
  };
  const time = (field: string, paxValue: string | undefined, fallback: number) => {
    if (paxValue !== undefined && !TIME.test(paxValue))
      throw bad(`PAX ${field}`, paxValue, 'not a decimal number of seconds');
    const n = paxValue !== undefined ? Number(paxValue) : fallback;
    if (!Number.isFinite(n) || n < MIN_TIME || n > MAX_TIME)
      throw bad(
        paxValue !== undefined ? `PAX ${field}` : field,
        paxValue ?? n,
        'outside what ext4 can store',
      );
    return Math.floor(n);
  };

  pick('size', pax.size, header.size ?? 0, Number.MAX_SAFE_INTEGER);
  // An unreadable ustar time field has always meant the epoch; a readable one out of range is refused.
  const headerMs = header.mtime instanceof Date ? header.mtime.getTime() : Number.NaN;
  const device = header.type === 'character-device' || header.type === 'block-device';
  const mtime = time('mtime', pax.mtime, Number.isNaN(headerMs) ? 0 : headerMs / 1000);
  const numbers: HeaderNumbers = {
    uid: pick('uid', pax.uid, header.uid, MAX_ID),
    gid: pick('gid', pax.gid, header.gid, MAX_ID),
    mtime,
    mtimeNsec: pax.mtime === undefined ? 0 : fractionNsec(pax.mtime),
    // Only a device's numbers mean anything; other entries' fields are left as their writer left them.
    devMajor: device ? pick('devmajor', pax['SCHILY.devmajor'], header.devmajor, MAX_MAJOR) : 0,
    devMinor: device ? pick('devminor', pax['SCHILY.devminor'], header.devminor, MAX_MINOR) : 0,
  };
  // Not kept (ext4 gets the build's times), but a layer that writes them must write numbers.
  if (pax.atime !== undefined) time('atime', pax.atime, 0);
  if (pax.ctime !== undefined) time('ctime', pax.ctime, 0);
  return numbers;
}

/** The digits after the point of a checked PAX time, as nanoseconds (truncated, as GNU tar does). */
function fractionNsec(value: string): number {
  const dot = value.indexOf('.');
  if (dot === -1) return 0;
  const digits = value.slice(dot + 1, dot + 10).padEnd(9, '0');
  const nsec = Number(digits);
  // A negative time's fraction counts backwards from the whole second below it (floored above).
  return value.startsWith('-') && nsec > 0 ? 1e9 - nsec : nsec;
}
