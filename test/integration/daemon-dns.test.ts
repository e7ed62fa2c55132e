import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type BangerInstance, createInstance, processAlive, waitUntil } from '../fixtures/banger-instance.js';

// bangerd's `.vm` DNS server as users meet it: on dns_addr from config.toml, reported by doctor, surviving
// hostile input, and a taken port that leaves the daemon running without DNS.
const instances: BangerInstance[] = [];
afterEach(async () => {
  for (const inst of instances.splice(0)) {
    await inst.cli(['daemon', 'stop']);
    await inst.cleanup();
  }
});

/** A loopback UDP port free right now (bound, read, released). */
async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function instanceWith(config: string): BangerInstance {
  const inst = createInstance();
  instances.push(inst);
  mkdirSync(join(inst.home, 'config'), { recursive: true });
  writeFileSync(join(inst.home, 'config', 'config.toml'), config);
  return inst;
}

const log = (inst: BangerInstance) => readFileSync(join(inst.home, 'state', 'bangerd.log'), 'utf8');

async function doctorDns(inst: BangerInstance) {
  const r = await inst.cli(['doctor', '--json']);
  const rows = JSON.parse(r.stdout) as { name: string; status: string; details: string[] }[];
  return rows.find((row) => row.name === 'dns');
}

describe('bangerd DNS', () => {
  it('serves dns_addr, survives hostile input, doctor says so, and a stop leaves no handle open', async () => {
    const port = await freePort();
    const inst = instanceWith(`dns_addr = "127.0.0.1:${port}"\n`);
    expect((await inst.cli(['vm', 'list'])).exitCode).toBe(0);
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    await expect(resolver.resolve4('nobody.vm')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolve4('example.com')).rejects.toMatchObject({ code: 'EREFUSED' });

    // Garbage datagrams, a huge TCP length, a connection flood: the daemon keeps serving.
    const udp = createSocket('udp4');
    for (const junk of [Buffer.alloc(0), Buffer.from('garbage'), Buffer.alloc(9000, 0xff)])
      udp.send(junk, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
    udp.close();
    const socks = Array.from({ length: 100 }, () => {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.on('connect', () => s.write(Buffer.from([0xff, 0xff, 0, 0])));
      return s;
    });
    await new Promise((r) => setTimeout(r, 500));
    for (const s of socks) s.destroy();
    const pid = inst.daemonPid() as number;
    expect(processAlive(pid)).toBe(true);
    await expect(resolver.resolve4('nobody.vm')).rejects.toMatchObject({ code: 'ENOTFOUND' });

    const row = await doctorDns(inst);
    expect(row?.details.join('\n')).toContain(`banger's DNS answers on 127.0.0.1:${port}`);

    expect((await inst.cli(['daemon', 'stop'])).exitCode).toBe(0);
    await waitUntil(() => !processAlive(pid));
    expect(log(inst)).toContain('"msg":"stopped"');
    // What may stay open is the daemon's own stdio (pipes to this test) and the shutdown of the connection
    // that carried its reply to `daemon stop` (SimpleShutdownWrap, on a loaded host); no timer, UDP or TCP
    // socket of the DNS server.
    const left = log(inst)
      .split('\n')
      .filter((l) => l.includes('handles still open'))
      .flatMap((l) => (JSON.parse(l) as { left: string[] }).left);
    expect(left.filter((h) => h !== 'PipeWrap' && h !== 'SimpleShutdownWrap')).toEqual([]);
  });

  it('a taken port: the daemon starts and works, DNS is unavailable in the log and in doctor', async () => {
    const port = await freePort();
    const squatter: UdpSocket = createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(port, '127.0.0.1', r));
    try {
      const inst = instanceWith(`dns_addr = "127.0.0.1:${port}"\n`);
      const list = await inst.cli(['vm', 'list', '--json']);
      expect(list.exitCode, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout)).toEqual([]);
      expect(log(inst)).toMatch(/dns: unavailable.*EADDRINUSE|EADDRINUSE.*dns: unavailable/);
      const row = await doctorDns(inst);
      expect(row?.status).toBe('WARN');
      expect(row?.details.join('\n')).toContain(`does not answer on 127.0.0.1:${port}`);
    } finally {
      squatter.close();
    }
  });

  it('refuses a dns_addr that is not a loopback address and port', async () => {
    const inst = instanceWith('dns_addr = "0.0.0.0:53"\n');
    const r = await inst.cli(['vm', 'list']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('dns_addr');
  });
});
