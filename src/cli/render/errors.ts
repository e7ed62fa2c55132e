import { BootFailedError, toBangerError } from '../../model/errors.js';
import { colorsFor } from './color.js';

/** The one place errors are printed: `banger: <message> (op_id)`, the hint beneath. Returns the exit code. */
export function printError(err: unknown, stream: NodeJS.WriteStream = process.stderr): number {
  const error = toBangerError(err);
  const c = colorsFor(stream);
  const op = error.opId ? ` ${c.dim(`(${error.opId})`)}` : '';
  stream.write(`${c.red('banger:')} ${error.message}${op}\n`);
  // A failed boot keeps its VM even when the user asked for its deletion: say so, and where the log is.
  if (error instanceof BootFailedError && error.boot.keptDespiteRm)
    stream.write(
      `  VM ${error.boot.vmName} kept despite --rm, to read its console log (${error.boot.logPath})\n`,
    );
  if (error.hint) stream.write(`  ${c.dim('hint:')} ${error.hint}\n`);
  // Cancelled means interrupted (Ctrl-C): the status a shell gives a command that SIGINT ended.
  return error.code === 'cancelled' ? 130 : 1;
}
