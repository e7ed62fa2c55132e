import type { Logger } from 'pino';
import type { Config } from '../../../config/index.js';
import { toBangerError } from '../../../model/errors.js';
import { type VM, vmmUp } from '../../../model/vm.js';
import { answerQuery } from './answer.js';
import { type DnsServer, parseDnsAddr, startDnsServer } from './server.js';

/** Whether the `.vm` server answers, and where; `unavailable` says why (the port was taken). */
export type DnsStatus =
  | { state: 'serving'; address: string }
  | { state: 'unavailable'; address: string; reason: string }
  | { state: 'stopped' };

export interface DnsServiceDeps {
  config: Pick<Config, 'dns_addr'>;
  /** Every VM in the store; the records are those running with an address. */
  listVms: () => VM[];
  log: Logger;
  /**
   * Routes `~vm` queries from the host's resolver to this server (systemd-resolved, through the privileged
   * operations); called once the server listens and again after every records change until it succeeds,
   * so the bridge made by the first VM start gets its routing.
   */
  routeResolver?: (address: { host: string; port: number }) => Promise<'routed' | 'skipped'>;
}

export interface DnsService {
  /** Binds UDP and TCP on dns_addr. Never throws: a taken port leaves the daemon running without DNS. */
  start(): Promise<DnsStatus>;
  /** Rebuilds the records from the store: after a start, stop, delete, exit or reconcile. */
  refresh(): void;
  /** The current records, name -> guest IPv4 (for tests and `doctor`). */
  records(): ReadonlyMap<string, string>;
  status(): DnsStatus;
  close(): Promise<void>;
}

/**
 * The daemon's authoritative server for `<name>.vm`. Records are a map rebuilt from the store on every
 * change rather than patched per event: a missed event can then never leave a stale name behind.
 */
export function createDnsService(deps: DnsServiceDeps): DnsService {
  let table = new Map<string, string>();
  let server: DnsServer | undefined;
  let status: DnsStatus = { state: 'stopped' };
  let routed = false;
  let routing: Promise<void> | undefined;

  const rebuild = () => {
    const next = new Map<string, string>();
    for (const vm of deps.listVms()) {
      if (vmmUp(vm.state) && vm.runtime.guestIp) next.set(vm.name.toLowerCase(), vm.runtime.guestIp);
    }
    table = next;
  };

  const route = () => {
    if (routed || !server || !deps.routeResolver || routing) return;
    const address = server.address;
    routing = deps
      .routeResolver(address)
      .then((r) => {
        routed = r === 'routed';
        if (routed) deps.log.info({ address }, 'dns: host resolver routes ~vm here');
      })
      .catch((err: unknown) => {
        deps.log.warn({ err: toBangerError(err).message }, 'dns: routing ~vm in the host resolver failed');
      })
      .finally(() => {
        routing = undefined;
      });
  };

  return {
    async start() {
      rebuild();
      const { host, port } = parseDnsAddr(deps.config.dns_addr);
      try {
        server = await startDnsServer({
          host,
          port,
          answer: (msg) => answerQuery(msg, (name) => table.get(name)),
          log: deps.log,
        });
        status = { state: 'serving', address: `${server.address.host}:${server.address.port}` };
        deps.log.info({ address: status.address, records: table.size }, 'dns: serving .vm');
        route();
      } catch (err) {
        status = { state: 'unavailable', address: deps.config.dns_addr, reason: (err as Error).message };
        deps.log.warn(
          { address: deps.config.dns_addr, err: (err as Error).message },
          'dns: unavailable; <name>.vm will not resolve (banger doctor)',
        );
      }
      return status;
    },
    refresh() {
      rebuild();
      route();
    },
    records: () => table,
    status: () => status,
    async close() {
      await routing;
      await server?.close();
      server = undefined;
      status = { state: 'stopped' };
    },
  };
}
