import type { Runner } from '../../../host/index.js';
import type { VM } from '../../../model/vm.js';
import type { GuestPort } from './admin.js';

/**
 * The `vm ports` HTTP probe: best-effort and bounded. A port "answers HTTP" when a `HEAD /` gets bytes that
 * start with `HTTP/` within the timeout; at most PROBE_MAX_BYTES are read, whatever the guest sends.
 */
export const PROBE_TIMEOUT_MS = 1_000;
const PROBE_MAX_BYTES = 64;

export interface ProbeTarget {
  host: string;
  port: number;
}

/**
 * The probe as a self-contained script run by `node -e`: in the VMs' network namespace when they have one
 * (config netns; a socket the daemon opened could not reach them), in the host's otherwise, one code path
 * for both. Prints the ports that answered, as JSON.
 */
const PROBE_SCRIPT = `
const net = require('node:net');
const [targets, timeoutMs, maxBytes] = JSON.parse(process.argv[1]);
const probe = ({ host, port }) => new Promise((resolve) => {
  let got = Buffer.alloc(0);
  const s = net.connect({ host, port });
  const done = (ok) => { clearTimeout(t); s.destroy(); resolve(ok ? port : null); };
  const t = setTimeout(() => done(false), timeoutMs);
  s.on('connect', () => s.write('HEAD / HTTP/1.0\\r\\nHost: ' + host + '\\r\\nConnection: close\\r\\n\\r\\n'));
  s.on('data', (d) => {
    got = Buffer.concat([got, d]).subarray(0, maxBytes);
    if (got.length >= 5) done(got.subarray(0, 5).toString('latin1') === 'HTTP/');
  });
  s.on('error', () => done(false));
  s.on('end', () => done(false));
});
Promise.all(targets.map(probe)).then((r) => process.stdout.write(JSON.stringify(r.filter((p) => p !== null))));
`;

/** The ports among `targets` that answer HTTP; a probe that cannot run answers none (best-effort). */
export async function probeHttpPorts(
  runner: Runner,
  targets: readonly ProbeTarget[],
  netns: string | undefined,
): Promise<Set<number>> {
  if (targets.length === 0) return new Set();
  const args = JSON.stringify([targets, PROBE_TIMEOUT_MS, PROBE_MAX_BYTES]);
  try {
    const r = await runner.run([process.execPath, '-e', PROBE_SCRIPT, args], {
      netns,
      timeoutMs: PROBE_TIMEOUT_MS + 4_000,
    });
    const ports = JSON.parse(r.stdout.slice(0, 64 * 1024)) as unknown;
    return new Set(Array.isArray(ports) ? ports.filter((p): p is number => Number.isInteger(p)) : []);
  } catch {
    return new Set();
  }
}

/** Sets `url` on the VM's TCP ports reachable through its guest IP that answer HTTP. */
export async function withHttpLinks(
  runner: Runner,
  vm: VM,
  ports: GuestPort[],
  netns: string | undefined,
): Promise<GuestPort[]> {
  const ip = vm.runtime.guestIp;
  if (!ip) return ports;
  const tcp = ports.filter((p) => p.protocol === 'tcp' && p.ipEndpoint === `${ip}:${p.port}`);
  const http = await probeHttpPorts(
    runner,
    tcp.map((p) => ({ host: ip, port: p.port })),
    netns,
  );
  for (const p of tcp) if (http.has(p.port)) p.url = `http://${vm.name}.vm:${p.port}/`;
  return ports;
}
