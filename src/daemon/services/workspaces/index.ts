/**
 * Workspaces: a host directory into a guest (git-aware), the guest's changes back as a patch, the tools a
 * repository asks for (mise), and the host files every start brings (git identity, [[file_sync]]).
 */
export { BOOTSTRAP_LOG, type BootstrapMode, bootstrapTools, checkBootstrapNetwork } from './bootstrap.js';
export { type CopyInResult, copyIn } from './copy-in.js';
export { EXPORT_MAX_BYTES, exportPatch } from './export.js';
export { checkGuestPath, MAX_CHANGED_PATHS } from './export-stream.js';
export { type ExportOptions, exportWorkspace } from './export-workspace.js';
export { type GuestExec, WORKSPACE_GUEST_DIR } from './guest.js';
export {
  applyHostFiles,
  GIT_IDENTITY_SH,
  type GitIdentity,
  type GuestFiles,
  type HostFilesDeps,
  type Notice,
  readGitIdentity,
} from './host-files.js';
export { readWorkspaceRecord, type WorkspaceRecord, writeWorkspaceRecord } from './record.js';
export { createWorkspaceService, type WorkspaceService, type WorkspaceVms } from './service.js';
export {
  checkFits,
  inspectWorkspace,
  listGitFiles,
  TOOL_CONFIG_FILES,
  type WorkspaceOptions,
  type WorkspaceSource,
} from './source.js';
export { type TreeList, walkTree } from './tree.js';
