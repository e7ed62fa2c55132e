import { existsSync, readFileSync } from 'node:fs';
import { Command } from '@commander-js/extra-typings';
import { processExited, processStartTime } from '../../host/proc.js';
import { BangerError, badRequest } from '../../model/errors.js';
import { DaemonUnreachableError } from '../../rpc/client.js';
import { type CliContext, examples } from '../context.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long `daemon stop` waits for the process to exit by default. */
const STOP_WAIT_S = 30;

/** Whether the process in the pid file still runs (used only where /proc does not show the daemon). */
function pidFileAlive(pidPath: string): boolean {
  try {
    process.kill(Number(readFileSync(pidPath, 'utf8').trim()), 0);
    return true;
  } catch {
    return false;
  }
}

/** `banger daemon status|stop`: never start a daemon just to look at it. */
export function daemonCommands(ctx: CliContext) {
  const daemon = new Command('daemon').description('inspect or stop bangerd (the CLI starts it on demand)');

  daemon
    .command('status')
    .description('show whether bangerd is running, its version, pid and uptime')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('banger daemon status', 'banger daemon status --json'))
    .action(async (opts) => {
      try {
        const ping = await ctx.existingClient().call('ping', {}, { timeoutMs: 2000 });
        const { operations } = await ctx
          .existingClient()
          .call('daemon.operations.list', {}, { timeoutMs: 2000 })
          .catch(() => ({ operations: [] }));
        if (opts.json) {
          ctx.out.write(
            `${JSON.stringify({ running: true, socket: ctx.layout.socketPath, ...ping, operations })}\n`,
          );
          return;
        }
        ctx.out.write(
          `bangerd ${ping.version} running (pid ${ping.pid}, up ${Math.round(ping.uptimeMs / 1000)}s)\n` +
            `socket: ${ctx.layout.socketPath}\nlog:    ${ctx.layout.logPath}\n`,
        );
        if (ping.version !== ctx.version)
          ctx.out.write(`note: this banger is ${ctx.version}; the next command restarts it\n`);
      } catch (err) {
        if (!(err instanceof DaemonUnreachableError)) throw err;
        if (opts.json)
          ctx.out.write(`${JSON.stringify({ running: false, socket: ctx.layout.socketPath })}\n`);
        else ctx.out.write('bangerd is not running (any banger command starts it)\n');
        process.exitCode = 3;
      }
    });

  daemon
    .command('stop')
    .description('stop bangerd gracefully; running VMs keep running and are adopted by the next daemon')
    .option('--wait <seconds>', 'how long to wait for the process to exit', String(STOP_WAIT_S))
    .addHelpText('after', examples('banger daemon stop', 'banger daemon stop --wait 120'))
    .action(async (opts) => {
      const waitS = Number(opts.wait);
      if (!Number.isFinite(waitS) || waitS <= 0)
        throw badRequest(`--wait ${opts.wait} is not a positive number of seconds`);
      let pid: number;
      try {
        pid = (await ctx.existingClient().call('ping', {}, { timeoutMs: 5000 })).pid;
      } catch (err) {
        if (err instanceof DaemonUnreachableError) {
          ctx.out.write('bangerd is not running\n');
          return;
        }
        throw err;
      }
      // pid + start time name this daemon for good: a pid file can go before the process does (a thread
      // stuck in the kernel keeps it alive after its last step), and a pid alone can be reused.
      const startTime = processStartTime(pid);
      await ctx.existingClient().call('shutdown', {}, { timeoutMs: 5000 });
      const running =
        startTime === undefined
          ? () => existsSync(ctx.layout.pidPath) && pidFileAlive(ctx.layout.pidPath)
          : () => !processExited(pid, startTime);
      const deadline = Date.now() + waitS * 1000;
      while (running() && Date.now() < deadline) await sleep(50);
      if (running())
        throw new BangerError(
          'operation_failed',
          `bangerd (pid ${pid}) is still running ${waitS} s after it was asked to stop`,
          {
            hint: `see ${ctx.layout.logPath}; wait longer (banger daemon stop --wait 120) or end it: kill ${pid}, then kill -9 ${pid} (VMs keep running)`,
          },
        );
      ctx.out.write('bangerd stopped\n');
    });

  return daemon;
}
