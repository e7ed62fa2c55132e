import pino, { type Logger } from 'pino';
import { ensurePrivateFile } from '../config/index.js';

/**
 * The daemon's JSON-lines log file (pino), 0600: it names images, VMs and errors. Synchronous writes: low
 * volume, and nothing lost on a crash.
 */
export function createDaemonLogger(logPath: string, level: string): Logger {
  ensurePrivateFile(logPath);
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: logPath, mkdir: true, sync: true }),
  );
}
