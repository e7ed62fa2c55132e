// Keys whose effect shows only through a running daemon: each is set in config.toml of a fresh instance and
// its effect is checked through the CLI, as a user would see it (keys-have-effects.test.ts lists them).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';

let inst: BangerInstance | undefined;
afterEach(async () => {
  if (inst) {
    await inst.cli(['daemon', 'stop']);
    await inst.cleanup();
  }
  inst = undefined;
});

function instanceWith(configLines: string[]): BangerInstance {
  const created = createInstance();
  mkdirSync(join(created.home, 'config'), { recursive: true });
  writeFileSync(join(created.home, 'config', 'config.toml'), `${configLines.join('\n')}\n`);
  return created;
}

describe('config keys that act through the daemon', () => {
  it('kernel_catalog: `kernel list --available` shows the given catalog instead of the embedded one', async () => {
    const catalog = join(process.env.TMPDIR ?? '/tmp', `banger-catalog-${process.pid}.json`);
    writeFileSync(
      catalog,
      JSON.stringify({
        version: 1,
        entries: [
          {
            name: 'my-own-kernel',
            kind: 'debian-package',
            distro: 'debian',
            arch: 'x86_64',
            package: 'linux-image-cloud-amd64',
            description: 'from the kernel_catalog override',
          },
        ],
      }),
    );
    try {
      inst = instanceWith([`kernel_catalog = "${catalog}"`]);
      const r = await inst.cli(['kernel', 'list', '--available', '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      const names = (JSON.parse(r.stdout).available as { name: string }[]).map((a) => a.name);
      expect(names).toEqual(['my-own-kernel']);
    } finally {
      rmSync(catalog, { force: true });
    }
  });

  it('kernel_catalog: a catalog that is not one is refused, naming the key', async () => {
    const bad = join(process.env.TMPDIR ?? '/tmp', `banger-bad-catalog-${process.pid}.json`);
    writeFileSync(bad, '{"version": 1, "entries": [{"name": "../x"}]}');
    try {
      inst = instanceWith([`kernel_catalog = "${bad}"`]);
      const r = await inst.cli(['kernel', 'list', '--available']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`kernel catalog ${bad} is invalid`);
      expect(r.stderr).toContain('hint: fix the file or the kernel_catalog setting in config.toml');
    } finally {
      rmSync(bad, { force: true });
    }
  });

  // The key itself is made at the first VM start (vm-service tests); here: what ssh is told to use.
  it("ssh_key_path: banger's ssh config sends ssh to that key", async () => {
    inst = instanceWith([]);
    const key = join(inst.home, 'my-keys', 'banger_key');
    writeFileSync(join(inst.home, 'config', 'config.toml'), `ssh_key_path = "${key}"\n`);
    const r = await inst.cli(['ssh-config']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`IdentityFile "${key}"`);
    expect(r.stdout).not.toContain('id_ed25519');
  });
});
