import { Writable } from 'node:stream';
import type { ExecIo, ExecRequest, ExecResult } from '../../../guest/index.js';

/** How the workspace code runs a command in a guest: the VM service's exec, or an agent's, bound to one VM. */
export type GuestExec = (req: ExecRequest, io: ExecIo) => Promise<ExecResult>;

/** Where the workspace lands in the guest, as in the original. */
export const WORKSPACE_GUEST_DIR = '/root/repo';

/** A short script's output: ours print a line or two; 1 MiB is the bound for a guest that does not stop. */
export const SCRIPT_MAX_BYTES = 1024 * 1024;
/** Under TCG a git command on a large repository takes seconds; the bound is for a guest that never ends. */
export const SCRIPT_TIMEOUT_MS = 10 * 60_000;

/** A sink that keeps what it is sent (the caller caps it through the exec's limit). */
export function collector(): { sink: Writable; text(): string } {
  const chunks: Buffer[] = [];
  return {
    sink: new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk);
        done();
      },
    }),
    text: () => Buffer.concat(chunks).toString('utf8').trim(),
  };
}

/** Runs `sh -c script sh ARGS…` in the guest (arguments never spliced into the script); code and output. */
export async function guestScript(
  exec: GuestExec,
  script: string,
  args: string[],
  what: string,
): Promise<{ code: number | null; output: string }> {
  const out = collector();
  const r = await exec(
    { argv: ['/bin/sh', '-c', script, 'sh', ...args] },
    {
      stdout: out.sink,
      stderr: out.sink,
      limit: { maxBytes: SCRIPT_MAX_BYTES, timeoutMs: SCRIPT_TIMEOUT_MS, what },
    },
  );
  return { code: r.exitCode, output: out.text() };
}
