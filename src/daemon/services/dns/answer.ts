import dnsPacket, { type Answer, type Packet, type Question } from 'dns-packet';

/** The zone banger is authoritative for: `<name>.vm`. */
export const DNS_ZONE = 'vm';
/**
 * Seconds a resolver may cache an answer. Short: a VM stopped or deleted must stop resolving soon, and a
 * new one with a reused name must resolve to its own address.
 */
export const DNS_TTL_SECONDS = 5;
/** The SOA's MNAME: also how `banger doctor` recognises banger's server behind an address. */
export const DNS_SOA_MNAME = 'bangerd.vm';

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
type Rcode = keyof typeof RCODE;
const FLAG_AA = 1 << 10;
const FLAG_RD = 1 << 8;
/** Bits 11-14 of the flags hold the opcode; 0 is QUERY, the only one served. */
const OPCODE_SHIFT = 11;

/** Looks a VM name (the label before `.vm`, lower case) up: its guest IPv4 address, or undefined. */
export type RecordLookup = (name: string) => string | undefined;

/**
 * Answers one DNS message (the bytes of a UDP datagram or of one TCP message) for the `.vm` zone:
 * A for a running VM's name, NODATA (NOERROR, no answer) for its other types, NXDOMAIN for an unknown
 * name in the zone and REFUSED outside it. undefined means "send nothing": the message does not decode
 * (garbage, truncated) or is itself a response, which answering would turn into a loop or a reflector.
 */
export function answerQuery(message: Buffer, lookup: RecordLookup): Buffer | undefined {
  let query: ReturnType<typeof dnsPacket.decode>;
  try {
    query = dnsPacket.decode(message);
  } catch {
    return undefined;
  }
  if (query.type !== 'query') return undefined;
  const id = query.id ?? 0;
  const rd = (query.flags ?? 0) & FLAG_RD;
  const reply = (rcode: Rcode, questions: Question[], answers: Answer[] = [], soa = false): Buffer =>
    dnsPacket.encode({
      type: 'response',
      id,
      flags: FLAG_AA | rd | RCODE[rcode],
      questions,
      answers,
      authorities: soa ? [soaRecord()] : [],
    } satisfies Packet);
  if (((query.flags ?? 0) >> OPCODE_SHIFT) & 0xf) return reply('NOTIMP', []);
  const questions = query.questions ?? [];
  // Every resolver sends exactly one question; several have no agreed meaning (RFC 9619).
  if (questions.length !== 1) return reply('FORMERR', []);
  const q = questions[0] as Question;
  const name = q.name.toLowerCase().replace(/\.$/, '');
  if (name !== DNS_ZONE && !name.endsWith(`.${DNS_ZONE}`)) return reply('REFUSED', [q]);
  if (q.class !== 'IN' && q.class !== 'ANY') return reply('REFUSED', [q]);
  if (name === DNS_ZONE)
    return reply('NOERROR', [q], q.type === 'SOA' ? [soaRecord()] : [], q.type !== 'SOA');
  const label = name.slice(0, -DNS_ZONE.length - 1);
  const ip = label.includes('.') ? undefined : lookup(label);
  if (!ip) return reply('NXDOMAIN', [q], [], true);
  // ANY (255) is outside the typings' RecordType but decodes as the string 'ANY'.
  const type: string = q.type;
  if (type !== 'A' && type !== 'ANY') return reply('NOERROR', [q], [], true);
  return reply('NOERROR', [q], [{ type: 'A', class: 'IN', name: q.name, ttl: DNS_TTL_SECONDS, data: ip }]);
}

/** The zone's SOA: in the authority section of negative answers, so resolvers cache them briefly (its minimum). */
function soaRecord(): Answer {
  return {
    type: 'SOA',
    class: 'IN',
    name: DNS_ZONE,
    ttl: DNS_TTL_SECONDS,
    data: {
      mname: DNS_SOA_MNAME,
      rname: 'hostmaster.bangerd.vm',
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: DNS_TTL_SECONDS,
    },
  };
}
