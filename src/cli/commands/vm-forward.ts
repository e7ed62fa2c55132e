import { Command } from '@commander-js/extra-typings';
import { badRequest } from '../../model/errors.js';
import type { Result } from '../../rpc/index.js';
import { type CliContext, examples } from '../context.js';
import { renderJson, renderTable } from '../render/table.js';

type ForwardList = Result<'forward.list'>;
type ForwardInfo = ForwardList['forwards'][number];

const endpoint = (address: string, port: number) =>
  address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;

/** The forwards table (`vm forward --list`, `vm show`): one row per forward. */
export function renderForwards(forwards: ForwardInfo[]): string {
  const rows = forwards.map((f) => [
    endpoint(f.hostAddress, f.hostPort),
    String(f.guestPort),
    f.auto ? 'auto' : 'manual',
    String(f.connections),
    f.error ?? 'listening',
  ]);
  return renderTable(['HOST', 'GUEST PORT', 'KIND', 'CONNS', 'STATE'], rows);
}

function hostPortOf(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw badRequest(`--rm takes host ports (0-65535), not ${JSON.stringify(text)}`);
  return n;
}

/** `banger vm forward`: TCP ports of the host relayed to a running VM (over the bridge, or through its agent). */
export function forwardCommand(ctx: CliContext) {
  return new Command('forward')
    .description(
      'forward host TCP ports to a running VM (over the bridge, else through its agent), until it stops',
    )
    .argument('<vm>', 'VM (running)')
    .argument(
      '[spec...]',
      '[HOST_ADDR:]HOST_PORT:GUEST_PORT (HOST_ADDR defaults to 127.0.0.1; 0 picks a free port); with --rm: host ports',
    )
    .option('--rm', 'stop the forwards listening on the host ports given')
    .option('--auto', 'also forward every port the guest listens on, as it starts listening')
    .option('--no-auto', 'stop forwarding automatically (the automatic forwards go)')
    .option('-l, --list', 'list the forwards (the default without a spec)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples(
        'banger vm forward dev 18080:8080          # curl http://127.0.0.1:18080/ reaches port 8080 in dev',
        'banger vm forward dev 5432:5432 0:22      # several at once; 0 picks a free host port',
        'banger vm forward dev 0.0.0.0:8080:80     # listen on every host address (reachable from the network)',
        'banger vm forward --auto dev              # every guest port, on the same host port or the next free one',
        'banger vm forward --rm dev 18080 5432     # by host port',
        'banger vm forward --list dev --json',
      ),
    )
    .action(async (ref, specs, opts) => {
      const c = await ctx.client();
      if (opts.rm && specs.length === 0) throw badRequest('--rm needs the host ports to stop forwarding');
      if (opts.auto !== undefined && (opts.rm || specs.length > 0))
        throw badRequest('--auto/--no-auto goes alone: add or remove forwards in another call');
      let list: ForwardList;
      if (opts.rm) list = await c.call('forward.remove', { ref, hostPorts: specs.map(hostPortOf) });
      else if (specs.length > 0) list = await c.call('forward.add', { ref, specs });
      else if (opts.auto !== undefined) list = await c.call('forward.auto', { ref, enabled: opts.auto });
      else list = await c.call('forward.list', { ref });
      if (opts.json) {
        ctx.out.write(renderJson(list));
        return;
      }
      if (list.forwards.length > 0) ctx.out.write(renderForwards(list.forwards));
      else ctx.err.write(`${list.name} has no forwards\n`);
      if (list.auto)
        ctx.err.write(`${list.name}: new guest ports are forwarded automatically (--no-auto stops it)\n`);
    });
}
