import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import { type BangerInstance, createInstance, REPO_ROOT, waitUntil } from '../fixtures/banger-instance.js';

// `vm prune`, `vm set`, `vm ports` and `banger ssh-config` through a real daemon and the built CLI, on what
// needs no running VMM: created VMs (disks only), refusals and their messages, and ~/.ssh/config edits in a
// temp HOME. The behaviour on running VMs is covered by vm-admin.test.ts.
const runner = createRunner();
let inst: BangerInstance;
let home: string;
let work: string;

beforeAll(async () => {
  inst = createInstance();
  home = mkdtempSync(join(tmpdir(), 'bgr-home-'));
  work = mkdtempSync(join(tmpdir(), 'bgr-vmx-'));
});
afterAll(async () => {
  // Delete what the tests created through banger, so no disk or lease outlives the instance.
  const list = await inst.cli(['vm', 'list', '--json']);
  for (const v of JSON.parse(list.stdout || '[]') as { id: string }[]) await inst.cli(['vm', 'delete', v.id]);
  await inst.cli(['daemon', 'stop']);
  await inst.cleanup();
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/** Runs the CLI on a pseudo-terminal (script(1)), typing `input`; stdout and stderr arrive merged. */
async function onTerminal(args: string[], input: string) {
  const cmd = [process.execPath, join(REPO_ROOT, 'bin', 'banger'), ...args].join(' ');
  const r = await execa('script', ['-qec', cmd, '/dev/null'], {
    env: inst.env,
    input,
    reject: false,
    timeout: 60_000,
  });
  return { stdout: r.stdout, exitCode: r.exitCode ?? -1 };
}

const asUser = (args: string[]) => inst.cli(args, { HOME: home });

describe('banger ssh-config', () => {
  const userConfig = () => join(home, '.ssh', 'config');

  it("prints banger's block and where it lives", async () => {
    const r = await asUser(['ssh-config']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('Host *.vm\n  User root\n');
    expect(r.stdout).toMatch(/IdentityFile "[^"]+id_ed25519"/);
    expect(r.stdout).toMatch(/UserKnownHostsFile "[^"]+known_hosts"/);
    expect(r.stderr).toContain('banger ssh-config --install');
    expect(existsSync(userConfig())).toBe(false); // printing never touches ~/.ssh
  });

  it('--install creates ~/.ssh/config 0600 with one Include line, idempotently; --uninstall removes it', async () => {
    const first = await asUser(['ssh-config', '--install']);
    expect(first.exitCode, first.stderr).toBe(0);
    const text = readFileSync(userConfig(), 'utf8');
    const include = text.split('\n')[0] as string;
    expect(include).toMatch(/^Include \S+ssh_config$/);
    expect(existsSync(include.slice('Include '.length))).toBe(true);
    expect(statSync(userConfig()).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, '.ssh')).mode & 0o777).toBe(0o700);

    const again = await asUser(['ssh-config', '--install']);
    expect(again.stdout).toContain('already');
    expect(readFileSync(userConfig(), 'utf8')).toBe(text);

    const removed = await asUser(['ssh-config', '--uninstall']);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(readFileSync(userConfig(), 'utf8')).toBe('');
    const none = await asUser(['ssh-config', '--uninstall']);
    expect(none.stdout).toContain('not in');
  });

  it("keeps the user's own config and mode: the Include goes first, uninstall removes only that line", async () => {
    const mine = 'Host box\n  HostName 192.0.2.1\n  # Include elsewhere\n';
    writeFileSync(userConfig(), mine);
    chmodSync(userConfig(), 0o640);
    await asUser(['ssh-config', '--install']);
    const text = readFileSync(userConfig(), 'utf8');
    expect(text.endsWith(mine)).toBe(true);
    expect(text.split('\n').filter((l) => l.startsWith('Include '))).toHaveLength(1);
    expect(statSync(userConfig()).mode & 0o777).toBe(0o640);
    await asUser(['ssh-config', '--uninstall']);
    expect(readFileSync(userConfig(), 'utf8')).toBe(mine);
  });

  it('refuses --install with --uninstall', async () => {
    const r = await asUser(['ssh-config', '--install', '--uninstall']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('exclude each other');
  });
});

describe('vm prune / set / ports through the CLI', () => {
  it('prune with nothing to prune says so', async () => {
    const r = await inst.cli(['vm', 'prune']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('nothing to prune');
  });

  it('names a missing VM, and refuses bad values', async () => {
    for (const args of [
      ['vm', 'set', 'nope', '--vcpu', '2'],
      ['vm', 'ports', 'nope'],
    ]) {
      const r = await inst.cli(args);
      expect(r.exitCode, args.join(' ')).toBe(1);
      expect(r.stderr).toContain('no VM "nope"');
    }
    // Several VMs are asked at once; each one that cannot answer is named, and the status says so.
    const several = await inst.cli(['vm', 'ports', 'nope', 'nada']);
    expect(several.exitCode).toBe(1);
    expect(several.stderr).toContain('no VM "nope"');
    expect(several.stderr).toContain('no VM "nada"');
    const bad = await inst.cli(['vm', 'set', 'nope', '--vcpu', 'lots']);
    expect(bad.stderr).toContain('--vcpu must be a positive integer');
  });

  it('help shows examples', async () => {
    for (const cmd of [['vm', 'prune'], ['vm', 'set'], ['vm', 'ports'], ['ssh-config']]) {
      const r = await inst.cli([...cmd, '--help']);
      expect(r.stdout, cmd.join(' ')).toContain('Examples:');
    }
  });

  it('set grows a created VM and refuses to shrink; prune refuses without a terminal, asks on one, -f deletes', async () => {
    const rootfs = join(work, 'tiny.ext4');
    const kernel = join(work, 'vmlinuz');
    await runner.run(['truncate', '-s', '16M', rootfs]);
    await runner.run(['mkfs.ext4', '-F', '-q', rootfs]);
    writeFileSync(kernel, 'not a kernel: these VMs are never started\n');
    const reg = await inst.cli([
      'image',
      'register',
      '--name',
      'tiny',
      '--rootfs',
      rootfs,
      '--kernel',
      kernel,
    ]);
    expect(reg.exitCode, reg.stderr).toBe(0);
    const made = await inst.cli([
      'vm',
      'create',
      '--image',
      'tiny',
      '--name',
      'idle',
      '--no-start',
      '--disk-size',
      '32MiB',
    ]);
    expect(made.exitCode, made.stderr).toBe(0);

    const set = await inst.cli(['vm', 'set', 'idle', '--vcpu', '3', '--disk-size', '48MiB']);
    expect(set.exitCode, set.stderr).toBe(0);
    expect(set.stderr).toContain('vcpu=3');
    expect(set.stderr).toContain('disk=48');
    const shown = JSON.parse((await inst.cli(['vm', 'show', 'idle', '--json'])).stdout);
    expect(shown.spec).toMatchObject({ vcpu: 3, diskSizeBytes: 48 * 1024 * 1024 });
    expect(statSync(join(shown.runtime.vmDir, 'work.ext4')).size).toBe(48 * 1024 * 1024);
    const shrink = await inst.cli(['vm', 'set', 'idle', '--disk-size', '32MiB']);
    expect(shrink.exitCode).toBe(1);
    expect(shrink.stderr).toContain('cannot shrink');

    const ports = await inst.cli(['vm', 'ports', 'idle']);
    expect(ports.exitCode).toBe(1);
    expect(ports.stderr).toContain('not running');

    const refused = await inst.cli(['vm', 'prune']); // stdin is not a terminal here
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('needs a confirmation');
    expect(refused.stderr).toContain('-f');
    expect(JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout)).toHaveLength(1);

    // On a terminal (script(1) gives it one) it shows the VMs and asks; only "y" deletes.
    const no = await onTerminal(['vm', 'prune'], 'n\n');
    expect(no.stdout).toContain('idle');
    expect(no.stdout).toContain('[y/N]');
    expect(no.stdout).toContain('nothing deleted');
    expect(JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout)).toHaveLength(1);
    const yes = await onTerminal(['vm', 'prune'], 'y\n');
    expect(yes.exitCode, yes.stdout).toBe(0);
    expect(yes.stdout).toContain('deleted idle (created)');
    expect(existsSync(shown.runtime.vmDir)).toBe(false);

    const again = await inst.cli(['vm', 'create', '--image', 'tiny', '--name', 'idle2', '--no-start']);
    expect(again.exitCode, again.stderr).toBe(0);
    const pruned = await inst.cli(['vm', 'prune', '-f']);
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    expect(pruned.stdout).toBe('deleted idle2 (created)');
    expect(JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
    expect(existsSync(shown.runtime.vmDir)).toBe(false);

    // `vm delete` answers when the teardown is done: the name is free for the next command at once.
    const create = (name: string) =>
      inst.cli(['vm', 'create', '--image', 'tiny', '--name', name, '--no-start']);
    expect((await create('reuse')).exitCode).toBe(0);
    const reusedDir = JSON.parse((await inst.cli(['vm', 'show', 'reuse', '--json'])).stdout).runtime.vmDir;
    const del = await inst.cli(['vm', 'delete', 'reuse']);
    expect(del.exitCode, del.stderr).toBe(0);
    expect(existsSync(reusedDir)).toBe(false);
    const recreated = await create('reuse');
    expect(recreated.exitCode, recreated.stderr).toBe(0);

    // --no-wait answers once the VM is marked `deleting`; the daemon finishes the teardown after.
    const early = await inst.cli(['vm', 'rm', '--no-wait', 'reuse']);
    expect(early.exitCode, early.stderr).toBe(0);
    await waitUntil(
      async () => JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout).length === 0,
      60_000,
    );
    expect(existsSync(reusedDir)).toBe(false);
  });
});
