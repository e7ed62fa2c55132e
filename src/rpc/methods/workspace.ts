import { z } from 'zod';
import { vmSchema } from '../../model/vm.js';
import { method } from './define.js';

const ref = z.string().min(1);

/** What a copy-in takes besides the path: a new branch in the guest and where it starts. */
export const workspaceCopyParams = {
  /** A new branch to create and check out in the guest (refused when the repository has it already). */
  branch: z.string().min(1).optional(),
  /** The commit the new branch starts from (only with branch). */
  from: z.string().min(1).optional(),
};

/** Where a workspace landed. */
export const workspaceResultSchema = z.object({
  guestDir: z.string(),
  /** The commit export diffs against by default. */
  baseCommit: z.string().optional(),
  branch: z.string().optional(),
  /** Entries left out, one line each (special files, submodules, nested repositories). */
  skipped: z.array(z.string()),
});

/** `workspace.*` methods: `vm workspace prepare|export`. */
export const workspaceMethods = {
  'workspace.prepare': method(() => ({
    params: z.strictObject({
      ref,
      /** A host directory (absolute), as vm.run's workspace. */
      path: z.string().startsWith('/'),
      ...workspaceCopyParams,
      /** Replace an existing /root/repo. */
      force: z.boolean().default(false),
    }),
    result: workspaceResultSchema.extend({ vm: vmSchema }),
    summary: 'Copy a host directory into a running VM at /root/repo (as vm run PATH does).',
  })),
  'workspace.export': method(() => ({
    params: z.strictObject({
      ref,
      /** Diff against this commit instead of the one prepared; a ref or hash, never an option. */
      baseCommit: z
        .string()
        .regex(/^[^-\s][^\s]*$/, 'a commit or ref (no spaces, not starting with "-")')
        .optional(),
    }),
    result: z.object({ bytes: z.number().int() }),
    summary:
      "A running VM's workspace changes as a binary git patch, streamed as stdout output notifications (capped).",
  })),
} as const;
