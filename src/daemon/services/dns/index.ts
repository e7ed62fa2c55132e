/** The daemon's `.vm` DNS server (issue 17): records from the store, UDP + TCP with bounded input. */
export { answerQuery, DNS_SOA_MNAME, DNS_TTL_SECONDS, DNS_ZONE, type RecordLookup } from './answer.js';
export { DNS_LIMITS, type DnsLimits, type DnsServer, parseDnsAddr, startDnsServer } from './server.js';
export { createDnsService, type DnsService, type DnsServiceDeps, type DnsStatus } from './service.js';
