/**
 * A writer for the cpio "newc" format (the one the kernel unpacks into its rootfs), kept in memory: an
 * initramfs holds busybox, an init script and a dozen modules, a few MiB in all.
 */

/** One archive member. Directories and device nodes carry no data; symlinks carry their target. */
export type CpioEntry =
  | { type: 'file'; path: string; data: Uint8Array; mode?: number }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char'; path: string; major: number; minor: number; mode?: number };

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function header(fields: {
  ino: number;
  mode: number;
  nlink: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  nameSize: number;
}): string {
  return [
    '070701',
    hex8(fields.ino),
    hex8(fields.mode),
    hex8(0), // uid: root
    hex8(0), // gid: root
    hex8(fields.nlink),
    hex8(0), // mtime 0 keeps the archive reproducible
    hex8(fields.size),
    hex8(0),
    hex8(0),
    hex8(fields.rdevMajor),
    hex8(fields.rdevMinor),
    hex8(fields.nameSize),
    hex8(0),
  ].join('');
}

function member(
  ino: number,
  name: string,
  mode: number,
  data: Uint8Array,
  rdev = { major: 0, minor: 0 },
): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const head = Buffer.from(
    header({
      ino,
      mode,
      nlink: (mode & 0o170000) === S_IFDIR ? 2 : 1,
      size: data.length,
      rdevMajor: rdev.major,
      rdevMinor: rdev.minor,
      nameSize: nameBytes.length,
    }),
    'ascii',
  );
  // The 110-byte header plus the name is padded to 4 bytes, then the data is padded to 4 bytes.
  const out = [head, nameBytes, pad4(head.length + nameBytes.length)];
  if (data.length > 0) out.push(Buffer.from(data.buffer, data.byteOffset, data.length), pad4(data.length));
  return out;
}

/** Serializes entries in the given order (parents first) into a newc archive with its trailer. */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const entry of entries) {
    const name = entry.path.replace(/^\/+/, '');
    if (name === '' || name.split('/').includes('..')) throw new Error(`bad cpio path ${entry.path}`);
    switch (entry.type) {
      case 'file':
        parts.push(...member(ino++, name, S_IFREG | (entry.mode ?? 0o644), entry.data));
        break;
      case 'dir':
        parts.push(...member(ino++, name, S_IFDIR | (entry.mode ?? 0o755), new Uint8Array()));
        break;
      case 'symlink':
        parts.push(...member(ino++, name, S_IFLNK | 0o777, Buffer.from(entry.target, 'utf8')));
        break;
      case 'char':
        parts.push(
          ...member(ino++, name, S_IFCHR | (entry.mode ?? 0o600), new Uint8Array(), {
            major: entry.major,
            minor: entry.minor,
          }),
        );
        break;
    }
  }
  parts.push(...member(0, 'TRAILER!!!', 0, new Uint8Array()));
  return Buffer.concat(parts);
}
