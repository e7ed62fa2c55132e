import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { relative } from 'node:path';
import koffi from 'koffi';
import { badRequest, notFound, operationFailed } from '../../model/errors.js';

/**
 * openat2(2) and the loop ioctls through koffi, so the root helper acts on the file it checked and not on
 * whatever a path names a moment later. Numbers are Linux's generic ABI, the same on x86_64 and arm64.
 */
const SYS_OPENAT2 = 437;
/** O_PATH and O_CLOEXEC are not in node's fs.constants; their values are the same on x86_64 and arm64. */
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
/** Resolution stays inside the directory fd, and no symlink (nor /proc magic link) is followed on the way. */
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_BENEATH = 0x08;
/** struct open_how { u64 flags; u64 mode; u64 resolve; } */
const OPEN_HOW_BYTES = 24;
/** linux/loop.h */
const LOOP_SET_FD = 0x4c00;
const LOOP_CTL_GET_FREE = 0x4c82;
const EBUSY = 16;
/** Another attach can take the free device between GET_FREE and SET_FD; it is asked again this often. */
const ATTACH_ATTEMPTS = 8;

type Variadic = (...args: unknown[]) => number | bigint;
let libc: { syscall: Variadic; ioctl: Variadic } | undefined;

function bind() {
  libc ??= (() => {
    const lib = koffi.load('libc.so.6');
    return {
      syscall: lib.func('long syscall(long, ...)') as Variadic,
      ioctl: lib.func('int ioctl(int, unsigned long, ...)') as Variadic,
    };
  })();
  return libc;
}

/**
 * Opens `file`, which must lie in `stateDir`, with openat2 relative to an O_PATH descriptor of the state
 * dir and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: the kernel itself refuses a symlink in any component
 * and any step out of the tree, at the moment of the open, so a component swapped after a check cannot
 * redirect it. Only a regular file is accepted (O_NONBLOCK, so a planted FIFO cannot hang the open).
 * Returns the descriptor; the caller closes it.
 */
export function openBeneath(stateDir: string, file: string, readOnly: boolean): number {
  const rel = relative(stateDir, file);
  const dir = openSync(stateDir, O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW | O_CLOEXEC);
  let fd: number;
  try {
    const how = Buffer.alloc(OPEN_HOW_BYTES);
    const flags =
      (readOnly ? constants.O_RDONLY : constants.O_RDWR) |
      constants.O_NONBLOCK |
      constants.O_NOCTTY |
      O_CLOEXEC;
    how.writeBigUInt64LE(BigInt(flags), 0);
    how.writeBigUInt64LE(BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), 16);
    fd = Number(bind().syscall(SYS_OPENAT2, 'int', dir, 'str', rel, 'void *', how, 'size_t', OPEN_HOW_BYTES));
    if (fd < 0) throw openError(file, koffi.errno());
  } finally {
    closeSync(dir);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw badRequest(`refusing path ${JSON.stringify(file)}: not a regular file`);
  }
  return fd;
}

function openError(file: string, errno: number) {
  const path = JSON.stringify(file);
  switch (errno) {
    case 40: // ELOOP: a symlink on the way
    case 18: // EXDEV: a step out of the tree
      return badRequest(`refusing path ${path}: a symlink or a way out of the state dir on its path`, {
        hint: 'the root helper follows no symlink inside the state dir',
      });
    case 2:
      return notFound(`no file ${path}`);
    case 38: // ENOSYS: kernel older than 5.6
      return operationFailed('openat2 is not available (Linux 5.6 or later is needed for the root helper)');
    default:
      return operationFailed(`cannot open ${path} (errno ${errno})`);
  }
}

/**
 * Attaches a free loop device over the open file `fd` (LOOP_SET_FD): the kernel keeps that very file, so
 * what it later reports as the backing file is the file that was opened. Returns `/dev/loopN`. A
 * read-only descriptor gives a read-only device.
 */
export function attachLoopFd(fd: number, readOnly: boolean): string {
  const { ioctl } = bind();
  const ctl = openSync('/dev/loop-control', constants.O_RDWR | O_CLOEXEC);
  try {
    for (let attempt = 0; attempt < ATTACH_ATTEMPTS; attempt++) {
      const n = Number(ioctl(ctl, LOOP_CTL_GET_FREE, 'int', 0));
      if (n < 0) throw operationFailed(`no free loop device (errno ${koffi.errno()})`);
      const device = `/dev/loop${n}`;
      const loop = openSync(device, (readOnly ? constants.O_RDONLY : constants.O_RDWR) | O_CLOEXEC);
      try {
        if (Number(ioctl(loop, LOOP_SET_FD, 'unsigned long', fd)) === 0) return device;
        const errno = koffi.errno();
        if (errno !== EBUSY) throw operationFailed(`LOOP_SET_FD on ${device} failed (errno ${errno})`);
      } finally {
        closeSync(loop);
      }
    }
  } finally {
    closeSync(ctl);
  }
  throw operationFailed(`no loop device stayed free for ${ATTACH_ATTEMPTS} attempts (a busy host)`);
}
