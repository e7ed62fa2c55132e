/**
 * vm.files.* through the real agent: the VM service over real parts (SQLite, bridge and taps in a namespace
 * this file creates) with the stand-in VMM running the real banger-agent binary as the "guest" in that
 * namespace; the guest's files are a directory of this test. Covers binary and 10 MiB round trips, modes
 * and owners, listings, the size cap both ways, hostile paths and a VM that is not running. The same
 * through a QEMU guest and the SDK is test/e2e/sdk.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileHandlers } from '../../src/daemon/handlers/files.js';
import {
  createFileService,
  FILE_MAX_BYTES,
  type FileService,
} from '../../src/daemon/services/files/index.js';
import { agentBinaryPath } from '../../src/guest/index.js';
import { BangerError } from '../../src/model/errors.js';
import type { CallContext } from '../../src/rpc/index.js';
import { methods } from '../../src/rpc/protocol.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { createStandinVmm, hostAgentGuest } from '../fixtures/standin-vmm.js';
import { addImage, buildVmHarness, type VmHarness } from '../fixtures/vm-harness.js';

const fx = createNetnsFixture();
const runner = fx.runner;
const token = fx.id.slice(6);

// The agent is this suite's subject: built when missing, and a build failure fails the suite.
if (!existsSync(agentBinaryPath()))
  await runner.run(['make', '-s', '-C', join(agentBinaryPath(), '..', '..')]);

let h: VmHarness;
let files: FileService;
let guest: string;

beforeAll(async () => {
  const ns = await fx.createNetns('files');
  const root = await fx.tempDir();
  guest = join(root, 'guest');
  mkdirSync(guest);
  await runner.run(['truncate', '-s', '24M', join(root, 'tiny.ext4')]);
  await runner.run(['mkfs.ext4', '-F', '-q', join(root, 'tiny.ext4')]);
  h = buildVmHarness({
    stateDir: join(root, 'state'),
    netns: ns,
    bridge: `br-fc-${token}`,
    bridgeIp: '172.28.0.1',
    vmm: createStandinVmm(runner, ns, { agentBinary: agentBinaryPath() }),
    guest: hostAgentGuest(),
  });
  addImage(h.store, 'tiny', join(root, 'tiny.ext4'));
  files = createFileService({ vms: h.service });
  await h.service.create({ name: 'box', image: 'tiny' });
  await h.service.create({ name: 'off', image: 'tiny', noStart: true });
});

afterAll(async () => {
  await h?.discard();
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BangerError);
  return (err as BangerError).code;
}

describe('vm.files through the real agent', () => {
  it('round-trips binary bytes with a mode and an owner, and marks the VM used', async () => {
    const before = h.service.get('box').lastTouchedAt;
    const data = Buffer.from([0, 1, 2, 10, 13, 255, 254, 0, 128]);
    const path = join(guest, 'bin.dat');
    await files.write('box', path, data, { mode: 0o751, uid: 1234, gid: 5678 });
    const st = lstatSync(path);
    expect(st.mode & 0o7777).toBe(0o751);
    expect([st.uid, st.gid]).toEqual([1234, 5678]);
    expect(readFileSync(path)).toEqual(data);
    expect(await files.read('box', path)).toEqual(data);
    expect(h.service.get('box').lastTouchedAt >= before).toBe(true);
  });

  it('moves 10 MiB both ways, and refuses one byte more before sending it', async () => {
    const big = randomBytes(FILE_MAX_BYTES);
    const path = join(guest, 'big.bin');
    await files.write('box', path, big);
    expect(readFileSync(path).equals(big)).toBe(true);
    expect((await files.read('box', path)).equals(big)).toBe(true);
    writeFileSync(join(guest, 'too-big.bin'), Buffer.alloc(FILE_MAX_BYTES + 1));
    expect(await codeOf(files.read('box', join(guest, 'too-big.bin')))).toBe('bad_request');
    expect(await codeOf(files.write('box', join(guest, 'x'), Buffer.alloc(FILE_MAX_BYTES + 1)))).toBe(
      'bad_request',
    );
    expect(existsSync(join(guest, 'x'))).toBe(false);
    // The refusal kept the agent connection: the next call works on it.
    expect((await files.read('box', join(guest, 'bin.dat'))).length).toBe(9);
  });

  it('lists a directory by name, symlinks not followed, with types, sizes and modes', async () => {
    const dir = join(guest, 'tree');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'b.txt'), 'hello', { mode: 0o600 });
    symlinkSync('/etc/shadow', join(dir, 'a-link'));
    writeFileSync(join(dir, 'odd "name"\n.txt'), '');
    const { entries, truncated } = await files.list('box', dir);
    expect(truncated).toBe(false);
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ['a-link', 'symlink'],
      ['b.txt', 'file'],
      ['odd "name"\n.txt', 'file'],
      ['sub', 'directory'],
    ]);
    const b = entries.find((e) => e.name === 'b.txt');
    expect(b).toMatchObject({ size: 5, mode: 0o600, uid: 0, gid: 0 });
    expect(entries.find((e) => e.name === 'a-link')?.size).toBe('/etc/shadow'.length);
  });

  it('stops a listing that would outgrow one reply frame, and says so', async () => {
    const dir = join(guest, 'many');
    mkdirSync(dir);
    const name = (i: number) => `${String(i).padStart(6, '0')}-${'n'.repeat(200)}`;
    for (let i = 0; i < 6000; i++) writeFileSync(join(dir, name(i)), '');
    const { entries, truncated } = await files.list('box', dir);
    expect(truncated).toBe(true);
    expect(entries.length).toBeGreaterThan(1000);
    expect(entries.length).toBeLessThan(6000);
  });

  it('maps guest failures to typed errors', async () => {
    expect(await codeOf(files.read('box', join(guest, 'missing')))).toBe('not_found');
    expect(await codeOf(files.read('box', guest))).toBe('bad_request'); // a directory
    expect(await codeOf(files.list('box', join(guest, 'bin.dat')))).toBe('bad_request'); // not a directory
    expect(await codeOf(files.list('box', join(guest, 'nope')))).toBe('not_found');
    expect(await codeOf(files.write('box', join(guest, 'no-dir', 'f'), Buffer.from('x')))).toBe('not_found');
    expect(await codeOf(files.read('off', '/etc/hostname'))).toBe('not_running');
    expect(await codeOf(files.read('ghost', '/etc/hostname'))).toBe('not_found');
  });

  it('refuses relative paths and bad modes at the RPC edge, and carries bytes as base64', async () => {
    const p = methods['vm.files.write'].params;
    expect(p.safeParse({ ref: 'box', path: 'etc/passwd', data: '' }).success).toBe(false);
    expect(p.safeParse({ ref: 'box', path: '/x', data: '', mode: 0o10000 }).success).toBe(false);
    expect(p.safeParse({ ref: 'box', path: '/x', data: 'not base64!' }).success).toBe(false);
    expect(p.safeParse({ ref: 'box', path: '/x', data: '', extra: 1 }).success).toBe(false);
    const handlers = fileHandlers({ files });
    const ctx = { signal: new AbortController().signal } as CallContext;
    const path = join(guest, 'via-handler');
    const written = await handlers['vm.files.write'](
      p.parse({ ref: 'box', path, data: Buffer.from('héllo\0').toString('base64'), mode: 0o640 }),
      ctx,
    );
    expect(written).toEqual({ size: 7 });
    const read = await handlers['vm.files.read']({ ref: 'box', path }, ctx);
    expect(Buffer.from(read.data, 'base64').toString()).toBe('héllo\0');
    expect(methods['vm.files.read'].result.safeParse(read).success).toBe(true);
  });
});
