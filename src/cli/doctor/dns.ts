import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import dnsPacket from 'dns-packet';
import { loadConfig } from '../../config/index.js';
import { DNS_SOA_MNAME, parseDnsAddr } from '../../daemon/services/dns/index.js';
import { RESOLVER_ROUTING_DOMAIN, resolvedRunning } from '../../host/index.js';
import type { Check } from './checks.js';

/** How long doctor waits for banger's DNS server to answer its probe on loopback. */
const PROBE_TIMEOUT_MS = 1_000;
const RECIPES = 'docs/dns.md has recipes (dnsmasq, /etc/resolv.conf, NetworkManager)';

/**
 * The `.vm` DNS server: does banger's server answer at dns_addr (a query for a name no VM has must come
 * back NXDOMAIN with banger's SOA), and does the host's resolver send `*.vm` to it (systemd-resolved's
 * routing on the bridge), or is a manual recipe needed.
 */
export const checkDns: Check = async ({ layout, runner }) => {
  let config: Awaited<ReturnType<typeof loadConfig>>;
  try {
    config = await loadConfig(layout.configFile);
  } catch {
    return { name: 'dns', status: 'WARN', details: ['config does not load (see the config row)'] };
  }
  const addr = config.dns_addr;
  const details: string[] = [];
  const answers = await probe(addr);
  const daemonUp = existsSync(layout.socketPath);
  if (!answers) {
    if (daemonUp)
      return {
        name: 'dns',
        status: 'WARN',
        details: [`bangerd runs but banger's DNS does not answer on ${addr}: NAME.vm will not resolve`],
        hint: `another program holds ${addr} (bangerd.log says which error); free it or set dns_addr, then banger daemon stop`,
      };
    details.push(`bangerd is not running; its DNS starts with it on ${addr}`);
  } else details.push(`banger's DNS answers on ${addr} (dig @${addr.replace(':', ' -p ')} NAME.vm)`);
  if (!resolvedRunning()) {
    return {
      name: 'dns',
      status: 'WARN',
      details: [
        ...details,
        'systemd-resolved is not running: the host resolver does not send *.vm to banger',
      ],
      hint: RECIPES,
    };
  }
  if (config.netns) {
    details.push(`VMs live in netns ${config.netns}: resolved cannot route *.vm on its bridge`);
    return { name: 'dns', status: 'WARN', details, hint: RECIPES };
  }
  const domains = await runner
    .run(['resolvectl', 'domain', config.bridge_name], { allowFailure: true, timeoutMs: 5_000 })
    .catch(() => undefined);
  if (domains?.exitCode === 0 && domains.stdout.includes(RESOLVER_ROUTING_DOMAIN)) {
    details.push(`systemd-resolved routes ${RESOLVER_ROUTING_DOMAIN} on ${config.bridge_name}`);
    return { name: 'dns', status: 'PASS', details };
  }
  details.push(`systemd-resolved: ${RESOLVER_ROUTING_DOMAIN} is not routed on ${config.bridge_name} yet`);
  return {
    name: 'dns',
    status: answers ? 'WARN' : 'PASS',
    details,
    hint: 'bangerd sets it once the bridge exists (the first VM start); see docs/dns.md',
  };
};

/** True when banger's server answers at `addr`: NXDOMAIN, authoritative, with banger's SOA. */
async function probe(addr: string): Promise<boolean> {
  const { host, port } = parseDnsAddr(addr);
  const query = dnsPacket.encode({
    type: 'query',
    id: 0x6264,
    questions: [{ type: 'A', name: 'banger-doctor-probe.vm', class: 'IN' }],
  });
  const reply = await new Promise<Buffer | undefined>((resolve) => {
    const sock = createSocket('udp4');
    const done = (b?: Buffer) => {
      clearTimeout(timer);
      sock.close();
      resolve(b);
    };
    const timer = setTimeout(() => done(), PROBE_TIMEOUT_MS);
    sock.on('error', () => done());
    sock.on('message', (m) => done(m));
    sock.send(query, port, host);
  });
  if (!reply) return false;
  try {
    const r = dnsPacket.decode(reply) as unknown as {
      id: number;
      rcode: string;
      flag_aa: boolean;
      authorities?: { type: string; data?: { mname?: string } }[];
    };
    return (
      r.id === 0x6264 &&
      r.flag_aa &&
      r.rcode === 'NXDOMAIN' &&
      r.authorities?.[0]?.type === 'SOA' &&
      r.authorities[0].data?.mname === DNS_SOA_MNAME
    );
  } catch {
    return false;
  }
}
