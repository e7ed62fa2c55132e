import type { DirEntry } from '../../../guest/index.js';
import { BangerError, badRequest } from '../../../model/errors.js';
import type { AgentPort, OpOptions, VmService } from '../vms/index.js';

/**
 * The most bytes one file read or write moves. A file travels base64 in one RPC line (16 MiB at most), and
 * the daemon holds it in memory while it passes: 10 MiB keeps both well inside their bounds.
 */
export const FILE_MAX_BYTES = 10 * 1024 * 1024;
/** A whole file's transfer, however slow the guest (a TCG guest moves a few MB/s over virtio-serial). */
const FILE_TIMEOUT_MS = 300_000;

export interface WriteOptions {
  /** Permission bits (0 to 0o7777); the agent's default is 0o644. */
  mode?: number;
  /** The owner to set; unchanged (root, for a new file) when left out. */
  uid?: number;
  gid?: number;
}

/** Files of a running VM through its guest agent (issue 21): the SDK's and MCP's vm.files. */
export interface FileService {
  read(ref: string, path: string, opts?: OpOptions): Promise<Buffer>;
  write(ref: string, path: string, data: Buffer, opts?: WriteOptions & OpOptions): Promise<void>;
  list(ref: string, path: string, opts?: OpOptions): Promise<{ entries: DirEntry[]; truncated: boolean }>;
}

export function createFileService(deps: { vms: Pick<VmService, 'agent' | 'touch'> }): FileService {
  const { vms } = deps;
  /** Each file call is a use of the VM (the idle clock), like exec. */
  const agentFor = async (ref: string, opts: OpOptions): Promise<AgentPort> => {
    vms.touch(ref);
    return vms.agent(ref, opts);
  };
  return {
    async read(ref, path, opts = {}) {
      const agent = await agentFor(ref, opts);
      return agent.readFile(path, { maxBytes: FILE_MAX_BYTES, timeoutMs: FILE_TIMEOUT_MS });
    },
    async write(ref, path, data, opts = {}) {
      if (data.length > FILE_MAX_BYTES)
        throw badRequest(`a file write takes at most ${FILE_MAX_BYTES} bytes, not ${data.length}`, {
          hint: 'split the file, or copy it in with a workspace (banger vm run --workspace)',
        });
      const agent = await agentFor(ref, opts);
      await agent.writeFile(path, data, { mode: opts.mode, uid: opts.uid, gid: opts.gid });
    },
    async list(ref, path, opts = {}) {
      const agent = await agentFor(ref, opts);
      const { entries, truncated } = await agent.listDir(path).catch((err: unknown) => {
        if (err instanceof BangerError && err.code === 'unknown_method')
          throw new BangerError('unknown_method', `the agent of VM ${ref} cannot list directories`, {
            hint: 'its image predates list_dir: pull the image again, or run ls with banger vm exec',
          });
        throw err;
      });
      // The agent sends the directory's order; a stable one is what a caller can compare.
      return { entries: entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)), truncated };
    },
  };
}
