/**
 * `banger mcp serve` end to end: a real MCP client (the official SDK's Client over StdioClientTransport)
 * drives the built CLI over stdio; behind it a real daemon boots QEMU TCG guests (the busybox userland of
 * test/fixtures/guest-root.ts) inside a namespace this file creates. Covers tools/list, vm_run, a command
 * killed at its timeout, truncated output, schema errors, the ownership rule across a server restart,
 * --all-vms, and the agent-loop example.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BangerInstance, REPO_ROOT, waitUntil } from '../fixtures/banger-instance.js';
import {
  createGuestInstance,
  registerGuestImage,
  requireGuestHost,
  teardownGuestInstance,
} from '../fixtures/guest-instance.js';
import { buildGuestRoot, type GuestRootSource, guestRootSource } from '../fixtures/guest-root.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

const fx = createNetnsFixture();
const runner = fx.runner;
const BANGER = join(REPO_ROOT, 'bin', 'banger');

const TOOLS = [
  'vm_run',
  'vm_create',
  'vm_exec',
  'vm_read_file',
  'vm_write_file',
  'vm_list',
  'vm_ports',
  'vm_delete',
  'image_list',
  'image_pull',
].sort();

await requireGuestHost(runner);

/** The structured result of a tool call that must have succeeded. */
function ok(r: CallToolResult): Record<string, unknown> {
  const text = r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  expect(r.isError, text).toBeFalsy();
  return r.structuredContent as Record<string, unknown>;
}

/** The text of a tool call that must have failed. */
function failed(r: CallToolResult): string {
  expect(r.isError).toBe(true);
  return r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}

describe('banger mcp serve over stdio, real daemon and TCG guests', () => {
  let inst: BangerInstance;
  let root: GuestRootSource;
  const clients: Client[] = [];
  const stderrs: string[] = [];

  /** Starts `banger mcp serve FLAGS` and connects an MCP client to it. */
  async function connect(flags: string[] = []): Promise<Client> {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BANGER, 'mcp', 'serve', ...flags],
      env: { ...(process.env as Record<string, string>), ...inst.env },
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (d: Buffer) => stderrs.push(d.toString()));
    const client = new Client({ name: 'banger-e2e', version: '1' });
    await client.connect(transport);
    clients.push(client);
    return client;
  }

  const call = (client: Client, name: string, args: Record<string, unknown>) =>
    client.callTool({ name, arguments: args }, undefined, { timeout: 600_000 }) as Promise<CallToolResult>;

  const cliJson = async (args: string[]) => {
    const r = await inst.cli(args);
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as unknown;
  };
  const vmNames = async () =>
    ((await cliJson(['vm', 'list', '--json'])) as { name: string }[]).map((v) => v.name);
  const vmsDir = () => join(inst.home, 'state', 'vms');

  beforeAll(async () => {
    const g = await createGuestInstance(fx, 'mcp');
    inst = g.inst;
    root = await guestRootSource();
    registerGuestImage(g, 'alpine', await buildGuestRoot(runner, g.work));
  });

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await teardownGuestInstance(fx, inst);
  });

  it('lists its tools, each with a strict input schema; logs go to stderr only', async () => {
    const client = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOLS);
    for (const t of tools) expect(t.inputSchema, t.name).toMatchObject({ additionalProperties: false });
    const run = tools.find((t) => t.name === 'vm_run');
    expect(Object.keys(run?.inputSchema.properties ?? {})).toEqual(
      expect.arrayContaining(['image', 'command', 'workspace', 'timeout']),
    );
    // The stdio transport parses every stdout line as JSON-RPC: the ready line went to stderr.
    expect(stderrs.join('')).toContain('banger mcp serve: ready');
  });

  it('bad arguments are a schema error result, and the server keeps serving', async () => {
    const client = await connect();
    expect(failed(await call(client, 'vm_run', { command: 5 }))).toMatch(/Input validation error.*command/);
    expect(failed(await call(client, 'vm_run', {}))).toMatch(/Input validation error.*command/);
    expect(failed(await call(client, 'vm_exec', { vm: 'x', command: 'true', sudo: true }))).toMatch(
      /Unrecognized key.*sudo/,
    );
    expect(failed(await call(client, 'vm_run', { command: 'true', timeout: 999_999 }))).toMatch(
      /Input validation error.*timeout/,
    );
    expect(failed(await call(client, 'vm_run', { command: 'true', workspace: 'relative/dir' }))).toMatch(
      /Input validation error.*workspace/,
    );
    // An agent cannot mark a VM as someone else's, nor open host ports: those fields do not exist here.
    expect(failed(await call(client, 'vm_create', { forwards: ['8080:80'] }))).toMatch(/Unrecognized key/);
    expect(failed(await call(client, 'vm_create', { createdBy: 'user' }))).toMatch(/Unrecognized key/);
    expect((await client.listTools()).tools.length).toBe(TOOLS.length);
    expect(await vmNames()).toEqual([]);
  });

  it('vm_run cat /etc/os-release in a fresh VM, which is deleted after', async () => {
    const client = await connect();
    const r = ok(await call(client, 'vm_run', { image: 'alpine', command: 'cat /etc/os-release' }));
    expect(r).toMatchObject({
      exitCode: 0,
      signal: null,
      timedOut: false,
      stdoutTruncated: false,
      stderrTruncated: false,
      kept: false,
    });
    expect(r.stdout).toContain(`VERSION_ID=${root.versionId}`);
    expect(await vmNames()).toEqual([]);
    expect(await processesNaming(vmsDir())).toEqual([]);
  });

  it("vm_run's timeout counts from the command's start (boot is setup's), which it kills", async () => {
    const client = await connect();
    // A TCG boot takes longer than 3 s: timed from the call, the run would be cancelled during boot.
    const r = ok(await call(client, 'vm_run', { command: 'echo up; sleep 4444', timeout: 3 }));
    expect(r).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGTERM', stdout: 'up\n' });
    expect(await vmNames()).toEqual([]);
  });

  it('setup past --setup-timeout is cancelled and leaves no VM', async () => {
    const client = await connect(['--setup-timeout', '1']);
    expect(failed(await call(client, 'vm_run', { command: 'true' }))).toContain(
      'cancelled: setup (image, boot, workspace) took longer than 1 s',
    );
    await waitUntil(async () => (await vmNames()).length === 0, 120_000);
    await waitUntil(async () => (await processesNaming(vmsDir())).length === 0, 60_000);
  });

  it('a command past its timeout is killed in the guest and reported; output is bounded', async () => {
    const client = await connect(['--max-output', '4KiB']);
    const made = ok(await call(client, 'vm_create', { name: 'agent-box', image: 'alpine' }));
    expect(made.vm).toMatchObject({ name: 'agent-box', state: 'running', createdBy: 'mcp' });

    // TERM is ignored (and inherited by sleep): only the KILL after the grace ends it.
    const stuck = ok(
      await call(client, 'vm_exec', {
        vm: 'agent-box',
        command: "echo started; trap '' TERM; sleep 4321; echo never",
        timeout: 3,
      }),
    );
    expect(stuck).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGKILL', stdout: 'started\n' });
    // A command that dies of the TERM reports it.
    const polite = ok(
      await call(client, 'vm_exec', { vm: 'agent-box', command: ['sleep', '4322'], timeout: 2 }),
    );
    expect(polite).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGTERM' });
    const ps = ok(await call(client, 'vm_exec', { vm: 'agent-box', command: 'ps' }));
    expect(ps.exitCode).toBe(0);
    expect(ps.stdout).not.toMatch(/sleep 432/);

    const big = ok(
      await call(client, 'vm_exec', {
        vm: 'agent-box',
        command: "head -c 100000 /dev/zero | tr '\\0' x; echo END >&2",
      }),
    );
    expect(big).toMatchObject({
      exitCode: 0,
      timedOut: false,
      stdoutTruncated: true,
      stdoutBytes: 100_000,
      stderrTruncated: false,
      stderr: 'END\n',
    });
    expect(big.stdout).toBe(
      `${'x'.repeat(2048)}\n[… ${100_000 - 4096} bytes omitted …]\n${'x'.repeat(2048)}`,
    );

    // A client that cancels its call kills the command in the guest.
    const controller = new AbortController();
    const pending = client.callTool(
      { name: 'vm_exec', arguments: { vm: 'agent-box', command: 'sleep 4445' } },
      undefined,
      { signal: controller.signal },
    );
    await waitUntil(async () => {
      const seen = ok(await call(client, 'vm_exec', { vm: 'agent-box', command: 'ps' }));
      return String(seen.stdout).includes('sleep 4445');
    }, 60_000);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await waitUntil(async () => {
      const seen = ok(await call(client, 'vm_exec', { vm: 'agent-box', command: 'ps' }));
      return !String(seen.stdout).includes('sleep 4445');
    }, 60_000);
  });

  it('files round trip: text with a mode, binary as base64, a large read cut at --max-output', async () => {
    const client = await connect(['--max-output', '4KiB']);
    const script = '#!/bin/sh\necho "script ran: $1"\n';
    expect(
      ok(
        await call(client, 'vm_write_file', {
          vm: 'agent-box',
          path: '/root/hi.sh',
          content: script,
          mode: 0o755,
        }),
      ),
    ).toMatchObject({ size: Buffer.byteLength(script) });
    const ran = ok(await call(client, 'vm_exec', { vm: 'agent-box', command: ['/root/hi.sh', 'yes'] }));
    expect(ran).toMatchObject({ exitCode: 0, stdout: 'script ran: yes\n' });
    const stat = ok(await call(client, 'vm_exec', { vm: 'agent-box', command: 'stat -c %a /root/hi.sh' }));
    expect(stat.stdout).toBe('755\n');
    expect(ok(await call(client, 'vm_read_file', { vm: 'agent-box', path: '/root/hi.sh' }))).toMatchObject({
      content: script,
      size: Buffer.byteLength(script),
      truncated: false,
    });

    const binary = randomBytes(3000);
    const b64 = binary.toString('base64');
    ok(
      await call(client, 'vm_write_file', {
        vm: 'agent-box',
        path: '/root/b.bin',
        content: b64,
        encoding: 'base64',
      }),
    );
    const back = ok(
      await call(client, 'vm_read_file', { vm: 'agent-box', path: '/root/b.bin', encoding: 'base64' }),
    );
    expect(back).toMatchObject({ content: b64, size: 3000, truncated: false });

    ok(await call(client, 'vm_exec', { vm: 'agent-box', command: 'head -c 10000 /dev/zero > /root/big' }));
    const big = ok(
      await call(client, 'vm_read_file', { vm: 'agent-box', path: '/root/big', encoding: 'base64' }),
    );
    expect(big).toMatchObject({ size: 10_000, truncated: true });
    expect(Buffer.from(String(big.content), 'base64')).toEqual(Buffer.alloc(4096));

    expect(
      failed(await call(client, 'vm_write_file', { vm: 'agent-box', path: 'relative', content: 'x' })),
    ).toMatch(/Input validation error.*path/);
    expect(
      failed(
        await call(client, 'vm_write_file', {
          vm: 'agent-box',
          path: '/root/x',
          content: 'not base64!',
          encoding: 'base64',
        }),
      ),
    ).toContain('bad_request: content');
  });

  it('leaves VMs it did not create alone, also after a restart; --all-vms lifts that', async () => {
    const made = await inst.cli(['vm', 'create', '--name', 'dev', '--image', 'alpine', '--no-start']);
    expect(made.exitCode, made.stderr).toBe(0);
    // A new server process: what it created before is still its own (the mark is in the store).
    const client = await connect();
    const listed = ok(await call(client, 'vm_list', {}));
    expect((listed.vms as { name: string }[]).map((v) => v.name)).toEqual(['agent-box']);
    for (const [tool, args] of [
      ['vm_delete', { vm: 'dev' }],
      ['vm_exec', { vm: 'dev', command: 'true' }],
      ['vm_ports', { vm: 'dev' }],
      ['vm_read_file', { vm: 'dev', path: '/etc/os-release' }],
      ['vm_write_file', { vm: 'dev', path: '/root/x', content: 'x' }],
    ] as const) {
      const text = failed(await call(client, tool, args));
      expect(text, tool).toContain('unauthorized: VM "dev" was not created through banger mcp serve');
      expect(text, tool).toContain('--all-vms');
    }
    expect((await vmNames()).sort()).toEqual(['agent-box', 'dev']);

    const ports = ok(await call(client, 'vm_ports', { vm: 'agent-box' }));
    expect(ports).toMatchObject({ name: 'agent-box', ports: expect.any(Array) });
    expect(ok(await call(client, 'vm_delete', { vm: 'agent-box' }))).toMatchObject({
      deleted: { name: 'agent-box' },
    });
    expect(await vmNames()).toEqual(['dev']);

    const all = await connect(['--all-vms']);
    const everything = ok(await call(all, 'vm_list', {}));
    expect(
      (everything.vms as { name: string; createdBy: string | null }[]).map((v) => [v.name, v.createdBy]),
    ).toEqual([['dev', null]]);
    expect(ok(await call(all, 'vm_delete', { vm: 'dev' }))).toMatchObject({ deleted: { name: 'dev' } });
    expect(await vmNames()).toEqual([]);
    expect(await processesNaming(vmsDir())).toEqual([]);
  });

  it('image_list shows the registered image', async () => {
    const client = await connect();
    const r = ok(await call(client, 'image_list', {}));
    expect((r.images as { name: string }[]).map((i) => i.name)).toContain('alpine');
  });

  it('the agent-loop example runs against this instance', async () => {
    const r = await execa(process.execPath, [join(REPO_ROOT, 'examples', 'mcp-agent-loop.mjs')], {
      env: { ...inst.env, BANGER_BIN: BANGER, BANGER_IMAGE: 'alpine' },
      reject: false,
      timeout: 600_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { os: string; steps: { command: string; exitCode: number }[] };
    expect(report.os).toContain(root.versionId);
    expect(report.steps.length).toBeGreaterThanOrEqual(2);
    expect(await vmNames()).toEqual([]);
  });
});
