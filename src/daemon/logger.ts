import pino, { type Logger } from 'pino';

/** The daemon's JSON-lines log file (pino). Synchronous writes: low volume, and nothing lost on a crash. */
export function createDaemonLogger(logPath: string, level: string): Logger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: logPath, mkdir: true, sync: true }),
  );
}
