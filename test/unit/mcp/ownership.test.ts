import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { limitsFromFlags } from '../../../src/cli/commands/mcp.js';
import { assertInScope, DEFAULT_LIMITS, inScope, MCP_CREATOR } from '../../../src/mcp/index.js';
import type { VM } from '../../../src/model/vm.js';
import { vmCreateParamsSchema } from '../../../src/rpc/methods/vm.js';
import { createStore, openStore } from '../../../src/store/index.js';

const vm = (name: string, createdBy?: string): VM => ({
  id: `id-${name}`,
  name,
  imageId: 'img',
  ...(createdBy ? { createdBy } : {}),
  state: 'created',
  spec: { vcpu: 1, memoryMib: 256, diskSizeBytes: 1 << 30, systemOverlaySizeBytes: 1 << 30, nat: false },
  runtime: { identities: [] },
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  lastTouchedAt: '2026-01-01T00:00:00.000Z',
});

describe('mcp VM scope', () => {
  it('touches only VMs it created, unless --all-vms', () => {
    const own = vm('agent-box', MCP_CREATOR);
    const user = vm('dev');
    const other = vm('ci', 'sdk');
    expect([own, user, other].filter((v) => inScope(v, { allVms: false }))).toEqual([own]);
    expect([own, user, other].filter((v) => inScope(v, { allVms: true }))).toEqual([own, user, other]);
    expect(() => assertInScope(user, { allVms: false })).toThrow(
      /VM "dev" was not created through banger mcp serve/,
    );
    expect(() => assertInScope(other, { allVms: false })).toThrow(/not created through banger mcp serve/);
    expect(() => assertInScope(user, { allVms: true })).not.toThrow();
  });

  it('the mark is a store column: it survives a reopen (a restart of the daemon and of the server)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bgr-mcp-'));
    try {
      const path = join(dir, 'banger.db');
      let db = openStore(path);
      db.prepare(
        `INSERT INTO images (id, name, managed, source_json, artifacts_json, created_at, updated_at)
         VALUES ('img', 'alpine', 1, '{}', '{}', 'x', 'x')`,
      ).run();
      const store = createStore(db);
      store.vms.insert(vm('agent-box', MCP_CREATOR));
      store.vms.insert(vm('dev'));
      db.close();
      db = openStore(path);
      const again = createStore(db);
      expect(again.vms.findByName('agent-box')?.createdBy).toBe(MCP_CREATOR);
      // A user's VM has no createdBy at all (not null): `vm show --json` is unchanged for it.
      expect(again.vms.findByName('dev')).not.toHaveProperty('createdBy');
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a createdBy tag is refused unless it is a short lowercase tag (it is shown to users)', () => {
    expect(vmCreateParamsSchema.safeParse({ createdBy: 'mcp' }).success).toBe(true);
    for (const bad of ['', 'MCP', 'a b', 'x'.repeat(33), '-mcp', 'mcp\n'])
      expect(vmCreateParamsSchema.safeParse({ createdBy: bad }).success, bad).toBe(false);
  });
});

describe('mcp serve flags', () => {
  const defaults = { maxOutput: '64KiB', timeout: '120', maxTimeout: '3600', setupTimeout: '900' };

  it('defaults are the documented limits', () => {
    expect(limitsFromFlags(defaults)).toEqual(DEFAULT_LIMITS);
  });

  it('parses sizes and seconds', () => {
    expect(limitsFromFlags({ ...defaults, maxOutput: '16KiB', timeout: '2.5' })).toMatchObject({
      maxOutputBytes: 16 * 1024,
      timeoutMs: 2500,
    });
  });

  it('refuses nonsense', () => {
    expect(() => limitsFromFlags({ ...defaults, timeout: '0' })).toThrow(/--timeout wants a number/);
    expect(() => limitsFromFlags({ ...defaults, timeout: '-3' })).toThrow(/--timeout wants a number/);
    expect(() => limitsFromFlags({ ...defaults, setupTimeout: 'soon' })).toThrow(/--setup-timeout/);
    expect(() => limitsFromFlags({ ...defaults, maxOutput: '10b' })).toThrow(/at least 1KiB/);
    expect(() => limitsFromFlags({ ...defaults, maxOutput: 'lots' })).toThrow(/invalid size/);
    expect(() => limitsFromFlags({ ...defaults, timeout: '7200' })).toThrow(/larger than --max-timeout/);
  });
});
