import { Writable } from 'node:stream';
import type { z } from 'zod';
import { BangerError } from '../../model/errors.js';
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

/**
 * Signals the client forwards before `vm run`'s command runs: there is nothing to send them to yet, so they
 * cancel the call instead (what was started cleans up as on a disconnect).
 */
function cancelOnSignal(ctx: CallContext) {
  const interrupted = new AbortController();
  const interrupt = (name: string) =>
    interrupted.abort(
      new BangerError('cancelled', `vm run interrupted by SIG${name} before its command ran`),
    );
  ctx.stdin.on('signal', interrupt);
  return {
    signal: AbortSignal.any([ctx.signal, interrupted.signal]),
    /** The interruption when there was one, else `err`: a cancelled step then says why, not only where. */
    why: (err: unknown): unknown => (interrupted.signal.aborted ? interrupted.signal.reason : err),
    /** The command is about to run: signals are its from now on. */
    stop: () => ctx.stdin.off('signal', interrupt),
  };
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
    'vm.run': async ({ create, argv, env, cwd, stdin, rm, workspace }, ctx) => {
      const starting = cancelOnSignal(ctx);
      let vm: Awaited<ReturnType<VmService['create']>>;
      try {
        vm = await vms.create(
          { ...toCreateRequest(create), noStart: false },
          { ...op(ctx), signal: starting.signal, waitForSsh: false },
        );
      } catch (err) {
        starting.stop();
        const why = starting.why(err);
        if (why !== err) throw why;
        // A VM whose boot failed is kept even with --rm: its console log is what says why.
        if (rm && err instanceof BangerError && /booted but its agent did not answer/.test(err.message))
          throw new BangerError(err.code, `${err.message} (kept despite --rm, to read its console log)`, {
            hint: err.hint,
            cause: err,
          });
        throw err;
      }
      let result: { exitCode: number | null; signal: string | null };
      try {
        let dir = cwd;
        if (workspace && !dir) {
          ctx.progress({ kind: 'stage', stage: 'workspace' });
          dir = await vms
            .copyWorkspace(vm.id, workspace, { ...op(ctx), signal: starting.signal })
            .catch((err: unknown) => {
              throw starting.why(err);
            });
        }
        starting.stop();
        result = await vms.exec(vm.id, { argv, env: envRecord(env), cwd: dir }, callIo(ctx, stdin), {
          ...op(ctx),
          control: ctx.stdin,
        });
      } finally {
        starting.stop();
        // --rm also when the command failed or the client went away; a boot failure never gets here.
        if (rm) await vms.delete(vm.id);
      }
      return { ...result, name: vm.name, id: vm.id, deleted: rm };
    },
  };
}
