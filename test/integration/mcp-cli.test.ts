/**
 * `banger mcp serve` against a real daemon without booting anything: the MCP SDK's client over stdio,
 * tools/list, schema errors, the flags, and the ownership rule over VM rows put in the store (one marked
 * createdBy mcp, one a developer's), and image_pull's progress from a real registry (docker-registry on
 * 127.0.0.1). The VM tools that boot guests are test/e2e/mcp.test.ts's.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VM } from '../../src/model/vm.js';
import { createStore, openStore } from '../../src/store/index.js';
import { type BangerInstance, createInstance, REPO_ROOT } from '../fixtures/banger-instance.js';
import { registryUnavailable, startRegistry } from '../fixtures/registry.js';
import { testRootfs } from '../fixtures/rootfs-tarball.js';
import { addImage } from '../fixtures/vm-harness.js';

let inst: BangerInstance;
const clients: Client[] = [];

async function connect(flags: string[] = []): Promise<{ client: Client; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(REPO_ROOT, 'bin', 'banger'), 'mcp', 'serve', ...flags],
    env: { ...(process.env as Record<string, string>), ...inst.env },
    stderr: 'pipe',
  });
  const errs: string[] = [];
  transport.stderr?.on('data', (d: Buffer) => errs.push(d.toString()));
  // Anything on stdout that is not JSON-RPC would surface here.
  const protocolErrors: Error[] = [];
  const client = new Client({ name: 'mcp-cli-test', version: '1' });
  client.onerror = (e) => protocolErrors.push(e);
  await client.connect(transport);
  clients.push(client);
  return {
    client,
    stderr: () => {
      expect(protocolErrors).toEqual([]);
      return errs.join('');
    },
  };
}

const call = (client: Client, name: string, args: Record<string, unknown>) =>
  client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');

const row = (name: string, createdBy?: string): VM => {
  const now = new Date().toISOString();
  return {
    id: name.padEnd(16, '0').slice(0, 16),
    name,
    imageId: 'img-tiny-img',
    ...(createdBy ? { createdBy } : {}),
    state: 'created',
    spec: { vcpu: 1, memoryMib: 128, diskSizeBytes: 1 << 20, systemOverlaySizeBytes: 1 << 20, nat: false },
    runtime: { identities: [] },
    createdAt: now,
    updatedAt: now,
    lastTouchedAt: now,
  };
};

beforeAll(async () => {
  inst = createInstance();
  expect((await inst.cli(['vm', 'list'])).exitCode).toBe(0); // the daemon, with its store
  const store = createStore(openStore(join(inst.home, 'state', 'banger.db')));
  try {
    addImage(store, 'tiny-img', '/nonexistent/rootfs.ext4');
    for (const vm of [row('agentvm', 'mcp'), row('devvm')]) {
      store.vms.insert(vm);
      mkdirSync(join(inst.home, 'state', 'vms', vm.id), { recursive: true }); // what a create makes first
    }
  } finally {
    store.db.close();
  }
});
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await inst.cli(['daemon', 'stop']);
  await inst.cleanup();
});

describe('banger mcp serve (no guests)', () => {
  it('lists ten tools with strict schemas; only stderr carries its log', async () => {
    const { client, stderr } = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        'image_list',
        'image_pull',
        'vm_create',
        'vm_delete',
        'vm_exec',
        'vm_list',
        'vm_ports',
        'vm_read_file',
        'vm_run',
        'vm_write_file',
      ].sort(),
    );
    for (const t of tools) expect(t.inputSchema.additionalProperties, t.name).toBe(false);
    expect(tools.find((t) => t.name === 'vm_delete')?.annotations?.destructiveHint).toBe(true);
    expect(stderr()).toContain('banger mcp serve: ready on stdio (only the VMs it creates');
  });

  it('bad arguments are schema errors, not a crash', async () => {
    const { client, stderr } = await connect(['--max-timeout', '60', '--timeout', '30']);
    expect(textOf(await call(client, 'vm_exec', { vm: 'agentvm', command: [] }))).toMatch(
      /Input validation error.*command/,
    );
    expect(textOf(await call(client, 'vm_exec', { vm: '', command: 'true' }))).toMatch(
      /Input validation error/,
    );
    // The ceiling is the server's --max-timeout, in the schema the client sees too.
    const run = (await client.listTools()).tools.find((t) => t.name === 'vm_run');
    expect(run?.inputSchema.properties?.timeout).toMatchObject({ maximum: 60 });
    expect(textOf(await call(client, 'vm_run', { command: 'true', timeout: 61 }))).toMatch(
      /Input validation error.*timeout/,
    );
    expect(textOf(await call(client, 'vm_create', { vcpu: 'two' }))).toMatch(/Input validation error.*vcpu/);
    expect(textOf(await call(client, 'no_such_tool', {}))).toMatch(/Tool no_such_tool not found/);
    expect((await client.listTools()).tools.length).toBe(10);
    stderr();
  });

  it('vm_run fromSnapshot goes to the daemon as vm.run --from-snapshot: a missing one is refused, no VM made', async () => {
    const { client } = await connect();
    const r = await call(client, 'vm_run', { command: 'true', fromSnapshot: 'no-such-snap' });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/snapshot "no-such-snap" not found/);
    // With an image as well: refused (the snapshot fixes it), before any snapshot lookup.
    const both = await call(client, 'vm_run', {
      command: 'true',
      fromSnapshot: 'no-such-snap',
      image: 'tiny-img',
    });
    expect(textOf(both)).toMatch(/--from-snapshot takes the image, size and network of the snapshot/);
    expect(textOf(await call(client, 'vm_run', { command: 'true', fromSnapshot: '' }))).toMatch(
      /Input validation error.*fromSnapshot/,
    );
    const vms = JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout) as { name: string }[];
    expect(vms.map((v) => v.name).sort()).toEqual(['agentvm', 'devvm']);
  });

  it('sees and deletes only the VMs it created; --all-vms sees every VM', async () => {
    const { client } = await connect();
    const list = await call(client, 'vm_list', {});
    expect((list.structuredContent as { vms: { name: string }[] }).vms.map((v) => v.name)).toEqual([
      'agentvm',
    ]);
    const refused = await call(client, 'vm_delete', { vm: 'devvm' });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toBe(
      'unauthorized: VM "devvm" was not created through banger mcp serve, which leaves other VMs alone\n' +
        'hint: create one with vm_create or vm_run, or start the server with --all-vms',
    );
    // By id prefix too: the check is on the VM the ref resolves to, not on the text of the ref.
    expect(textOf(await call(client, 'vm_delete', { vm: 'devvm0' }))).toContain('unauthorized');
    const missing = await call(client, 'vm_delete', { vm: 'nope' });
    expect(textOf(missing)).toMatch(/^not_found: /);

    const all = await connect(['--all-vms']);
    const everything = await call(all.client, 'vm_list', {});
    expect(
      (everything.structuredContent as { vms: { name: string; createdBy: string | null }[] }).vms.map((v) => [
        v.name,
        v.createdBy,
      ]),
    ).toEqual([
      ['agentvm', 'mcp'],
      ['devvm', null],
    ]);
    expect(all.stderr()).toContain('(every VM;');

    const gone = await call(client, 'vm_delete', { vm: 'agentvm' });
    expect(textOf(gone), textOf(gone)).toContain('"name": "agentvm"');
    const left = JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout) as { name: string }[];
    expect(left.map((v) => v.name)).toEqual(['devvm']);
  });

  it('refuses contradictory flags before serving, and documents them in --help', async () => {
    const bad = await inst.cli(['mcp', 'serve', '--timeout', '0']);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('banger: --timeout wants a number of seconds, got "0"');
    const over = await inst.cli(['mcp', 'serve', '--timeout', '100', '--max-timeout', '50']);
    expect(over.stderr).toContain('--timeout is larger than --max-timeout');
    const help = await inst.cli(['mcp', 'serve', '--help']);
    for (const flag of [
      '--max-output',
      '--timeout',
      '--max-timeout',
      '--setup-timeout',
      '--all-vms',
      'Examples:',
    ])
      expect(help.stdout).toContain(flag);
    expect(existsSync(join(REPO_ROOT, 'docs', 'mcp.md'))).toBe(true);
  });

  it('relays image_pull progress to a client that asked for it', async () => {
    const unavailable = await registryUnavailable();
    if (unavailable) throw new Error(`the registry fixture cannot run: ${unavailable}`);
    const reg = await startRegistry();
    try {
      const { tarball } = await testRootfs();
      await reg.pushImage('progress:1', [{ tarball, architecture: 'amd64' }]);
      await reg.pushImage('quiet:1', [{ tarball, architecture: 'amd64' }]);
      const { client, stderr } = await connect();
      const seen: { progress: number; total?: number; message?: string }[] = [];
      const pulled = (await client.callTool(
        { name: 'image_pull', arguments: { ref: `${reg.host}/progress:1` } },
        undefined,
        { onprogress: (p) => seen.push(p), timeout: 300_000 },
      )) as CallToolResult;
      expect(pulled.isError, textOf(pulled)).toBeFalsy();
      expect(pulled.structuredContent).toMatchObject({ image: { name: 'progress-1' } });
      // The daemon's stages, in order, with a count that only grows (as MCP asks).
      expect(seen.length).toBeGreaterThan(1);
      expect(seen.map((p) => p.progress)).toEqual(seen.map((_, i) => i + 1));
      const messages = seen.map((p) => p.message ?? '');
      expect(messages.some((m) => m.startsWith('flatten'))).toBe(true);
      expect(messages.some((m) => / bytes$/.test(m))).toBe(true);
      // Without a progressToken nothing is sent: an unasked notification would be a protocol error
      // (unknown token), which stderr() checks for.
      const quiet = await call(client, 'image_pull', { ref: `${reg.host}/quiet:1` });
      expect(quiet.isError, textOf(quiet)).toBeFalsy();
      stderr();
    } finally {
      await reg.stop();
    }
  }, 360_000);
});
