import { describe, expect, it } from 'vitest';
import { buildDebugfsScript, type ScriptEntry } from '../../../src/rootfs/debugfs-script.js';
import type { EntryMeta } from '../../../src/rootfs/types.js';

const meta = (over: Partial<EntryMeta>): EntryMeta => ({
  kind: 'file',
  uid: 0,
  gid: 0,
  mode: 0o644,
  mtime: 1_700_000_000,
  xattrs: new Map(),
  ...over,
});

const xattrPath = (i: number) => `/work/x/${i}`;

describe('buildDebugfsScript', () => {
  it('says nothing about an inode staging already got right', () => {
    const entry: ScriptEntry = {
      parts: ['etc', 'hostname'],
      meta: meta({}),
      staged: { mode: 0o644, uid: 0, gid: 0 },
    };
    expect(buildDebugfsScript([entry], xattrPath).text).toBe('');
  });

  it('always sets the root, and sets modes with their file-type bits', () => {
    const root: ScriptEntry = {
      parts: [],
      meta: meta({ kind: 'dir', mode: 0o755 }),
      staged: { mode: 0o755, uid: 0, gid: 0 },
    };
    const suid: ScriptEntry = {
      parts: ['usr', 'bin', 'sudo'],
      meta: meta({ mode: 0o4755 }),
      staged: { mode: 0o755, uid: 0, gid: 0 },
    };
    const { text } = buildDebugfsScript([root, suid], xattrPath);
    expect(text.split('\n')).toEqual([
      'sif "/" mode 040755',
      'sif "/" uid 0',
      'sif "/" gid 0',
      'sif "/" mtime @1700000000',
      'sif "/usr/bin/sudo" mode 0104755',
      '',
    ]);
  });

  it('creates devices and FIFOs from their parent directory with a bare name', () => {
    const dev: ScriptEntry = {
      parts: ['dev', 'sda'],
      meta: meta({ kind: 'block', mode: 0o660, gid: 6, devMajor: 8, devMinor: 0 }),
    };
    const fifo: ScriptEntry = { parts: ['run', 'fi fo'], meta: meta({ kind: 'fifo', mode: 0o600 }) };
    const lines = buildDebugfsScript([dev, fifo], xattrPath).text.split('\n');
    expect(lines.slice(0, 3)).toEqual(['cd "/dev"', 'mknod "sda" b 8 0', 'sif "/dev/sda" mode 060660']);
    expect(lines).toContain('sif "/dev/sda" gid 6');
    expect(lines).toContain('mknod "fi fo" p');
    expect(lines).toContain('sif "/run/fi fo" mode 010600');
  });

  it('hands xattr values back as files and quotes hostile names so each stays one argument', () => {
    const evil = 'x" ; sif "/etc/shadow" mode 0100777 ; "';
    const entry: ScriptEntry = {
      parts: ['h', evil],
      meta: meta({ uid: 1000, xattrs: new Map([['security.capability', Buffer.from([1, 0, 0, 2])]]) }),
      staged: { mode: 0o644, uid: 0, gid: 0 },
    };
    const script = buildDebugfsScript([entry], xattrPath);
    const quoted = `"/h/${evil.replaceAll('"', '""')}"`;
    expect(script.text.split('\n')).toEqual([
      `sif ${quoted} uid 1000`,
      `ea_set -f "/work/x/0" ${quoted} "security.capability"`,
      '',
    ]);
    expect(script.xattrValues).toEqual([Buffer.from([1, 0, 0, 2])]);
  });

  it('refuses a name with a newline instead of emitting a second command', () => {
    const entry: ScriptEntry = {
      parts: ['a\nrm /etc'],
      meta: meta({ uid: 5 }),
      staged: { mode: 0o644, uid: 0, gid: 0 },
    };
    expect(() => buildDebugfsScript([entry], xattrPath)).toThrow(/debugfs script/);
  });
});
