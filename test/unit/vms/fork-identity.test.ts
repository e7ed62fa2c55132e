import { describe, expect, it } from 'vitest';
import { identityScript } from '../../../src/daemon/services/vms/fork.js';
import { BangerError } from '../../../src/model/errors.js';

const id = {
  hostname: 'fa',
  address: '172.28.0.7',
  prefix: 24,
  gateway: '172.28.0.1',
  mac: '02:ab:cd:ef:01:23',
  dns: '1.1.1.1',
};

describe('identityScript (what a restored guest is told)', () => {
  it('sets MAC, address, route, hostname, resolv.conf, steps the clock to the host and reseeds, failing on the first error', () => {
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
      'if command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || [ -x /usr/bin/sshd ]; then echo banger:sshd-present; fi',
    ]);
  });

  it('draws a fresh seed each time (two forks never share one)', () => {
    expect(identityScript(id)).not.toBe(identityScript(id));
  });

  it('refuses a value that would be shell syntax', () => {
    for (const bad of [{ hostname: 'a;reboot' }, { dns: '1.1.1.1 $(id)' }, { mac: "x'" }])
      expect(() => identityScript({ ...id, ...bad })).toThrow(BangerError);
  });
});
