import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';

// The `vm` commands through a real daemon, on what needs no VMM: listing, refusals and their messages,
// and a daemon that reconciles at start without touching the host's network.
const runner = createRunner();
let inst: BangerInstance;
let bridgeBefore: boolean;

const hasLink = async (name: string) =>
  (await runner.run(['ip', 'link', 'show', 'dev', name], { allowFailure: true })).exitCode === 0;

beforeAll(async () => {
  bridgeBefore = await hasLink('br-fc');
  inst = createInstance();
});
afterAll(async () => {
  await inst.cleanup();
});

describe('banger vm', () => {
  it('lists nothing, as a table and as JSON', async () => {
    const json = await inst.cli(['vm', 'list', '--json']);
    expect(json.exitCode, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([]);
    const table = await inst.cli(['vm', 'ls']);
    expect(table.stdout).toContain('NAME');
  });

  it('names the missing VM or image, with a hint, and exits 1', async () => {
    for (const args of [
      ['vm', 'show', 'nope'],
      ['vm', 'stop', 'nope'],
      ['vm', 'exec', 'nope', '--', 'true'],
      ['vm', 'ssh', 'nope'],
      ['vm', 'logs', 'nope'],
    ]) {
      const r = await inst.cli(args);
      expect(r.exitCode, args.join(' ')).toBe(1);
      expect(r.stderr).toContain('no VM "nope"');
    }
    const img = await inst.cli(['vm', 'create', '--image', 'missing-image', '--no-start']);
    expect(img.exitCode).toBe(1);
    expect(img.stderr).toContain('missing-image'); // not in the catalog: no registry is asked for a bare word
  });

  it('refuses bad input before doing anything', async () => {
    const detach = await inst.cli(['vm', 'run', '-d', '--rm']);
    expect(detach.exitCode).toBe(1);
    expect(detach.stderr).toContain('-d cannot be combined');
    const vcpu = await inst.cli(['vm', 'create', '--vcpu', 'lots']);
    expect(vcpu.stderr).toContain('--vcpu must be a positive integer');
    const name = await inst.cli(['vm', 'create', '--name', 'Not_A_Label']);
    expect(name.stderr).toContain('invalid VM name');
    const sig = await inst.cli(['vm', 'kill', '--signal', 'STOP', 'nope']);
    expect(sig.exitCode).toBe(1);
    expect(sig.stderr).toContain('signal');
    const term = await inst.cli(['vm', 'kill', '-s', 'term', 'nope']);
    expect(term.stderr).toContain('no VM "nope"');
    const list = await inst.cli(['vm', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });

  it('a daemon that never ran a VM leaves the host network alone', async () => {
    expect(await hasLink('br-fc')).toBe(bridgeBefore);
  });
});
