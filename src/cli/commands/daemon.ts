import { existsSync, readFileSync } from 'node:fs';
import { Command } from '@commander-js/extra-typings';
import { BangerError } from '../../model/errors.js';
import { DaemonUnreachableError } from '../../rpc/index.js';
import { type CliContext, examples } from '../context.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether the process named in the pid file still runs (a daemon killed mid-stop leaves its file behind). */
function daemonAlive(pidPath: string): boolean {
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
    .addHelpText('after', examples('banger daemon stop'))
    .action(async () => {
      try {
        await ctx.existingClient().call('shutdown', {}, { timeoutMs: 5000 });
      } catch (err) {
        if (err instanceof DaemonUnreachableError) {
          ctx.out.write('bangerd is not running\n');
          return;
        }
        throw err;
      }
      // Its pid file goes last, after the VMs' agents are let go, the idle taps removed and the store closed:
      // once it is gone, the daemon is done with the host. (The socket goes first, so it says less.)
      const deadline = Date.now() + 30_000;
      const stopping = () => existsSync(ctx.layout.pidPath) && daemonAlive(ctx.layout.pidPath);
      while (stopping() && Date.now() < deadline) await sleep(50);
      if (stopping())
        throw new BangerError('operation_failed', 'bangerd is still stopping after 30 s', {
          hint: `see ${ctx.layout.logPath}`,
        });
      ctx.out.write('bangerd stopped\n');
    });

  return daemon;
}
