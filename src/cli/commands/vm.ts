import { createReadStream, existsSync, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Command } from '@commander-js/extra-typings';
import { BangerError, badRequest } from '../../model/errors.js';
import { formatSize } from '../../model/sizes.js';
import type { VM } from '../../model/vm.js';
import type { Params, Result } from '../../rpc/index.js';
import { callWithProgress } from '../call.js';
import { type CliContext, examples } from '../context.js';
import { forwardSignals } from '../forward-signals.js';
import { printError } from '../render/errors.js';
import { createProgressRenderer } from '../render/progress.js';
import { ago, renderJson, renderTable } from '../render/table.js';
import { forwardCommand, renderForwards } from './vm-forward.js';
import { addVmStatsCommands } from './vm-stats.js';
import { reportWorkspace, workspaceCommands } from './vm-workspace.js';

type ExitResult = Result<'vm.exec'>;

function renderVm(v: VM): string {
  const lines = [
    `id:       ${v.id}`,
    `name:     ${v.name}`,
    `state:    ${v.state}`,
    `image:    ${v.imageId}`,
    `spec:     ${specLine(v)}`,
    `ip:       ${v.runtime.guestIp ?? '-'}`,
    `dir:      ${v.runtime.vmDir ?? '-'}`,
    `created:  ${v.createdAt} (${ago(v.createdAt)})`,
    `used:     ${v.lastTouchedAt} (${ago(v.lastTouchedAt)})`,
  ];
  if (v.runtime.stopReason) lines.push(`stopped:  ${v.runtime.stopReason}`);
  if (v.runtime.lastError) lines.push(`error:    ${v.runtime.lastError}`);
  return `${lines.join('\n')}\n`;
}

const specLine = (v: VM) =>
  `vcpu=${v.spec.vcpu} memory=${v.spec.memoryMib}MiB disk=${formatSize(v.spec.diskSizeBytes)} ` +
  `overlay=${formatSize(v.spec.systemOverlaySizeBytes)} nat=${v.spec.nat ? 'on' : 'off'}`;

/** The exit status a shell would show: the code, or 128 + signal number. */
function exitStatus(r: ExitResult): number {
  if (r.exitCode !== null) return r.exitCode;
  const signals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
  return 128 + (signals[r.signal ?? ''] ?? 1);
}

interface CreateFlags {
  name?: string;
  image?: string;
  vcpu?: string;
  memory?: string;
  diskSize?: string;
  systemOverlaySize?: string;
  nat?: boolean;
  forward?: string[];
}

function createParams(o: CreateFlags, noStart = false): Params<'vm.create'> {
  const int = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0)
      throw badRequest(`${flag} must be a positive integer, not ${JSON.stringify(v)}`);
    return n;
  };
  return {
    name: o.name,
    image: o.image,
    vcpu: int('--vcpu', o.vcpu),
    memoryMib: int('--memory', o.memory),
    diskSize: o.diskSize,
    systemOverlaySize: o.systemOverlaySize,
    nat: Boolean(o.nat),
    noStart,
    forwards: o.forward ?? [],
  };
}

// biome-ignore lint/complexity/noBannedTypes: commander's typing of a command with no options yet
function withCreateOptions(cmd: Command<[], {}, {}>) {
  return cmd
    .option('--name <name>', 'VM name, a DNS label (default: generated, like calm-otter)')
    .option('--image <image>', 'image name or OCI reference (default: config default_image_name)')
    .option('--vcpu <n>', 'virtual CPUs')
    .option('--memory <MiB>', 'guest memory in MiB')
    .option('--disk-size <size>', 'work disk size, e.g. 8G')
    .option('--system-overlay-size <size>', 'copy-on-write overlay size, e.g. 8G')
    .option('--nat', 'give the guest outbound network access through the host')
    .option(
      '--forward <spec...>',
      'forward [HOST_ADDR:]HOST_PORT:GUEST_PORT from the start, while the VM runs (see vm forward --help)',
    );
}

/**
 * Streams a command's output to our stdout/stderr; forwards piped stdin (never a terminal's, and only when
 * `readStdin`) and our signals (see forwardSignals).
 */
function streamOptions(ctx: CliContext, readStdin = true) {
  const piped = readStdin && !process.stdin.isTTY;
  const signals = forwardSignals();
  return {
    forward: piped,
    /** The call options that carry our stdin and forwarded signals. */
    call: { stdin: piped ? process.stdin : undefined, controls: signals.controls, signal: signals.abort },
    /** Stop reading our stdin once the call is over, or it keeps the process alive. */
    done: () => {
      signals.done();
      if (piped) process.stdin.destroy();
    },
    onOutput: (stream: 'stdout' | 'stderr', data: Buffer) =>
      (stream === 'stdout' ? ctx.out : ctx.err).write(data),
  };
}

/**
 * Splits `[IMAGE] [PATH] -- cmd…`: operands after a literal `--` are the command (even when nothing comes
 * before it); before it, an operand naming an existing directory is the workspace, the other the image.
 */
function splitRun(
  image: string | undefined,
  rest: string[],
): { image?: string; workspace?: string; argv: string[] } {
  const operands = image === undefined ? rest : [image, ...rest];
  const dd = process.argv.indexOf('--');
  // Every word after `--` is an operand of the command; the operands before it are IMAGE and/or PATH.
  const leading = dd === -1 ? operands.length : operands.length - (process.argv.length - dd - 1);
  if (leading > 2) throw badRequest('vm run takes at most IMAGE and PATH before --');
  const lead = operands.slice(0, Math.max(0, leading));
  const argv = operands.slice(lead.length);
  const out: { image?: string; workspace?: string; argv: string[] } = { argv };
  for (const word of lead) {
    // A path-looking word is the workspace whatever it names (the daemon says what is wrong with it:
    // missing, a file, a device); an image name or reference never starts with one of these.
    const isPath = /^[./~]/.test(word);
    if (isPath && out.workspace === undefined) out.workspace = resolve(word);
    else out.image = word;
  }
  return out;
}

/** `banger vm …`: create, run and manage microVMs. */
export function vmCommands(ctx: CliContext) {
  const vm = new Command('vm').description('create, run and manage microVMs');
  const client = () => ctx.client();

  vm.command('list')
    .alias('ls')
    .description('list VMs in every state')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples(
        'banger vm list',
        "banger vm list --json | jq -r '.[].name'",
        "banger vm list --json | jq -r '.[] | [.name, .lastTouchedAt, .stats.cpu.percent] | @tsv'",
      ),
    )
    .action(async (opts) => {
      const { vms, samples } = await (await client()).call('vm.list', {});
      if (opts.json) {
        // Each VM with the stats poller's last sample (null when it is not running or not sampled yet).
        ctx.out.write(renderJson(vms.map((v) => ({ ...v, stats: samples[v.id] ?? null }))));
        return;
      }
      const rows = vms.map((v) => [
        v.id.slice(0, 8),
        v.name,
        v.state,
        v.runtime.guestIp ?? '-',
        ago(v.createdAt),
        ago(v.lastTouchedAt),
      ]);
      ctx.out.write(renderTable(['ID', 'NAME', 'STATE', 'IP', 'CREATED', 'LAST USED'], rows));
    });

  vm.command('show')
    .description('show one VM')
    .argument('<vm>', 'id, name or unique prefix')
    .option('--json', 'print JSON')
    .action(async (ref, opts) => {
      const { vm: v, forwards } = await (await client()).call('vm.show', { ref });
      if (opts.json) {
        ctx.out.write(renderJson({ ...v, forwards: forwards ?? [] }));
        return;
      }
      ctx.out.write(renderVm(v));
      if (forwards && forwards.length > 0) ctx.out.write(`forwards:\n${renderForwards(forwards)}`);
    });

  withCreateOptions(vm.command('create'))
    .description('create a VM and start it')
    .option('--no-start', 'create only')
    .addHelpText(
      'after',
      examples('banger vm create --name dev --nat', 'banger vm create --image alpine --no-start'),
    )
    .action(async (opts) => {
      const started = Date.now();
      const { vm: v } = await callWithProgress(ctx, 'vm.create', createParams(opts, opts.start === false));
      ctx.err.write(`spec: ${specLine(v)}\n`);
      ctx.out.write(`${v.name}\n`);
      if (v.state === 'running') ctx.err.write(`ready in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    });

  const each = (verb: string, fn: (ref: string) => Promise<string>) => async (refs: string[]) => {
    // Concurrently, results in the order given; one failure does not stop the others.
    const results = await Promise.allSettled(refs.map(fn));
    let failed = 0;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') ctx.out.write(`${r.value}\n`);
      else {
        failed++;
        ctx.err.write(`banger: ${verb} ${refs[i]}: ${(r.reason as Error).message}\n`);
      }
    });
    if (failed) process.exitCode = 1;
  };

  vm.command('start')
    .description('boot stopped VMs')
    .argument('<vm...>', 'VMs')
    .action(async (refs) =>
      each('start', async (ref) => (await callWithProgress(ctx, 'vm.start', { ref })).vm.name)(refs),
    );
  vm.command('stop')
    .description('power VMs off (killed after a timeout)')
    .argument('<vm...>', 'VMs')
    .option('-f, --force', 'kill at once')
    .action(async (refs, opts) =>
      each(
        'stop',
        async (ref) => (await (await client()).call('vm.stop', { ref, force: Boolean(opts.force) })).vm.name,
      )(refs),
    );
  vm.command('kill')
    .description('kill VMs at once (no clean poweroff)')
    .argument('<vm...>', 'VMs')
    .option('-s, --signal <signal>', 'signal for the VMM: KILL (default), TERM, INT, HUP, QUIT')
    .action(async (refs, opts) =>
      each(
        'kill',
        async (ref) =>
          (await (await client()).call('vm.stop', { ref, force: true, signal: opts.signal })).vm.name,
      )(refs),
    );
  vm.command('pause')
    .description("freeze running VMs' vCPUs (memory, disks and address kept; the idle rule may stop them)")
    .argument('<vm...>', 'VMs')
    .addHelpText('after', examples('banger vm pause dev', 'banger vm pause dev && banger vm resume dev'))
    .action(async (refs) =>
      each('pause', async (ref) => (await (await client()).call('vm.pause', { ref })).vm.name)(refs),
    );
  vm.command('resume')
    .description('let paused VMs run again')
    .argument('<vm...>', 'VMs')
    .addHelpText('after', examples('banger vm resume dev'))
    .action(async (refs) =>
      each('resume', async (ref) => (await (await client()).call('vm.resume', { ref })).vm.name)(refs),
    );
  vm.command('snapshot')
    .description(
      "save a running or paused VM's memory, device state and disks as NAME (paused meanwhile, resumed after)",
    )
    .argument('<vm>', 'VM (running or paused)')
    .argument('<name>', 'snapshot name (lowercase letters, digits, -)')
    .addHelpText('after', examples('banger vm snapshot dev base', 'banger snapshot show base'))
    .action(async (ref, name) => {
      const { snapshot } = await (await client()).call('snapshot.create', { vm: ref, name });
      ctx.out.write(`${snapshot.name}\n`);
    });
  vm.command('fork')
    .description(
      'start a new VM from a snapshot (or from a VM, snapshotted first): its memory restored, with its own disks, IP, MAC and hostname (QEMU only)',
    )
    .argument('<ref>', 'snapshot name, or a running or paused VM (snapshotted first)')
    .option('--name <name>', 'name of the new VM (default: generated)')
    .addHelpText('after', examples('banger vm fork base --name try1', 'banger vm fork dev'))
    .action(async (ref, o: { name?: string }) => {
      const { vm: forked } = await (await client()).call('snapshot.fork', {
        ref,
        ...(o.name ? { name: o.name } : {}),
      });
      ctx.out.write(`${forked.name}\n`);
    });
  vm.command('restart')
    .description('stop then start VMs')
    .argument('<vm...>', 'VMs')
    .action(async (refs) =>
      each('restart', async (ref) => (await callWithProgress(ctx, 'vm.restart', { ref })).vm.name)(refs),
    );
  vm.command('delete')
    .alias('rm')
    .description(
      'delete VMs and everything they own (disks, IP, files); with --no-wait it answers once each is ' +
        'killed and marked `deleting`, and the daemon tears the rest down after',
    )
    .argument('<vm...>', 'VMs')
    .option(
      '--no-wait',
      'answer once the VM is killed and marked `deleting`; the teardown goes on in the daemon (the name is free when it is done)',
    )
    .addHelpText(
      'after',
      examples('banger vm delete dev && banger vm create --name dev', 'banger vm rm --no-wait a b c'),
    )
    .action(async (refs, opts) =>
      each(
        'delete',
        async (ref) => (await (await client()).call('vm.delete', { ref, wait: opts.wait })).name,
      )(refs),
    );

  vm.command('prune')
    .description('delete every VM that is not running (created, stopped, error)')
    .option('-f, --force', 'do not ask for confirmation')
    .addHelpText('after', examples('banger vm prune', 'banger vm prune -f'))
    .action(async (opts) => {
      const c = await client();
      const doomed = (await c.call('vm.list', {})).vms.filter(
        (v) => v.state !== 'running' && v.state !== 'paused',
      );
      if (doomed.length === 0) {
        ctx.err.write('nothing to prune: every VM is running\n');
        return;
      }
      if (!opts.force) {
        if (!process.stdin.isTTY) {
          throw badRequest(`vm prune would delete ${doomed.length} VM(s) and needs a confirmation`, {
            hint: 'run it on a terminal, or pass -f to delete without asking',
          });
        }
        ctx.err.write(
          renderTable(
            ['ID', 'NAME', 'STATE', 'CREATED'],
            doomed.map((v) => [v.id.slice(0, 8), v.name, v.state, ago(v.createdAt)]),
          ),
        );
        if (!(await confirm(ctx, `Delete these ${doomed.length} VM(s) and their disks? [y/N] `))) {
          ctx.err.write('nothing deleted\n');
          return;
        }
      }
      // Only the VMs shown: one started meanwhile is not in the list, and the daemon skips running ones.
      const { deleted } = await c.call('vm.prune', { ids: opts.force ? undefined : doomed.map((v) => v.id) });
      for (const v of deleted) ctx.out.write(`deleted ${v.name} (${v.state})\n`);
      if (deleted.length === 0) ctx.err.write('nothing to prune\n');
    });

  vm.command('set')
    .description("change a stopped VM's CPUs, memory or work disk size (applies at the next start)")
    .argument('<vm>', 'VM (stopped)')
    .option('--vcpu <n>', 'virtual CPUs')
    .option('--memory <MiB>', 'guest memory in MiB')
    .option('--disk-size <size>', 'work disk size, e.g. 16G (grow only; the filesystem is resized offline)')
    .addHelpText(
      'after',
      examples(
        'banger vm stop dev && banger vm set dev --vcpu 4 --memory 4096',
        'banger vm set dev --disk-size 32G',
      ),
    )
    .action(async (ref, opts) => {
      const p = createParams(opts);
      const { vm: v } = await (await client()).call('vm.set', {
        ref,
        vcpu: p.vcpu,
        memoryMib: p.memoryMib,
        diskSize: opts.diskSize,
      });
      ctx.out.write(`${v.name}\n`);
      ctx.err.write(`spec: ${specLine(v)}\n`);
    });

  vm.command('ports')
    .description(
      "list running VMs' listening TCP and UDP ports (from their agents) as NAME.vm:PORT, with an http:// link for those that answer HTTP",
    )
    .argument('<vm...>', 'VMs (asked at once)')
    .option('--json', 'print JSON (an object for one VM, an array for several)')
    .addHelpText(
      'after',
      examples(
        'banger vm ports dev',
        "banger vm ports dev --json | jq -r '.ports[].endpoint'",
        'banger vm ports web db cache',
      ),
    )
    .action(async (refs, opts) => {
      const c = await client();
      const settled = await Promise.allSettled(refs.map((ref) => c.call('vm.ports', { ref })));
      const answers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason] : []));
      const several = refs.length > 1;
      if (!several && failures.length > 0) throw failures[0];
      if (opts.json) ctx.out.write(renderJson(several ? answers : answers[0]));
      else if (answers.length > 0) {
        const rows = answers.flatMap((r) =>
          r.ports.map((p) => [
            ...(several ? [r.name] : []),
            p.endpoint,
            p.protocol,
            p.process ?? '-',
            p.url ?? '-',
          ]),
        );
        ctx.out.write(renderTable([...(several ? ['VM'] : []), 'ENDPOINT', 'PROTO', 'PROCESS', 'URL'], rows));
      }
      // The VMs that could not answer, each said as an error would be; the exit status says some failed.
      for (const err of failures) printError(err, ctx.err);
      if (failures.length > 0) process.exitCode = 1;
    });

  vm.command('logs')
    .description("print a VM's console log")
    .argument('<vm>', 'VM')
    .option('-f, --follow', 'keep printing as the log grows')
    .action(async (ref, opts) => {
      const { path } = await (await client()).call('vm.logs', { ref });
      // The console is rotated at a cap (docs/vmm.md): the older half is in .1, printed first.
      if (!opts.follow && existsSync(`${path}.1`)) await copyTo(ctx.out, `${path}.1`, 0);
      if (!existsSync(path)) return;
      let offset = 0;
      let inode = -1;
      const pump = async () => {
        const st = await stat(path).catch(() => undefined);
        if (!st) return; // between a rotation's rename and the new file
        if (st.ino !== inode) {
          inode = st.ino;
          offset = 0;
        }
        if (st.size <= offset) return;
        const end = st.size;
        await copyTo(ctx.out, path, offset, end);
        offset = end;
      };
      await pump();
      if (!opts.follow) return;
      // The directory, not the file: a rotation replaces the file, and a watch on it would go quiet.
      const watcher = watch(dirname(path), (_event, name) => {
        if (name === basename(path)) void pump();
      });
      await new Promise<void>((resolve) => process.once('SIGINT', resolve));
      watcher.close();
    });

  vm.command('ssh')
    .description('open ssh to a running VM (banger key, host key pinned on first use)')
    .argument('<vm>', 'VM')
    .argument('[cmd...]', 'command to run instead of a shell (after --)')
    .action(async (ref, cmd) => {
      const { argv, netns } = await (await client()).call('vm.ssh', { ref });
      process.exitCode = await runInteractive(ctx, [...argv, ...cmd], netns);
      if (cmd.length === 0) stillRunning(ctx, ref);
    });

  vm.addCommand(workspaceCommands(ctx));

  vm.command('exec')
    .description('run a command in a VM through its agent; exits with its code')
    .argument('<vm>', 'VM')
    .argument('<cmd...>', 'command (after --)')
    .option('-e, --env <KEY=VALUE...>', 'environment for the command')
    .option('-w, --workdir <dir>', 'working directory in the guest')
    .addHelpText('after', examples('banger vm exec dev -- uname -a', 'echo hi | banger vm exec dev -- cat'))
    .action(async (ref, argv, opts) => {
      const io = streamOptions(ctx);
      try {
        const r = await (await client()).call(
          'vm.exec',
          { ref, argv, env: opts.env ?? [], cwd: opts.workdir, stdin: io.forward },
          { ...io.call, onOutput: io.onOutput },
        );
        process.exitCode = exitStatus(r);
      } finally {
        io.done();
      }
    });

  withCreateOptions(vm.command('run'))
    .description('create a VM, start it and run a command (or open a shell)')
    .argument('[image]', 'image (same as --image); a directory here or next is the workspace')
    .argument('[cmd...]', 'command to run through the agent (after --)')
    .option('--rm', 'delete the VM when the command ends')
    .option('-d, --detach', 'start and print the name; do not attach')
    .option('--branch <name>', 'with PATH: create and check out this new branch in the guest')
    .option('--from <ref>', 'with --branch: start the new branch from this commit')
    .option('--no-bootstrap', 'skip `mise install` for a repository with .mise.toml or .tool-versions')
    .option('--from-snapshot <name>', 'start from a snapshot (its image, size and memory) instead of booting')
    .option('--cold', "boot even when the image's warm template exists")
    .addHelpText(
      'after',
      `${examples(
        'banger vm run -- uname -a',
        'banger vm run --rm --from-snapshot base -- cat /tmp/state',
        'banger vm run --rm --cold alpine -- true',
        "banger vm run --rm alpine -- sh -c 'echo hi; exit 3'",
        'banger vm run -d --name dev --nat',
        'banger vm run ./repo                      # a shell in /root/repo',
        'banger vm run --rm ./repo -- make test    # the command runs in /root/repo',
        'banger vm run -d --name ws --branch fix-1 --from main ./repo',
      )}
PATH: a git repository (a directory with .git) is copied as git sees it: tracked files and untracked files
that are not ignored, with .git, on its current branch. Any other directory is copied whole. Symlinks stay
links; sockets, FIFOs and devices are skipped. Get the changes back with banger vm workspace export.
`,
    )
    .action(async (imageArg, rest, opts) => {
      const { image, workspace, argv } = splitRun(imageArg, rest);
      if (opts.detach && (opts.rm || argv.length > 0))
        throw badRequest('-d cannot be combined with --rm or a command');
      if ((opts.branch !== undefined || opts.from !== undefined) && workspace === undefined)
        throw badRequest('--branch and --from need a PATH (the repository to copy in)');
      if (opts.from !== undefined && opts.branch === undefined)
        throw badRequest('--from needs --branch: it says where the new branch starts');
      if (opts.fromSnapshot !== undefined && opts.cold)
        throw badRequest(
          '--cold and --from-snapshot cannot be combined: a snapshot is restored, never booted',
        );
      const params = {
        create: createParams({ ...opts, image: opts.image ?? image }),
        argv,
        env: [],
        rm: Boolean(opts.rm),
        workspace,
        branch: opts.branch,
        from: opts.from,
        noBootstrap: opts.bootstrap === false,
        detach: Boolean(opts.detach),
        fromSnapshot: opts.fromSnapshot,
        cold: Boolean(opts.cold),
      };
      // The daemon runs the whole of it (create, start, workspace, command, --rm); only an interactive
      // session is ours, on the user's terminal, after which --rm is a delete.
      const { vm: v, exit, workspace: landed } = await runCommand(ctx, params);
      if (exit) {
        process.exitCode = exitStatus(exit);
        return;
      }
      ctx.err.write(`spec: ${specLine(v)}\n`);
      if (landed) reportWorkspace(ctx, landed);
      if (opts.detach) {
        ctx.out.write(`${v.name}\n`);
        return;
      }
      try {
        process.exitCode = await sshOrShell(ctx, v.id, landed?.guestDir);
      } finally {
        if (opts.rm) await (await client()).call('vm.delete', { ref: v.id });
        else stillRunning(ctx, v.name);
      }
    });

  addVmStatsCommands(vm, ctx);
  vm.addCommand(forwardCommand(ctx));

  return vm;
}

/**
 * One `vm.run` call: progress on stderr, the command's output on stdout/stderr, piped stdin and our signals
 * forwarded (before the command runs a signal cancels the run). Without a command nothing is read from our
 * stdin: the interactive session that follows needs it.
 */
async function runCommand(ctx: CliContext, params: Params<'vm.run'>): Promise<Result<'vm.run'>> {
  const withCommand = (params.argv?.length ?? 0) > 0;
  const io = streamOptions(ctx, withCommand);
  const progress = progressBeforeOutput(ctx);
  try {
    return await (await ctx.client()).call(
      'vm.run',
      { ...params, stdin: io.forward },
      { ...io.call, onOutput: progress.beforeOutput(io.onOutput), onProgress: progress.render },
    );
  } finally {
    progress.done();
    io.done();
  }
}

/**
 * `vm run`'s progress (image pull or build, kernel, boot, and the notice when guests run under TCG) through
 * the common renderer on stderr, so stdout carries only the command's output; the progress line is closed
 * before the command's first output.
 */
function progressBeforeOutput(ctx: CliContext) {
  const renderer = createProgressRenderer(ctx.err);
  return {
    render: renderer.render,
    done: renderer.done,
    beforeOutput:
      (write: (stream: 'stdout' | 'stderr', data: Buffer) => unknown) =>
      (stream: 'stdout' | 'stderr', data: Buffer) => {
        renderer.done();
        write(stream, data);
      },
  };
}

/** Asks a yes/no question on the terminal; only "y" or "yes" is yes. */
async function confirm(ctx: CliContext, question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: ctx.err });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/** After an interactive session that leaves the VM up: say so, and how to stop it (as the original). */
function stillRunning(ctx: CliContext, name: string): void {
  ctx.err.write(
    `vm ${name} is still running (stop it with: banger vm stop ${name}; remove it with: banger vm delete ${name})\n`,
  );
}

/** ssh's remote command for a login shell that starts in dir. */
const shellIn = (dir: string) => `cd '${dir.replaceAll("'", "'\\''")}' && exec "\${SHELL:-/bin/sh}" -l`;

/**
 * ssh into the VM when its image has sshd (the daemon pins the host key first), else an interactive shell
 * through the agent on a pseudo-terminal; in `cwd` when given (the workspace).
 */
async function sshOrShell(ctx: CliContext, ref: string, cwd?: string): Promise<number> {
  const client = await ctx.client();
  try {
    const { argv, netns } = await client.call('vm.ssh', { ref });
    // -t before the destination (after it, ssh takes every word as the remote command).
    const withShell = cwd ? [...argv.slice(0, -1), '-t', ...argv.slice(-1), shellIn(cwd)] : argv;
    return await runInteractive(ctx, withShell, netns);
  } catch (err) {
    if (!(err instanceof BangerError) || err.code !== 'not_found') throw err;
  }
  return agentShell(ctx, ref, cwd);
}

/**
 * A login shell through the agent's PTY exec: our terminal in raw mode (keys go to the guest as typed),
 * its size sent at the start and on every resize, and restored however the call ends.
 */
async function agentShell(ctx: CliContext, ref: string, cwd?: string): Promise<number> {
  const stdin = process.stdin;
  const out = process.stdout;
  const tty = stdin.isTTY && out.isTTY;
  const size = () => ({ rows: out.rows || 24, cols: out.columns || 80 });
  // Keys reach the guest as typed (raw mode), so only signals sent to banger itself are forwarded.
  const signals = forwardSignals();
  const onResize = () => {
    const s = size();
    signals.controls.emit('resize', s.rows, s.cols);
  };
  if (tty) {
    stdin.setRawMode(true);
    out.on('resize', onResize);
  }
  try {
    const r = await (await ctx.client()).call(
      'vm.exec',
      {
        ref,
        argv: ['/bin/sh', '-c', 'if command -v bash >/dev/null; then exec bash -l; else exec sh -l; fi'],
        env: [`TERM=${process.env.TERM ?? 'xterm-256color'}`],
        cwd,
        tty: size(),
      },
      {
        onOutput: (stream, data) => (stream === 'stdout' ? ctx.out : ctx.err).write(data),
        stdin,
        controls: signals.controls,
        signal: signals.abort,
      },
    );
    return exitStatus(r);
  } finally {
    signals.done();
    if (tty) {
      out.off('resize', onResize);
      stdin.setRawMode(false);
    }
    stdin.destroy();
  }
}

/** Runs ssh on our terminal and returns its exit code. */
function runInteractive(ctx: CliContext, argv: string[], netns?: string): Promise<number> {
  const child = ctx.runner.spawn(argv, { inherit: true, netns });
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
    child.on('error', () => resolve(255));
  });
}

/** Writes bytes [start, end) of a file (to its end without `end`) to out. */
function copyTo(out: NodeJS.WritableStream, path: string, start: number, end?: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const s = createReadStream(path, { start, ...(end === undefined ? {} : { end: end - 1 }) });
    s.on('data', (d) => out.write(d));
    s.on('end', resolve);
    s.on('error', reject);
  });
}
