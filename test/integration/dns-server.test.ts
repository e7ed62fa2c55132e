import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { connect, type Socket } from 'node:net';
import dnsPacket, { type Answer } from 'dns-packet';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  answerQuery,
  createDnsService,
  DNS_LIMITS,
  type DnsServer,
  startDnsServer,
} from '../../src/daemon/services/dns/index.js';
import type { VM } from '../../src/model/vm.js';

// The DNS server on real loopback sockets, asked by node's resolver (c-ares) and by raw UDP/TCP clients
// that send what a hostile local user could.
/** A decoded reply with the fields the tests read (dns-packet's typings omit rcode and the header flags). */
interface Reply {
  id: number;
  rcode: string;
  flag_aa: boolean;
  flag_rd: boolean;
  answers: Answer[];
  authorities: Answer[];
}
const decodeReply = (buf: Buffer): Reply => dnsPacket.decode(buf) as unknown as Reply;
const log = pino({ level: 'silent' });
const records = new Map([['dev', '172.16.0.2']]);
let server: DnsServer;
let port: number;

beforeAll(async () => {
  server = await startDnsServer({
    host: '127.0.0.1',
    port: 0,
    answer: (m) => answerQuery(m, (n) => records.get(n)),
    log,
    limits: { ...DNS_LIMITS, tcpIdleMs: 300, maxTcpConnections: 8 },
  });
  port = server.address.port;
});
afterAll(() => server.close());

function resolver(): Resolver {
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  return r;
}

function udpAsk(payload: Buffer, waitMs = 300): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, waitMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(payload, port, '127.0.0.1');
  });
}

function tcpOpen(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves when the server closes the connection (or after waitMs with false). */
function closedWithin(s: Socket, waitMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs);
    s.on('error', () => {});
    s.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

const query = (name: string, id = 1) =>
  dnsPacket.encode({ type: 'query', id, questions: [{ type: 'A', name, class: 'IN' }] });

async function tcpAsk(name: string): Promise<Reply> {
  const s = await tcpOpen();
  s.write(dnsPacket.streamEncode({ type: 'query', id: 9, questions: [{ type: 'A', name }] }));
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) {
        s.destroy();
        resolve(decodeReply(all.subarray(2)));
      }
    });
    s.on('error', reject);
  });
}

describe('the DNS server', () => {
  it("answers a resolver's A, NXDOMAIN, NODATA and REFUSED over UDP", async () => {
    const r = resolver();
    expect(await r.resolve4('dev.vm')).toEqual(['172.16.0.2']);
    await expect(r.resolve4('nope.vm')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(r.resolve6('dev.vm')).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(r.resolve4('example.com')).rejects.toMatchObject({ code: 'EREFUSED' });
  });

  it('answers over TCP with length-prefixed messages', async () => {
    const a = await tcpAsk('dev.vm');
    expect(a.answers[0]).toMatchObject({ type: 'A', data: '172.16.0.2' });
    expect((await tcpAsk('gone.vm')).rcode).toBe('NXDOMAIN');
  });

  it('drops garbage, truncated and oversized datagrams and keeps answering', async () => {
    expect(await udpAsk(Buffer.from('\x00\x01garbage'))).toBeUndefined();
    const q = query('dev.vm');
    expect(await udpAsk(q.subarray(0, q.length - 4))).toBeUndefined();
    expect(await udpAsk(Buffer.alloc(DNS_LIMITS.maxUdpBytes + 1, 7))).toBeUndefined();
    const ok = await udpAsk(query('dev.vm', 77), 2000);
    expect(ok && decodeReply(ok).id).toBe(77);
  });

  it('closes a TCP connection announcing a huge message, sending garbage, or idling', async () => {
    const huge = await tcpOpen();
    huge.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
    expect(await closedWithin(huge, 2000)).toBe(true);
    const garbage = await tcpOpen();
    const junk = Buffer.from('not a dns message at all');
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(junk.length);
    garbage.write(Buffer.concat([prefix, junk]));
    expect(await closedWithin(garbage, 2000)).toBe(true);
    const idle = await tcpOpen();
    idle.write(Buffer.from([0x00])); // half a length prefix, then nothing
    expect(await closedWithin(idle, 3000)).toBe(true);
    expect((await tcpAsk('dev.vm')).answers).toHaveLength(1);
  });

  it('holds at most maxTcpConnections at once and serves again once they go', async () => {
    const held = await Promise.all(Array.from({ length: 20 }, () => tcpOpen().catch(() => undefined)));
    const closed = await Promise.all(held.map((s) => (s ? closedWithin(s, 150) : Promise.resolve(true))));
    // The limit is 8: the rest are closed on accept.
    expect(closed.filter((c) => !c).length).toBeLessThanOrEqual(8);
    for (const s of held) s?.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await tcpAsk('dev.vm')).answers).toHaveLength(1);
  });

  it('a taken port leaves the service unavailable, with the reason, and nothing thrown', async () => {
    const dns = createDnsService({ config: { dns_addr: `127.0.0.1:${port}` }, listVms: () => [], log });
    const status = await dns.start();
    expect(status).toMatchObject({ state: 'unavailable', address: `127.0.0.1:${port}` });
    expect(status.state === 'unavailable' && status.reason).toMatch(/EADDRINUSE/);
    await dns.close();
    // The first server still answers.
    expect(await resolver().resolve4('dev.vm')).toEqual(['172.16.0.2']);
  });

  it('the service follows the VM list: a running VM resolves, a stopped one does not', async () => {
    const vm = (name: string, state: VM['state'], guestIp?: string) =>
      ({ name, state, runtime: { identities: [], guestIp } }) as unknown as VM;
    let vms = [vm('web', 'running', '172.16.0.9'), vm('old', 'stopped', '172.16.0.10')];
    const dns = createDnsService({ config: { dns_addr: '127.0.0.1:0' }, listVms: () => vms, log });
    const status = await dns.start();
    expect(status.state).toBe('serving');
    const r = new Resolver({ timeout: 1000, tries: 1 });
    r.setServers([status.state === 'serving' ? status.address : '']);
    expect(await r.resolve4('web.vm')).toEqual(['172.16.0.9']);
    await expect(r.resolve4('old.vm')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    vms = [vm('web', 'stopped', '172.16.0.9')];
    dns.refresh();
    await expect(r.resolve4('web.vm')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await dns.close();
  });
});
