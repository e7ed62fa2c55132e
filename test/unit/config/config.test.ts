import { describe, expect, it } from 'vitest';
import { defaultConfig, parseConfig, resolveLayout } from '../../../src/config/index.js';

describe('config.toml', () => {
  it('gives every key a default', () => {
    const c = defaultConfig();
    expect(c).toMatchObject({
      log_level: 'info',
      vmm: 'auto',
      accel: 'auto',
      bridge_name: 'br-fc',
      cidr: 24,
    });
    expect(c.vm_defaults).toEqual({ vcpu: 2, memory_mib: 1024, disk_size: '8G', system_overlay_size: '8G' });
  });

  it('names unknown keys, nested ones too', () => {
    expect(() => parseConfig('tap_pool_sise = 2')).toThrow('unknown key "tap_pool_sise"');
    expect(() => parseConfig('[vm_defaults]\nvcpus = 2')).toThrow('unknown key "vm_defaults.vcpus"');
  });

  it('adopts a bridge banger did not create only when adopt_bridge says so', () => {
    expect(defaultConfig().adopt_bridge).toBe(false);
    expect(parseConfig('adopt_bridge = true').adopt_bridge).toBe(true);
    expect(() => parseConfig('adopt_bridge = "yes"')).toThrow(/key "adopt_bridge"/);
    expect(() => parseConfig('adopt_bridges = true')).toThrow('unknown key "adopt_bridges"');
  });

  it('names the key with a bad value and says what it must be', () => {
    expect(() => parseConfig('vmm = "kvmtool"')).toThrow(/key "vmm"/);
    expect(() => parseConfig('bridge_name = "eth0"')).toThrow(/key "bridge_name": br-fc or br-fc-<suffix>/);
    expect(() => parseConfig('cidr = 40')).toThrow(/key "cidr"/);
    expect(() => parseConfig('vmm = ')).toThrow(/invalid TOML/);
  });

  it('lets BANGER_<KEY> env vars override', () => {
    const c = parseConfig('log_level = "warn"', 'x', { BANGER_LOG_LEVEL: 'debug', BANGER_ACCEL: 'tcg' });
    expect(c.log_level).toBe('debug');
    expect(c.accel).toBe('tcg');
    expect(() => parseConfig('', 'x', { BANGER_VMM: 'nope' })).toThrow(/key "vmm"/);
  });
});

describe('[[file_sync]] and git_identity', () => {
  it('accepts absolute and ~/ paths and an octal mode; git_identity defaults on', () => {
    const c = parseConfig(
      '[[file_sync]]\nhost = "~/.npmrc"\nguest = "~/.npmrc"\nmode = "0600"\n' +
        '[[file_sync]]\nhost = "/etc/hosts"\nguest = "/etc/hosts.host"\n',
    );
    expect(c.file_sync).toEqual([
      { host: '~/.npmrc', guest: '~/.npmrc', mode: '0600' },
      { host: '/etc/hosts', guest: '/etc/hosts.host' },
    ]);
    expect(c.git_identity).toBe(true);
    expect(parseConfig('git_identity = false').git_identity).toBe(false);
  });

  it.each([
    ['host = "rel/path"\nguest = "~/x"', 'file_sync.0.host', 'an absolute path or ~/path on the host'],
    ['host = "~bob/x"\nguest = "~/x"', 'file_sync.0.host', 'an absolute path or ~/path'],
    ['host = ""\nguest = "~/x"', 'file_sync.0.host', 'an absolute path'],
    ['host = "/a/../etc/shadow"\nguest = "~/x"', 'file_sync.0.host', 'no ".."'],
    ['host = "/a"\nguest = "x"', 'file_sync.0.guest', 'an absolute path or ~/path in the guest'],
    ['host = "/a"\nguest = "~/../etc/x"', 'file_sync.0.guest', 'no ".."'],
    ['host = "/a"\nguest = "~/x"\nmode = "0999"', 'file_sync.0.mode', 'an octal mode'],
    ['host = "/a"\nguest = "~/x"\nmode = "rw"', 'file_sync.0.mode', 'an octal mode'],
    ['host = "/a"\nguest = "~/x"\nowner = "me"', 'file_sync.0.owner', 'unknown key'],
  ])('refuses %j naming %s', (entry, key, message) => {
    const text = `[[file_sync]]\nhost = "/ok"\nguest = "/ok"\n[[file_sync]]\n${entry}\n`;
    const shifted = key.replace('.0.', '.1.');
    expect(() => parseConfig(text)).toThrow(shifted);
    expect(() => parseConfig(text)).toThrow(message);
  });
});

describe('layouts', () => {
  const base = { uid: 1000, home: '/home/u' };
  it('follows XDG in user mode with a /tmp runtime fallback', () => {
    const l = resolveLayout({ ...base, env: {}, mode: 'user' });
    expect(l.configFile).toBe('/home/u/.config/banger/config.toml');
    expect(l.dbPath).toBe('/home/u/.local/state/banger/banger.db');
    expect(l.ociDir).toBe('/home/u/.cache/banger/oci');
    expect(l.socketPath).toBe('/tmp/banger-runtime-1000/bangerd.sock');
    const x = resolveLayout({ ...base, env: { XDG_RUNTIME_DIR: '/run/user/1000' }, mode: 'user' });
    expect(x.socketPath).toBe('/run/user/1000/banger/bangerd.sock');
  });

  it('uses the FHS in system mode', () => {
    const l = resolveLayout({ ...base, env: {}, mode: 'system' });
    expect(l.instanceIdPath).toBe('/var/lib/banger/instance-id');
    expect([l.configDir, l.stateDir, l.cacheDir, l.runtimeDir]).toEqual([
      '/etc/banger',
      '/var/lib/banger',
      '/var/cache/banger',
      '/run/banger',
    ]);
  });

  it('puts a whole instance under BANGER_HOME', () => {
    const l = resolveLayout({ ...base, env: { BANGER_HOME: '/tmp/b' }, mode: 'system' });
    expect(l.stateDir).toBe('/tmp/b/state');
    expect(l.socketPath).toBe('/tmp/b/run/bangerd.sock');
  });
});
