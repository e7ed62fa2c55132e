import { absolute, debugfsQuote } from './paths.js';
import type { EntryKind, EntryMeta } from './types.js';

/** File-type bits debugfs needs with every mode it sets: without them the inode turns into garbage. */
export const TYPE_BITS: Record<EntryKind, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
};

export interface ScriptEntry {
  parts: readonly string[];
  meta: EntryMeta;
  /** What mkfs copied from staging; undefined when the inode is not in staging and must be created. */
  staged?: { mode: number; uid: number; gid: number };
}

export interface DebugfsScript {
  text: string;
  /** xattr values, written by the caller to `xattrPath(i)` before debugfs runs (values are binary). */
  xattrValues: Buffer[];
}

/**
 * The one batched debugfs pass after mkfs: creates devices and FIFOs, then fixes uid/gid/mode where
 * staging could not carry them, then sets xattrs. Every path is quoted; a name that cannot be quoted
 * (newline) throws, so no entry can ever add a command of its own.
 */
export function buildDebugfsScript(
  entries: Iterable<ScriptEntry>,
  xattrPath: (index: number) => string,
): DebugfsScript {
  const lines: string[] = [];
  const xattrValues: Buffer[] = [];
  for (const { parts, meta, staged } of entries) {
    const path = debugfsQuote(absolute(parts));
    if (!staged) {
      const name = parts[parts.length - 1];
      if (name === undefined) continue;
      lines.push(`cd ${debugfsQuote(absolute(parts.slice(0, -1)))}`);
      const node =
        meta.kind === 'fifo'
          ? 'p'
          : `${meta.kind === 'block' ? 'b' : 'c'} ${meta.devMajor ?? 0} ${meta.devMinor ?? 0}`;
      // mknod links the name into the current directory, so it takes a bare name, never a path.
      lines.push(`mknod ${debugfsQuote(name)} ${node}`);
    }
    const mode = TYPE_BITS[meta.kind] | meta.mode;
    if (!staged || staged.mode !== meta.mode || parts.length === 0)
      lines.push(`sif ${path} mode 0${mode.toString(8)}`);
    if (!staged || staged.uid !== meta.uid || parts.length === 0) lines.push(`sif ${path} uid ${meta.uid}`);
    if (!staged || staged.gid !== meta.gid || parts.length === 0) lines.push(`sif ${path} gid ${meta.gid}`);
    if (!staged || parts.length === 0) lines.push(`sif ${path} mtime @${meta.mtime}`);
    for (const [name, value] of meta.xattrs) {
      lines.push(`ea_set -f ${debugfsQuote(xattrPath(xattrValues.length))} ${path} ${debugfsQuote(name)}`);
      xattrValues.push(value);
    }
  }
  return { text: lines.length ? `${lines.join('\n')}\n` : '', xattrValues };
}
