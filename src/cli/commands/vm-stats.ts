import type { Command } from '@commander-js/extra-typings';
import { formatSize } from '../../model/sizes.js';
import type { VmStats } from '../../model/vm-stats.js';
import type { Result } from '../../rpc/index.js';
import { type CliContext, examples } from '../context.js';
import { renderJson } from '../render/table.js';

/** `vm stats`, `vm health`, `vm ping`: a running VM's cost and its agent's state, each with --json. */
export function addVmStatsCommands(vm: Command, ctx: CliContext): void {
  vm.command('stats')
    .description("show a running VM's cost: CPU, memory, disk and network, and its uptime")
    .argument('<vm>', 'VM (running)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples('banger vm stats dev', "banger vm stats dev --json | jq '.memory.vmmRssBytes'"),
    )
    .action(async (ref, opts) => {
      const { stats } = await (await ctx.client()).call('vm.stats', { ref });
      ctx.out.write(opts.json ? renderJson(stats) : renderStats(stats));
    });

  vm.command('health')
    .description("show a running VM's agent health: version, uptime, boot phases, network state")
    .argument('<vm>', 'VM (running)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('banger vm health dev', 'banger vm health dev --json'))
    .action(async (ref, opts) => {
      const r = await (await ctx.client()).call('vm.health', { ref });
      ctx.out.write(opts.json ? renderJson(r) : renderHealth(r));
    });

  vm.command('ping')
    .description("time one request's round trip through a running VM's agent")
    .argument('<vm>', 'VM (running)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('banger vm ping dev', "banger vm ping dev --json | jq '.rttMs'"))
    .action(async (ref, opts) => {
      const r = await (await ctx.client()).call('vm.ping', { ref });
      ctx.out.write(
        opts.json
          ? renderJson(r)
          : `${r.name}: agent ${r.agentVersion} answered in ${r.rttMs.toFixed(2)} ms\n`,
      );
    });
}

const bytes = (n: number | null) => (n === null ? '-' : formatSize(n));

function renderStats(s: VmStats): string {
  const guest =
    s.memory.guestTotalBytes === null
      ? 'guest -'
      : `guest ${bytes(s.memory.guestAvailableBytes)} available of ${bytes(s.memory.guestTotalBytes)}`;
  return [
    `name:     ${s.name}`,
    `uptime:   ${duration(s.uptimeSeconds)}`,
    `cpu:      ${s.cpu.percent.toFixed(1)}% over ${duration(s.cpu.windowSeconds)} (${s.cpu.seconds.toFixed(2)}s in total)`,
    `memory:   VMM RSS ${bytes(s.memory.vmmRssBytes)}, ${guest}`,
    `disk:     root ${bytes(s.disk.rootAllocatedBytes)}, work ${bytes(s.disk.workAllocatedBytes)} allocated`,
    `network:  ${s.network.tap ?? '-'}: from guest ${bytes(s.network.fromGuestBytes)}, to guest ${bytes(s.network.toGuestBytes)}`,
    `sampled:  ${s.sampledAt}`,
    '',
  ].join('\n');
}

function renderHealth(r: Result<'vm.health'>): string {
  const h = r.health;
  const phases = Object.entries(h.bootPhasesMs)
    .map(([k, v]) => `${k}=${v}ms`)
    .join(' ');
  return [
    `name:     ${r.name}`,
    `agent:    ${h.version} (pid ${h.pid}${h.pid1 ? ', PID 1' : ''})`,
    `hostname: ${h.hostname}`,
    `uptime:   ${duration(h.uptimeMs / 1000)}`,
    `network:  ${h.network ?? '-'}`,
    `boot:     ${phases || '-'}`,
    '',
  ].join('\n');
}

/** 3725 -> "1h2m5s"; under a minute with tenths. */
function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h ? `${h}h` : ''}${m}m${s % 60}s`;
}
