import type { Writable } from 'node:stream';
import type { ExecIo, ExecRequest, ExecResult } from '../../../guest/index.js';
import type { Runner } from '../../../host/index.js';
import { BangerError } from '../../../model/errors.js';
import type { ProgressSink } from '../../../model/progress.js';
import type { VM } from '../../../model/vm.js';
import { type CopyInResult, copyIn } from './copy-in.js';
import { exportWorkspace } from './export-workspace.js';
import { type GuestExec, WORKSPACE_GUEST_DIR } from './guest.js';
import { readWorkspaceRecord } from './record.js';
import { checkFits, inspectWorkspace, type WorkspaceOptions } from './source.js';

/** What the workspace service needs of the VM service. */
export interface WorkspaceVms {
  get(ref: string): VM;
  exec(
    ref: string,
    req: ExecRequest,
    io: ExecIo,
    opts?: { signal?: AbortSignal | undefined },
  ): Promise<ExecResult>;
}

export interface WorkspaceOpOptions {
  progress?: ProgressSink | undefined;
  signal?: AbortSignal | undefined;
}

/** `vm workspace prepare|export`: a host directory into a running VM, and its changes back as a patch. */
export interface WorkspaceService {
  prepare(
    ref: string,
    path: string,
    opts: WorkspaceOptions & { force?: boolean | undefined },
    op?: WorkspaceOpOptions,
  ): Promise<CopyInResult & { vm: VM }>;
  export(
    ref: string,
    opts: { baseCommit?: string | undefined },
    out: Writable,
    op?: WorkspaceOpOptions,
  ): Promise<{ bytes: number }>;
}

export function createWorkspaceService(deps: {
  vms: WorkspaceVms;
  runner: Runner;
  /** A VM's directory on the host, where its workspace record is kept. */
  vmDir: (id: string) => string;
}): WorkspaceService {
  const { vms, runner } = deps;
  const running = (ref: string): VM => {
    const vm = vms.get(ref);
    if (vm.state !== 'running')
      throw new BangerError('not_running', `VM ${vm.name} is not running (${vm.state})`, {
        hint: `banger vm start ${vm.name}`,
      });
    return vm;
  };
  const execIn =
    (vm: VM, signal?: AbortSignal): GuestExec =>
    (req, io) =>
      vms.exec(vm.id, req, io, { signal });
  return {
    async prepare(ref, path, opts, op = {}) {
      const vm = running(ref);
      const source = await inspectWorkspace(runner, path, opts);
      const hint = `the workspace needs a larger work disk: banger vm stop ${vm.name} && banger vm set ${vm.name} --disk-size SIZE`;
      checkFits(source, vm.spec.diskSizeBytes, hint);
      op.progress?.({
        kind: 'stage',
        stage: 'workspace',
        message: `copying ${source.root} to ${WORKSPACE_GUEST_DIR}`,
      });
      const r = await copyIn(runner, execIn(vm, op.signal), source, WORKSPACE_GUEST_DIR, {
        force: opts.force,
        diskHint: hint,
        recordDir: deps.vmDir(vm.id),
      });
      return { ...r, vm };
    },
    async export(ref, opts, out, op = {}) {
      const vm = running(ref);
      const record = await readWorkspaceRecord(deps.vmDir(vm.id));
      return exportWorkspace(runner, execIn(vm, op.signal), WORKSPACE_GUEST_DIR, out, {
        baseCommit: opts.baseCommit,
        vmName: vm.name,
        source: record?.source,
        notice: (message) => op.progress?.({ kind: 'log', level: 'info', message }),
      });
    },
  };
}
