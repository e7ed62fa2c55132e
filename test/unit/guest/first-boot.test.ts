import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstBootScriptHostPath } from '../../../src/guest/index.js';
import { createRunner } from '../../../src/host/index.js';

const runner = createRunner();

// Sample os-release files, trimmed to the fields the script reads.
const samples: Record<string, { osRelease: string; plan: string[] }> = {
  debian: {
    osRelease: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
    plan: ['apt-get install -y --no-install-recommends openssh-server', 'systemctl enable --now ssh'],
  },
  ubuntu: {
    osRelease: 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n',
    plan: ['apt-get update', 'apt-get install -y --no-install-recommends openssh-server'],
  },
  'pop via ID_LIKE': {
    osRelease: 'ID=pop\nID_LIKE="ubuntu debian"\n',
    plan: ['apt-get install -y --no-install-recommends openssh-server'],
  },
  alpine: {
    osRelease: 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\n',
    plan: ['apk add --no-cache openssh-server', 'rc-update add sshd default', 'rc-service sshd start'],
  },
  fedora: {
    osRelease: 'ID=fedora\n',
    plan: ['dnf install -y openssh-server', 'systemctl enable --now sshd'],
  },
  rocky: { osRelease: 'ID="rocky"\nID_LIKE="rhel centos fedora"\n', plan: ['dnf install -y openssh-server'] },
  'unknown id, rhel-like': {
    osRelease: 'ID=mydistro\nID_LIKE="rhel fedora"\n',
    plan: ['dnf install -y openssh-server'],
  },
  arch: { osRelease: 'ID=arch\n', plan: ['pacman -Sy --noconfirm openssh', 'systemctl enable --now sshd'] },
  manjaro: { osRelease: 'ID=manjaro\nID_LIKE=arch\n', plan: ['pacman -Sy --noconfirm openssh'] },
  'opensuse-leap': {
    osRelease: 'ID="opensuse-leap"\nID_LIKE="suse opensuse"\n',
    plan: ['zypper --non-interactive install openssh-server'],
  },
};

describe('first-boot ssh set-up plans (RUN_PLAN=1)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'banger-first-boot-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function plan(osRelease: string) {
    const file = join(dir, 'os-release');
    await writeFile(file, osRelease);
    return runner.run(['sh', firstBootScriptHostPath()], {
      env: { RUN_PLAN: '1', OS_RELEASE: file, BANGER_STATE: join(dir, 'state') },
      allowFailure: true,
    });
  }

  for (const [name, sample] of Object.entries(samples)) {
    it(`plans the ssh server install for ${name}`, async () => {
      const r = await plan(sample.osRelease);
      expect(r.exitCode).toBe(0);
      const lines = r.stdout.trim().split('\n');
      for (const step of sample.plan) expect(lines.some((l) => l.endsWith(step))).toBe(true);
      expect(lines).toContain('ssh-keygen -A');
      expect(lines.at(-1)).toBe(`rm -f ${join(dir, 'state')}/first-boot-pending`);
    });
  }

  it('refuses an unknown distribution with a clear message and no plan', async () => {
    const r = await plan('ID=gentoo\n');
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/unsupported distribution: ID=gentoo/);
  });

  it('does nothing when the marker is absent (not a dry run)', async () => {
    const file = join(dir, 'os-release');
    await writeFile(file, 'ID=debian\n');
    const r = await runner.run(['sh', firstBootScriptHostPath()], {
      env: { OS_RELEASE: file, BANGER_STATE: join(dir, 'no-state') },
    });
    expect(r).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
  });
});
