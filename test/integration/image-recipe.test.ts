import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_AGENT_PATH } from '../../src/guest/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import { cliLong, debugfsMode, fsckClean } from '../fixtures/images.js';
import { testCacheDir } from '../fixtures/kernel.js';

const skip =
  process.getuid?.() !== 0
    ? 'debootstrap needs root'
    : (await execa('which', ['debootstrap'], { reject: false })).exitCode !== 0
      ? 'debootstrap is not installed'
      : undefined;

const cat = async (ext4: string, path: string) =>
  (await execa('debugfs', ['-R', `cat ${path}`, ext4])).stdout;

// Real: debootstrap from deb.debian.org (the tarball of the tree is cached under the test cache, keyed by the
// recipe, so the first run on a machine takes about a minute and later runs seconds), the Debian cloud
// kernel through apt, the rootfs builder with the guest assets.
describe.skipIf(skip !== undefined)(`the default image recipe${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let inst: BangerInstance;
  beforeAll(() => {
    inst = createInstance();
  });
  afterAll(async () => inst?.cleanup());

  it('builds debian-bookworm with debootstrap, tied to the default kernel, with progress', {
    timeout: 900_000,
  }, async () => {
    // The daemon is started by this first call, so it inherits the recipe cache setting.
    const r = await cliLong(inst, ['image', 'pull', 'debian-bookworm'], {
      env: { BANGER_RECIPE_CACHE: `${testCacheDir()}/recipes` },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^pulled debian-bookworm: recipe debian-bookworm/);
    expect(r.stderr).toMatch(/debootstrap/);
    expect(r.stderr).toMatch(/kernel/);

    const { image } = JSON.parse((await inst.cli(['image', 'show', 'debian-bookworm', '--json'])).stdout);
    expect(image).toMatchObject({
      managed: true,
      source: { kind: 'recipe', recipe: 'debian-bookworm' },
      artifacts: { kernelRef: 'debian-cloud-amd64' },
    });
    expect(image.artifacts.kernelPath).toMatch(new RegExp(`^${inst.home}/state/images/${image.id}/kernel/`));
    expect(image.artifacts.initrdPath).toBe(`${inst.home}/state/images/${image.id}/kernel/initrd.img`);
    const rootfs = image.artifacts.rootfsPath;
    expect((await fsckClean(rootfs)).ok).toBe(true);
    expect(await cat(rootfs, '/usr/lib/os-release')).toMatch(/VERSION_CODENAME=bookworm/);
    expect(await cat(rootfs, '/etc/apt/sources.list')).toContain('bookworm-security');
    for (const path of [
      '/usr/sbin/sshd',
      '/usr/bin/curl',
      '/usr/bin/git',
      '/usr/bin/sudo',
      '/usr/sbin/ip',
      '/lib/systemd/systemd',
      // The original's developer tools that Debian's archive has.
      '/usr/bin/docker',
      '/usr/sbin/dockerd',
      '/usr/bin/jq',
      '/usr/bin/make',
      '/usr/bin/gcc',
      '/usr/bin/unzip',
      '/usr/bin/rsync',
      '/usr/sbin/modprobe',
    ]) {
      expect(await debugfsMode(rootfs, path), path).toBeDefined();
    }
    // docker waits for its socket: nothing of it starts at boot but the socket unit.
    const wants = '/etc/systemd/system';
    expect(await debugfsMode(rootfs, `${wants}/sockets.target.wants/docker.socket`)).toBeDefined();
    expect(await debugfsMode(rootfs, `${wants}/multi-user.target.wants/docker.service`)).toBeUndefined();
    expect(await debugfsMode(rootfs, `${wants}/multi-user.target.wants/containerd.service`)).toBeUndefined();
    // The kernel's modules, for modprobe in the guest (bridge, nf_tables, overlay for docker).
    const kernelVersion = JSON.parse(
      (await inst.cli(['kernel', 'show', 'debian-cloud-amd64', '--json'])).stdout,
    ).version as string;
    expect(await debugfsMode(rootfs, `/usr/lib/modules/${kernelVersion}/modules.dep`)).toBeDefined();
    expect(await debugfsMode(rootfs, '/usr/bin/sudo')).toBe('04755');
    expect(await debugfsMode(rootfs, GUEST_AGENT_PATH)).toBe('0755');
    expect(await cat(rootfs, '/etc/machine-id')).toBe('');

    const again = await inst.cli(['image', 'pull', 'debian-bookworm']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/image debian-bookworm already exists/);
  });
});
