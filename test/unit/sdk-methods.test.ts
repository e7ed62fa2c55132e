/**
 * The SDK and the daemon's method table must not drift: the SDK calls only methods of its list (its `call`
 * type takes no other name, with the table's params and result types), and every one of them is in the
 * table the daemon serves. This also reads the SDK's source for method names, so a call that slipped past
 * the types (a cast) fails here. And the SDK imports nothing of the daemon's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMethodName, methods } from '../../src/rpc/protocol.js';
import { SDK_METHODS } from '../../src/sdk/methods.js';

const SDK_DIR = join(import.meta.dirname, '..', '..', 'src', 'sdk');
const sources = readdirSync(SDK_DIR)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f, text: readFileSync(join(SDK_DIR, f), 'utf8') }));

describe('the SDK against the method table', () => {
  it('lists only methods the daemon serves', () => {
    for (const m of SDK_METHODS) expect(isMethodName(m), m).toBe(true);
    expect(new Set(SDK_METHODS).size).toBe(SDK_METHODS.length);
  });

  it('calls only listed methods, and each listed method somewhere', () => {
    const called = new Set<string>();
    for (const { text } of sources)
      for (const m of text.matchAll(/\bcall\(\s*'([^']+)'/g)) called.add(m[1] as string);
    expect([...called].filter((m) => !(SDK_METHODS as readonly string[]).includes(m))).toEqual([]);
    expect(SDK_METHODS.filter((m) => !called.has(m))).toEqual([]);
    for (const m of called) expect(Object.hasOwn(methods, m), m).toBe(true);
  });

  it('imports nothing from the daemon, the CLI or the MCP server', () => {
    for (const { file, text } of sources)
      expect(text.match(/from '\.\.\/(daemon|cli|mcp)\//g), file).toBeNull();
  });
});
