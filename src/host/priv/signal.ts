import { operationFailed } from '../../model/errors.js';
import { checkProcessProof, type ProcessProof } from '../proc.js';
import type { SignalResult } from './types.js';
import type { AllowedSignal } from './validate.js';

/**
 * Sends a signal only to the process the proof names, owned by the uid this code runs as (a root helper
 * would check against the daemon owner's uid instead). The check and the kill are two steps; between them
 * the process could exit and its pid be reused within microseconds, a window only pidfd_send_signal
 * closes, which Node does not expose.
 */
export function signalPid(proof: ProcessProof, signal: AllowedSignal, uid: number): SignalResult {
  const check = checkProcessProof(proof, uid);
  if (check.result === 'gone') return { outcome: 'gone' };
  if (check.result === 'mismatch')
    return { outcome: 'refused', reason: `pid ${proof.pid} is not the recorded process: ${check.reason}` };
  try {
    process.kill(proof.pid, signal);
    return { outcome: 'signalled' };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return { outcome: 'gone' };
    throw operationFailed(`could not send ${signal} to pid ${proof.pid}`, { cause: err });
  }
}
