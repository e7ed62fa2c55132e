import type { Layout } from '../config/index.js';
import type { Runner } from '../host/runner.js';
import type { RpcClient } from '../rpc/index.js';

/** What every command gets: built once in main.ts, passed down, never global. */
export interface CliContext {
  layout: Layout;
  version: string;
  runner: Runner;
  /** A client for a running daemon of our version, starting one in user mode. */
  client(): Promise<RpcClient>;
  /** A client for whatever daemon answers, without starting one (status, stop, completion). */
  existingClient(): RpcClient;
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
}

/** Adds an "Examples:" section to a command's --help. */
export const examples = (...lines: string[]) => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
