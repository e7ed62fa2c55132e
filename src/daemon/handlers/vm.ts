import { Writable } from 'node:stream';
import type { z } from 'zod';
import { badRequest } from '../../model/errors.js';
import { parseSize } from '../../model/sizes.js';
import type { VM } from '../../model/vm.js';
import type { VmStats } from '../../model/vm-stats.js';
import type { CallContext } from '../../rpc/index.js';
import type { FileMethod } from '../../rpc/methods/files.js';
import type { vmCreateParamsSchema } from '../../rpc/methods/vm.js';
import type { VmStatsMethod } from '../../rpc/methods/vm-stats.js';
import { type ForwardService, parseForwardSpec } from '../services/forwards/index.js';
import { type CreateVmRequest, envRecord, type VmService } from '../services/vms/index.js';
import type { HandlerGroup } from './types.js';

type CreateParams = z.output<typeof vmCreateParamsSchema>;

function toCreateRequest(p: CreateParams): CreateVmRequest {
  return {
    name: p.name,
    image: p.image,
    vcpu: p.vcpu,
    memoryMib: p.memoryMib,
    diskSizeBytes: p.diskSize === undefined ? undefined : parseSize(p.diskSize),
    systemOverlaySizeBytes: p.systemOverlaySize === undefined ? undefined : parseSize(p.systemOverlaySize),
    nat: p.nat,
    noStart: p.noStart,
    createdBy: p.createdBy,
  };
}

/** The command's stdio as the call's output notifications and stdin. */
function callIo(ctx: CallContext, withStdin: boolean) {
  const sink = (stream: 'stdout' | 'stderr') =>
    new Writable({
      write(chunk: Buffer, _enc, done) {
        ctx.output(stream, chunk);
        done();
      },
    });
  return { stdin: withStdin ? ctx.stdin : undefined, stdout: sink('stdout'), stderr: sink('stderr') };
}

/**
 * Runs a create or run with its `--forward`s: they listen before the VM is made (a taken port fails the
 * call before anything is created) and are attached once it runs.
 */
async function withForwards<T>(
  forwards: ForwardService | undefined,
  p: CreateParams,
  fn: (afterStart?: (vm: VM) => Promise<void>) => Promise<T>,
): Promise<T> {
  if (p.forwards.length === 0) return fn();
  if (!forwards) throw badRequest('this daemon has no port forwarding');
  if (p.noStart)
    throw badRequest('--forward needs the VM started: leave out --no-start, or use banger vm forward later');
  const reservation = await forwards.reserve(p.forwards.map(parseForwardSpec));
  try {
    return await fn((vm) => reservation.attach(vm.id));
  } finally {
    reservation.release(); // closes only what was never attached
  }
}

/**
 * `vm.*` handlers: thin, each calls one service function (the stats methods are handlers/vm-stats.ts's,
 * the `vm.files.*` ones handlers/files.ts's).
 * `samples` is the stats poller's last sample per running VM, for `vm.list`.
 */
export function vmHandlers(deps: {
  vms: VmService;
  samples?: () => ReadonlyMap<string, VmStats>;
  forwards?: ForwardService;
}): Omit<HandlerGroup<'vm'>, VmStatsMethod | FileMethod> {
  const { vms, forwards } = deps;
  const op = (ctx: CallContext) => ({ progress: ctx.progress, signal: ctx.signal });
  return {
    'vm.list': async () => ({ vms: vms.list(), samples: Object.fromEntries(deps.samples?.() ?? []) }),
    'vm.show': async ({ ref }) => {
      const vm = vms.get(ref);
      return { vm, forwards: forwards?.list(vm.id).forwards };
    },
    'vm.create': async (p, ctx) => ({
      vm: await withForwards(forwards, p, (afterStart) =>
        vms.create(toCreateRequest(p), { ...op(ctx), afterStart }),
      ),
    }),
    'vm.start': async ({ ref }, ctx) => ({ vm: await vms.start(ref, op(ctx)) }),
    'vm.stop': async ({ ref, force, signal }) => ({
      vm: await vms.stop(ref, {
        force: force || signal !== undefined,
        signal: signal && (`SIG${signal}` as NodeJS.Signals),
      }),
    }),
    'vm.restart': async ({ ref }, ctx) => ({ vm: await vms.restart(ref, op(ctx)) }),
    'vm.pause': async ({ ref }) => ({ vm: await vms.pause(ref) }),
    'vm.resume': async ({ ref }) => ({ vm: await vms.resume(ref) }),
    'vm.delete': async ({ ref, wait }) => {
      const vm = vms.get(ref);
      await vms.delete(vm.id, { wait });
      return { id: vm.id, name: vm.name };
    },
    'vm.ssh': async ({ ref }, ctx) => vms.sshCommand(ref, op(ctx)),
    'vm.logs': async ({ ref }) => ({ path: vms.logPath(ref) }),
    'vm.exec': async ({ ref, argv, env, cwd, stdin, tty }, ctx) =>
      vms.exec(ref, { argv, env: envRecord(env), cwd, tty }, callIo(ctx, stdin || tty !== undefined), {
        ...op(ctx),
        control: ctx.stdin,
      }),
    'vm.prune': async ({ ids }) => ({
      deleted: (await vms.prune(ids)).map((v) => ({ id: v.id, name: v.name, state: v.state })),
    }),
    'vm.set': async ({ ref, vcpu, memoryMib, diskSize }) => ({
      vm: await vms.set(ref, {
        vcpu,
        memoryMib,
        diskSizeBytes: diskSize === undefined ? undefined : parseSize(diskSize),
      }),
    }),
    'vm.ports': async ({ ref }, ctx) => {
      const { vm, ports } = await vms.ports(ref, op(ctx));
      return { name: vm.name, guestIp: vm.runtime.guestIp, ports };
    },
    'vm.sshConfig': async () => vms.sshConfig(),
    'vm.run': async (
      { create, argv, env, cwd, stdin, rm, workspace, branch, from, noBootstrap, detach, fromSnapshot, cold },
      ctx,
    ) =>
      withForwards(forwards, create, (afterStart) =>
        vms.run(
          {
            create: toCreateRequest(create),
            exec: argv.length > 0 ? { argv, env: envRecord(env), cwd } : undefined,
            workspace: workspace === undefined ? undefined : { path: workspace, branch, from },
            bootstrap: !noBootstrap,
            detach,
            rm,
            fromSnapshot,
            cold,
          },
          callIo(ctx, stdin),
          { ...op(ctx), control: ctx.stdin, afterStart },
        ),
      ),
  };
}
