import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { identityScript } from '../../../src/daemon/services/vms/fork.js';
import { createRunner } from '../../../src/host/index.js';
import { BangerError } from '../../../src/model/errors.js';
import { generateHostKey } from '../../../src/ssh/index.js';

const hostKey = {
  privateKey:
    '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQUJD+/=\n-----END OPENSSH PRIVATE KEY-----\n',
  publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo',
};

const id = {
  hostname: 'fa',
  address: '172.28.0.7',
  prefix: 24,
  gateway: '172.28.0.1',
  mac: '02:ab:cd:ef:01:23',
  dns: '1.1.1.1',
  hostKey,
};

describe('identityScript (what a restored guest is told)', () => {
  it('sets MAC, address, route, hostname, resolv.conf, steps the clock, reseeds and installs its own host key, failing on the first error', () => {
    const script = identityScript(id, new Date(1_700_000_000_500), Buffer.alloc(4, 0xab));
    expect(script.split('\n')).toEqual([
      'set -e',
      'ip link set dev eth0 address 02:ab:cd:ef:01:23',
      'ip addr flush dev eth0',
      'ip addr add 172.28.0.7/24 dev eth0',
      'ip link set dev eth0 up',
      'ip route replace default via 172.28.0.1 dev eth0',
      'hostname fa',
      'echo fa > /etc/hostname',
      "echo 'nameserver 1.1.1.1' > /etc/resolv.conf",
      'date -u -s @1700000000 > /dev/null',
      'echo abababab > /dev/urandom',
      "(umask 077; mkdir -p /etc/ssh; cat > /etc/ssh/ssh_host_ed25519_key.banger-new <<'BANGER_HOST_KEY'",
      '-----BEGIN OPENSSH PRIVATE KEY-----',
      'b3BlbnNzaC1rZXktdjEAAAAA',
      'QUJD+/=',
      '-----END OPENSSH PRIVATE KEY-----',
      'BANGER_HOST_KEY',
      'mv -f /etc/ssh/ssh_host_ed25519_key.banger-new /etc/ssh/ssh_host_ed25519_key)',
      "echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo root@fa' > /etc/ssh/ssh_host_ed25519_key.pub",
      'chmod 644 /etc/ssh/ssh_host_ed25519_key.pub',
      'for f in /run/sshd.pid /var/run/sshd.pid; do if [ -s "$f" ]; then kill -HUP "$(cat "$f")" 2>/dev/null || true; break; fi; done',
      'if command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || [ -x /usr/bin/sshd ]; then echo banger:sshd-present; fi',
    ]);
  });

  it('carries the git identity as positional parameters, never in its text, before the sshd probe', () => {
    const git = { name: "Eve $(reboot) 'x", email: 'e@x; reboot' };
    const lines = identityScript({ ...id, git }).split('\n');
    const script = lines.join('\n');
    expect(script).not.toContain('reboot');
    expect(script).toContain('git config --file /root/.gitconfig user.name "$1"');
    expect(script).toContain('git config --file /root/.gitconfig user.email "$2"');
    expect(lines.at(-1)).toMatch(/banger:sshd-present/);
    expect(identityScript(id)).not.toContain('gitconfig');
  });

  it('draws a fresh seed each time (two forks never share one)', () => {
    expect(identityScript(id)).not.toBe(identityScript(id));
  });

  it('refuses a value that would be shell syntax', () => {
    for (const bad of [{ hostname: 'a;reboot' }, { dns: '1.1.1.1 $(id)' }, { mac: "x'" }])
      expect(() => identityScript({ ...id, ...bad })).toThrow(BangerError);
    // A key that could end the here-document early, or a .pub line that leaves its quotes.
    for (const bad of [
      { ...hostKey, privateKey: `${hostKey.privateKey}BANGER_HOST_KEY\nreboot\n` },
      { ...hostKey, publicKey: "ssh-ed25519 AAAA' ; reboot ; '" },
    ])
      expect(() => identityScript({ ...id, hostKey: bad })).toThrow(BangerError);
  });

  it('runs in a shell: the key files get the content and modes sshd wants, the rest of the script keeps its umask', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'banger-fork-id-'));
    try {
      const real = await generateHostKey(createRunner());
      const other = await generateHostKey(createRunner());
      expect(real.publicKey).not.toBe(other.publicKey);
      // Only the host-key part, with /etc/ssh pointed into the temporary directory.
      const lines = identityScript({ ...id, hostKey: real }).split('\n');
      const part = lines
        .slice(lines.findIndex((l) => l.startsWith('(umask')))
        .join('\n')
        .replaceAll('/etc/ssh', join(dir, 'ssh'))
        .replaceAll('/run/sshd.pid', join(dir, 'none.pid'))
        .replaceAll('/var/run/sshd.pid', join(dir, 'none2.pid'));
      execFileSync('sh', ['-e', '-c', `${part}\ntouch ${join(dir, 'after')}`]);
      const key = join(dir, 'ssh', 'ssh_host_ed25519_key');
      expect(readFileSync(key, 'utf8')).toBe(real.privateKey);
      expect(statSync(key).mode & 0o777).toBe(0o600);
      expect(readFileSync(`${key}.pub`, 'utf8')).toBe(`${real.publicKey} root@fa\n`);
      expect(statSync(`${key}.pub`).mode & 0o777).toBe(0o644);
      expect(statSync(join(dir, 'after')).mode & 0o077).not.toBe(0);
      // The key is the pair ssh-keygen agrees with.
      expect(execFileSync('ssh-keygen', ['-y', '-f', key], { encoding: 'utf8' }).trim()).toBe(real.publicKey);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
