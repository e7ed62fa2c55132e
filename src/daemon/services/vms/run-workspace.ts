import { parseSize } from '../../../model/sizes.js';
import {
  checkBootstrapNetwork,
  checkFits,
  inspectWorkspace,
  type WorkspaceSource,
} from '../workspaces/index.js';
import type { RunRequest } from './run.js';
import type { VmServiceDeps } from './types.js';

export const DISK_HINT = 'give the VM a larger work disk: --disk-size SIZE (e.g. --disk-size 16G)';

/**
 * `vm run PATH`'s checks, all before any VM is made: the path (a readable directory; a git repository
 * that git can read), --branch/--from, room on the work disk the VM will get, and the network a tooling
 * bootstrap needs.
 */
export async function inspectRunWorkspace(
  deps: Pick<VmServiceDeps, 'runner' | 'config'>,
  req: RunRequest,
): Promise<WorkspaceSource | undefined> {
  if (!req.workspace) return undefined;
  const { path, branch, from } = req.workspace;
  const source = await inspectWorkspace(deps.runner, path, { branch, from });
  const disk = req.create.diskSizeBytes ?? parseSize(deps.config.vm_defaults.disk_size);
  checkFits(source, disk, DISK_HINT);
  if (req.bootstrap !== false) checkBootstrapNetwork(source, req.create.nat ?? false);
  return source;
}
