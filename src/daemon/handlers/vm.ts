import { Writable } from 'node:stream';
import type { z } from 'zod';
import { parseSize } from '../../model/sizes.js';
import type { CallContext } from '../../rpc/index.js';
import type { vmCreateParamsSchema } from '../../rpc/methods/vm.js';
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

/** `vm.*` handlers: thin, each calls one service function. */
export function vmHandlers(deps: { vms: VmService }): HandlerGroup<'vm'> {
  const { vms } = deps;
  const op = (ctx: CallContext) => ({ progress: ctx.progress, signal: ctx.signal });
  return {
    'vm.list': async () => ({ vms: vms.list() }),
    'vm.show': async ({ ref }) => ({ vm: vms.get(ref) }),
    'vm.create': async (p, ctx) => ({ vm: await vms.create(toCreateRequest(p), op(ctx)) }),
    'vm.start': async ({ ref }, ctx) => ({ vm: await vms.start(ref, op(ctx)) }),
    'vm.stop': async ({ ref, force, signal }) => ({
      vm: await vms.stop(ref, {
        force: force || signal !== undefined,
        signal: signal && (`SIG${signal}` as NodeJS.Signals),
      }),
    }),
    'vm.restart': async ({ ref }, ctx) => ({ vm: await vms.restart(ref, op(ctx)) }),
    'vm.delete': async ({ ref }) => {
      const vm = vms.get(ref);
      await vms.delete(vm.id);
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
      { create, argv, env, cwd, stdin, rm, workspace, branch, from, noBootstrap, detach },
      ctx,
    ) =>
      vms.run(
        {
          create: toCreateRequest(create),
          exec: argv.length > 0 ? { argv, env: envRecord(env), cwd } : undefined,
          workspace: workspace === undefined ? undefined : { path: workspace, branch, from },
          bootstrap: !noBootstrap,
          detach,
          rm,
        },
        callIo(ctx, stdin),
        { ...op(ctx), control: ctx.stdin },
      ),
  };
}
