import type { Logger } from 'pino';
import { type Config, durationMs } from '../../../config/index.js';
import type { AgentHealth } from '../../../guest/index.js';
import type { Runner } from '../../../host/index.js';
import { toBangerError } from '../../../model/errors.js';
import type { VmStats } from '../../../model/vm-stats.js';
import type { VmService } from '../vms/index.js';
import { type CpuMark, sampleVm } from './sample.js';
import { tapCounterReader } from './tap-counters.js';

export interface StatsServiceDeps {
  vms: Pick<VmService, 'live' | 'liveIds' | 'stop'>;
  config: Pick<Config, 'stats_poll_interval' | 'auto_stop_stale_after'>;
  vmsDir: string;
  runner: Runner;
  log: Logger;
}

export interface StatsService {
  /** A fresh sample of a running VM (kept as its last one). */
  stats(ref: string): Promise<VmStats>;
  /** The agent's health report. */
  health(ref: string): Promise<{ name: string; health: AgentHealth }>;
  /** One health request's round trip through the agent (the connection already made). */
  ping(ref: string): Promise<{ name: string; rttMs: number; agentVersion: string }>;
  /** The poller's last sample of each running VM, by id. */
  lastSamples(): ReadonlyMap<string, VmStats>;
  /** One poll: sample every running VM, then stop those idle past auto_stop_stale_after. */
  poll(): Promise<void>;
  /** Polls every stats_poll_interval until close; the timer never keeps the daemon alive. */
  start(): void;
  close(): Promise<void>;
}

/**
 * VM stats, health and ping (through the VM service's live view), and the poller that keeps the last
 * sample of each running VM and applies the idle rule: a running VM untouched (no exec, ssh, ports,
 * workspace, start or forwarded traffic) for auto_stop_stale_after is stopped cleanly, with the reason
 * recorded on it.
 */
export function createStatsService(deps: StatsServiceDeps): StatsService {
  const samples = new Map<string, VmStats>();
  const marks = new Map<string, CpuMark>();
  const readTap = tapCounterReader(deps.runner);
  const intervalMs = durationMs(deps.config.stats_poll_interval);
  const staleMs = durationMs(deps.config.auto_stop_stale_after);
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let closed = false;

  const sampleOne = async (ref: string): Promise<VmStats> => {
    const view = deps.vms.live(ref);
    const { stats, mark } = await sampleVm({ vmsDir: deps.vmsDir, readTap }, view, marks.get(view.vm.id));
    marks.set(view.vm.id, mark);
    samples.set(view.vm.id, stats);
    return stats;
  };

  const idleStop = async (id: string): Promise<void> => {
    if (staleMs <= 0) return;
    const { vm, busy } = deps.vms.live(id);
    const idleMs = Date.now() - Date.parse(vm.lastTouchedAt);
    if (busy || !(idleMs > staleMs)) return;
    const reason = `stopped by the idle rule: untouched for ${Math.round(idleMs / 1000)}s (auto_stop_stale_after = "${deps.config.auto_stop_stale_after}")`;
    deps.log.info({ vm: vm.id, name: vm.name, idleMs }, 'stopping an idle VM');
    await deps.vms.stop(id, { reason });
    samples.delete(id);
    marks.delete(id);
  };

  const poll = async (): Promise<void> => {
    const ids = deps.vms.liveIds();
    for (const id of [...samples.keys()]) {
      if (!ids.includes(id)) {
        samples.delete(id);
        marks.delete(id);
      }
    }
    await Promise.all(
      ids.map(async (id) => {
        try {
          await sampleOne(id);
        } catch (err) {
          deps.log.debug({ vm: id, err: toBangerError(err).message }, 'stats sample failed');
        }
        try {
          await idleStop(id);
        } catch (err) {
          deps.log.warn({ vm: id, err: toBangerError(err).message }, 'idle stop failed');
        }
      }),
    );
  };

  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => {
      current = poll().finally(() => {
        current = undefined;
        schedule();
      });
    }, intervalMs);
    timer.unref();
  };

  return {
    stats: sampleOne,
    async health(ref) {
      const view = deps.vms.live(ref);
      const health = (await (await view.agent()).health()) as AgentHealth;
      return { name: view.vm.name, health };
    },
    async ping(ref) {
      const view = deps.vms.live(ref);
      const agent = await view.agent();
      const t0 = performance.now();
      const health = (await agent.health()) as AgentHealth;
      const rttMs = Math.round((performance.now() - t0) * 1000) / 1000;
      return { name: view.vm.name, rttMs, agentVersion: health.version };
    },
    lastSamples: () => samples,
    poll,
    start() {
      if (!timer && !closed) schedule();
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await current;
    },
  };
}
