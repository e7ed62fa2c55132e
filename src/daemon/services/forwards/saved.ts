import { readFile, rm } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';

/**
 * A VM's forwards as written to `<vm dir>/forwards.json`, so a daemon that restarts and adopts the VM
 * listens again. Only the asked-for shape is kept: what the host gave (a port picked for 0 or near an
 * automatic one) is stored as given, so the same port comes back.
 */
const savedSchema = z.object({
  auto: z.boolean(),
  forwards: z
    .array(
      z.object({
        hostAddress: z.string().max(64),
        hostPort: z.number().int().min(0).max(65535),
        guestPort: z.number().int().min(1).max(65535),
        auto: z.boolean(),
      }),
    )
    .max(4096),
});
export type SavedForwards = z.infer<typeof savedSchema>;

/** Undefined when there is no file, or when it does not parse (reported by the caller as a lost set). */
export async function readSaved(path: string): Promise<SavedForwards | undefined | 'damaged'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = savedSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : 'damaged';
  } catch {
    return 'damaged';
  }
}

export async function writeSaved(path: string, saved: SavedForwards): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600, fsync: true });
}

export async function removeSaved(path: string): Promise<void> {
  await rm(path, { force: true });
}
