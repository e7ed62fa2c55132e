import type { ExecResult } from '../../../guest/index.js';
import { BangerError, BootFailedError, toBangerError } from '../../../model/errors.js';
import type { Snapshot } from '../../../model/snapshot.js';
import type { VM } from '../../../model/vm.js';
import type { CopyInResult, Notice, WorkspaceOptions, WorkspaceSource } from '../workspaces/index.js';
import type { ExecIo, ExecRequest } from './ports.js';
import type { CreateVmRequest, OpOptions } from './types.js';

/** `vm run`: a VM made and started, a workspace copied in, then a command, or nothing (the caller attaches). */
export interface RunRequest {
  create: Omit<CreateVmRequest, 'noStart'>;
  /**
   * The command, through the agent. Without one the VM is left running for the caller's own next step (an
   * interactive ssh or shell on the user's terminal, or nothing with -d), which it ends with `delete`.
   */
  exec?: ExecRequest;
  /** A host directory (absolute) copied into the guest at /root/repo; the command or shell runs there. */
  workspace?: (WorkspaceOptions & { path: string }) | undefined;
  /** Run the tooling bootstrap a workspace asks for (default true; --no-bootstrap says false). */
  bootstrap?: boolean | undefined;
  /** Nobody attaches after the run (-d): the bootstrap runs before it returns instead of in the background. */
  detach?: boolean | undefined;
  /**
   * Delete the VM once the command ended, however it ended, and when the run fails or is cancelled before
   * it; a VM whose boot failed is kept all the same (its console log says why), and the error says so.
   */
  rm?: boolean;
  /** Start from this snapshot (name or id) through the fork path instead of booting the image. */
  fromSnapshot?: string | undefined;
  /** Boot even when a warm template exists (and make none afterwards). */
  cold?: boolean | undefined;
}

export interface RunResult {
  /** The VM as it was when the run ended (it may be deleted since: see `deleted`). */
  vm: VM;
  /** How the command ended; absent when there was none. */
  exit?: ExecResult;
  deleted: boolean;
  /** Where the workspace landed, when there was one. */
  workspace?: CopyInResult;
}

/** The service's own operations that a run strings together. */
export interface RunSteps {
  /**
   * The first half of create: the image (pulled when missing), the name, the row. With a snapshot to
   * restore (--from-snapshot, or the warm template when there is one) the row is a fork of it, and
   * `restore` says which.
   */
  admit(req: RunRequest, opts: OpOptions): Promise<{ vm: VM; restore?: Snapshot }>;
  /** The second half: start the admitted VM (restoring `opts.restore`) and wait for its agent. */
  boot(id: string, opts: OpOptions): Promise<VM>;
  /** A warm template that did not come up: dropped, so the next cold run makes a new one. */
  dropTemplate(template: Snapshot): Promise<void>;
  /** After a cold run: the warm template for what it booted is made in the background, when missing. */
  warmUp(vm: VM): void;
  /** Checks and lists the workspace (before any VM exists: every refusal leaves nothing behind). */
  inspectWorkspace(req: RunRequest): Promise<WorkspaceSource | undefined>;
  copyWorkspace(id: string, source: WorkspaceSource, opts: OpOptions): Promise<CopyInResult>;
  bootstrap(
    id: string,
    source: WorkspaceSource,
    mode: 'background' | 'foreground',
  ): Promise<Notice | undefined>;
  exec(id: string, req: ExecRequest, io: ExecIo, opts: OpOptions): Promise<ExecResult>;
  delete(id: string): Promise<void>;
}

export async function runVm(
  steps: RunSteps,
  req: RunRequest,
  io: ExecIo,
  opts: OpOptions = {},
): Promise<RunResult> {
  const starting = cancelOnSignal(opts);
  const before = { progress: opts.progress, signal: starting.signal };
  let vm: VM;
  let restore: Snapshot | undefined;
  let source: WorkspaceSource | undefined;
  try {
    source = await steps.inspectWorkspace(req);
    ({ vm, restore } = await steps.admit(req, before));
  } catch (err) {
    starting.stop();
    throw starting.why(err);
  }
  let discard = false;
  /** The VM is deleted already (a restore that failed): nothing to keep or discard. */
  let gone = false;
  let booted = false;
  let workspace: CopyInResult | undefined;
  try {
    let cwd = req.exec?.cwd;
    try {
      // Without a command the caller ssh-es in next: wait for sshd and pin its key as `vm create` does.
      const waitForSsh = req.exec === undefined;
      try {
        vm = await steps.boot(vm.id, { ...before, waitForSsh, ...(restore ? { restore } : {}) });
      } catch (err) {
        if (!restore || starting.signal.aborted) throw err;
        // A restore that did not come up serves no one: nothing of it is kept (its error is the answer).
        gone = true;
        await steps.delete(vm.id);
        if (!restore.template) throw err;
        // The warm template failed (a changed VMM, a guest that did not answer): dropped, and this run boots.
        await steps.dropTemplate(restore);
        opts.progress?.({
          kind: 'log',
          level: 'warn',
          message: `the warm template did not restore (${toBangerError(err).message}); booting`,
        });
        restore = undefined;
        ({ vm } = await steps.admit({ ...req, cold: true }, before));
        gone = false;
        vm = await steps.boot(vm.id, { ...before, waitForSsh });
      }
      booted = true;
      if (source) {
        opts.progress?.({ kind: 'stage', stage: 'workspace', message: `copying ${source.root}` });
        workspace = await steps.copyWorkspace(vm.id, source, before);
        for (const line of workspace.skipped)
          opts.progress?.({ kind: 'log', level: 'info', message: `not copied: ${line}` });
        cwd ??= workspace.guestDir;
        if (req.bootstrap !== false) {
          // An interactive session starts at once; a command or -d gets its tools before it goes on.
          const mode = req.exec || req.detach ? 'foreground' : 'background';
          if (source.toolConfig)
            opts.progress?.({ kind: 'stage', stage: 'bootstrap', message: 'mise install' });
          const notice = await steps.bootstrap(vm.id, source, mode);
          if (notice) opts.progress?.({ kind: 'log', ...notice });
        }
      }
    } catch (err) {
      // Cancelled: the VM never served anyone, nothing of it is kept. A boot that failed on its own is kept
      // whatever was asked, for its console log; anything else goes with --rm.
      if (gone) throw err;
      if (starting.signal.aborted) {
        discard = true;
        throw starting.why(err);
      }
      if (err instanceof BootFailedError) throw req.rm ? err.keptDespiteRm() : err;
      discard = req.rm ?? false;
      throw err;
    } finally {
      starting.stop();
    }
    if (!req.exec) return { vm, deleted: false, workspace };
    // From here --rm holds however the command ends, also when the client goes away.
    discard = req.rm ?? false;
    // The caller's cue that setup is over: a client bounding the command's time (mcp) starts its clock here.
    opts.progress?.({ kind: 'stage', stage: 'command' });
    const exit = await steps.exec(vm.id, { ...req.exec, cwd }, io, {
      progress: opts.progress,
      signal: opts.signal,
      control: opts.control,
    });
    return { vm, exit, deleted: discard, workspace };
  } finally {
    if (discard) await steps.delete(vm.id);
    // After the run, not during it: the template's boot must not compete with the user's command.
    if (booted && !restore && !req.cold && !req.fromSnapshot) steps.warmUp(vm);
  }
}

/**
 * Signals the caller forwards (opts.control 'signal') before the command runs: there is nothing to send
 * them to yet, so they cancel the run instead (what was started is removed, as on a disconnect).
 */
function cancelOnSignal(opts: OpOptions) {
  const interrupted = new AbortController();
  const interrupt = (name: string) =>
    interrupted.abort(
      new BangerError('cancelled', `vm run interrupted by SIG${name} before its command ran`),
    );
  opts.control?.on('signal', interrupt);
  return {
    signal: opts.signal ? AbortSignal.any([opts.signal, interrupted.signal]) : interrupted.signal,
    /** The interruption when there was one, else `err`: a cancelled step then says why, not only where. */
    why: (err: unknown): unknown => (interrupted.signal.aborted ? interrupted.signal.reason : err),
    /** The command is about to run (or there is none): signals are its, or the caller's, from now on. */
    stop: () => opts.control?.off('signal', interrupt),
  };
}
