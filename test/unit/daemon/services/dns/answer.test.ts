import dnsPacket, { type Answer, type Packet } from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { answerQuery, DNS_SOA_MNAME } from '../../../../../src/daemon/services/dns/index.js';

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
const records = new Map([['dev', '172.16.0.2']]);
const lookup = (name: string) => records.get(name);

function ask(name: string, type = 'A', extra: Partial<Packet> = {}) {
  const query = dnsPacket.encode({
    type: 'query',
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: type as 'A', name, class: 'IN' }],
    ...extra,
  });
  const reply = answerQuery(query, lookup);
  if (!reply) throw new Error('no reply');
  return decodeReply(reply);
}

describe('the .vm answer', () => {
  it('answers A for a running VM, authoritatively, with the query id and RD echoed', () => {
    const r = ask('dev.vm');
    expect(r.id).toBe(4242);
    expect(r.rcode).toBe('NOERROR');
    expect(r.flag_aa).toBe(true);
    expect(r.flag_rd).toBe(true);
    expect(r.answers).toEqual([expect.objectContaining({ type: 'A', name: 'dev.vm', data: '172.16.0.2' })]);
  });

  it('is case-insensitive and takes a trailing dot', () => {
    expect(ask('DeV.Vm.').answers[0]).toMatchObject({ data: '172.16.0.2' });
  });

  it('gives NODATA (NOERROR, no answer, the SOA) for other types of a known name', () => {
    for (const type of ['AAAA', 'MX', 'TXT']) {
      const r = ask('dev.vm', type);
      expect(r.rcode).toBe('NOERROR');
      expect(r.answers).toEqual([]);
      expect(r.authorities[0]).toMatchObject({ type: 'SOA', data: { mname: DNS_SOA_MNAME } });
    }
  });

  it('gives NXDOMAIN for unknown names in .vm, deeper names included', () => {
    expect(ask('nope.vm').rcode).toBe('NXDOMAIN');
    expect(ask('a.dev.vm').rcode).toBe('NXDOMAIN');
    expect(ask('nope.vm').authorities[0]).toMatchObject({ type: 'SOA' });
  });

  it('refuses names outside .vm', () => {
    for (const name of ['example.com', 'dev.vmx', 'vm.example.com', '.'])
      expect(ask(name).rcode).toBe('REFUSED');
  });

  it('answers the zone apex with NODATA, its SOA when asked', () => {
    expect(ask('vm').answers).toEqual([]);
    expect(ask('vm', 'SOA').answers[0]).toMatchObject({ type: 'SOA' });
  });

  it('sends nothing for garbage, a truncated message or a response (no reflection, no loops)', () => {
    const good = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'dev.vm' }] });
    expect(answerQuery(Buffer.from('garbage garbage garbage'), lookup)).toBeUndefined();
    expect(answerQuery(good.subarray(0, good.length - 3), lookup)).toBeUndefined();
    expect(answerQuery(Buffer.alloc(0), lookup)).toBeUndefined();
    const response = dnsPacket.encode({
      type: 'response',
      id: 1,
      questions: [{ type: 'A', name: 'dev.vm' }],
    });
    expect(answerQuery(response, lookup)).toBeUndefined();
  });

  it('refuses several questions with FORMERR and other opcodes with NOTIMP', () => {
    const two = dnsPacket.encode({
      type: 'query',
      id: 7,
      questions: [
        { type: 'A', name: 'dev.vm' },
        { type: 'A', name: 'x.vm' },
      ],
    });
    expect(decodeReply(answerQuery(two, lookup) as Buffer).rcode).toBe('FORMERR');
    const update = dnsPacket.encode({ type: 'query', id: 8, flags: 5 << 11, questions: [] });
    expect(decodeReply(answerQuery(update, lookup) as Buffer).rcode).toBe('NOTIMP');
  });

  it('a header claiming 65535 questions in a short message is dropped, not allocated for', () => {
    const lie = Buffer.alloc(12);
    lie.writeUInt16BE(0xffff, 4);
    expect(answerQuery(lie, lookup)).toBeUndefined();
  });
});
