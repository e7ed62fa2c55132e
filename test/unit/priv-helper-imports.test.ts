/**
 * bangerd-root must stay small and parse nothing untrusted: its import graph (static imports, re-exports
 * and dynamic imports, followed through every file it reaches) may hold none of the daemon, the store, the
 * OCI client, the rootfs builder or anything else that reads images, guests or registries.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', '..', 'src');
const ENTRY = join(SRC, 'priv-helper', 'main.ts');

/** Source trees bangerd-root may not reach. */
const FORBIDDEN_DIRS = [
  'daemon',
  'store',
  'oci',
  'rootfs',
  'ext4',
  'guest',
  'kernel',
  'catalog',
  'vmm',
  'rpc',
  'cli',
  'mcp',
  'sdk',
  'ssh',
];
/** Packages that parse untrusted data or hold the store. */
const FORBIDDEN_PACKAGES = [
  'better-sqlite3',
  'zstd-napi',
  'tar-stream',
  'tar',
  'dns-packet',
  '@modelcontextprotocol/sdk',
];

const SPECIFIER =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^import\s*['"]([^'"]+)['"]/gm;

function walk(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [entry];
  while (queue.length) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(SPECIFIER)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!spec.startsWith('node:'))
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  return { files, packages };
}

describe("bangerd-root's import graph", () => {
  const { files, packages } = walk(ENTRY);
  const reached = [...files].map((f) => relative(SRC, f)).sort();

  it('reaches its own code, the privileged operations and their few helpers', () => {
    expect(reached).toContain('priv-helper/server.ts');
    expect(reached).toContain('host/priv/in-process.ts');
    expect(reached).toContain('host/priv/peercred.ts');
  });

  it('holds none of the daemon, store, OCI client, rootfs builder or other parsers of untrusted data', () => {
    const bad = reached.filter((f) => FORBIDDEN_DIRS.some((d) => f.startsWith(`${d}/`)));
    expect(bad).toEqual([]);
    expect([...packages].filter((p) => FORBIDDEN_PACKAGES.includes(p))).toEqual([]);
  });

  it('catches a forbidden import (the walker is not blind)', () => {
    const daemon = walk(join(SRC, 'daemon', 'main.ts'));
    expect([...daemon.files].some((f) => relative(SRC, f).startsWith('store/'))).toBe(true);
    expect(daemon.packages.has('better-sqlite3')).toBe(true);
  });
});
