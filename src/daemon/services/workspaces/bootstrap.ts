import { badRequest } from '../../../model/errors.js';
import { type GuestExec, guestScript } from './guest.js';
import type { WorkspaceSource } from './source.js';

/** Where the bootstrap's output goes in the guest (the work disk, so it survives a restart). */
export const BOOTSTRAP_LOG = '/root/.cache/banger/bootstrap.log';
const NO_MISE = 19;

/** How `vm run` bootstraps: in the background for an interactive session, else before it returns. */
export type BootstrapMode = 'background' | 'foreground';

/**
 * The repository's tools through mise (spec §7.6): `mise install` in the workspace, its config trusted for
 * this one path, output to BOOTSTRAP_LOG. Background: detached, so the shell starts at once.
 */
const MISE_SCRIPT = `
command -v mise >/dev/null 2>&1 || exit ${NO_MISE}
cd -- "$1" || exit 1
mkdir -p /root/.cache/banger
export MISE_TRUSTED_CONFIG_PATHS="$1" MISE_YES=1
if [ "$2" = background ]; then
  nohup mise install >${BOOTSTRAP_LOG} 2>&1 </dev/null &
  exit 0
fi
mise install >${BOOTSTRAP_LOG} 2>&1
`;

/**
 * Refuses, before any VM is made, a run whose workspace asks for tools without the network to fetch them.
 */
export function checkBootstrapNetwork(source: WorkspaceSource, nat: boolean): void {
  if (!source.toolConfig || nat) return;
  throw badRequest(
    `${source.root} has ${source.toolConfig}, and installing its tools with mise needs the network`,
    { hint: 'pass --nat to give the guest outbound access, or --no-bootstrap to skip the tools' },
  );
}

/** What the bootstrap did, in a line for the user; undefined when the workspace asks for nothing. */
export async function bootstrapTools(
  exec: GuestExec,
  source: WorkspaceSource,
  guestDir: string,
  mode: BootstrapMode,
): Promise<{ level: 'info' | 'warn'; message: string } | undefined> {
  if (!source.toolConfig) return undefined;
  const r = await guestScript(exec, MISE_SCRIPT, [guestDir, mode], 'the tooling bootstrap');
  if (r.code === NO_MISE)
    return {
      level: 'warn',
      message: `${source.toolConfig} found, but the image has no mise: tools not installed`,
    };
  if (r.code !== 0)
    return {
      level: 'warn',
      message: `mise install failed (exit ${r.code}); see ${BOOTSTRAP_LOG} in the guest`,
    };
  return {
    level: 'info',
    message:
      mode === 'background'
        ? `installing tools with mise in the background (log: ${BOOTSTRAP_LOG})`
        : `tools installed with mise (log: ${BOOTSTRAP_LOG})`,
  };
}
