import { createConnection, type Socket } from 'node:net';

/** A QMP reply or event, as QEMU sends them: one JSON object per line. */
type QmpMessage = { return?: unknown; error?: { class: string; desc: string }; event?: string };

/**
 * A minimal QMP client: connect, negotiate capabilities, run commands one at a time. Events are skipped;
 * replies come back in command order, so a FIFO of pending commands is enough.
 */
export class QmpClient {
  private buffer = '';
  private pending: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  private closedError: Error | undefined;

  private readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    const fail = (err: Error) => {
      this.closedError ??= err;
      for (const p of this.pending.splice(0)) p.reject(this.closedError);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('QMP connection closed')));
  }

  /** Connects and completes the greeting + qmp_capabilities handshake. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = createConnection(path);
    const client = new QmpClient(socket);
    const greeting = new Promise<unknown>((resolve, reject) => client.pending.push({ resolve, reject }));
    const timer = setTimeout(
      () => socket.destroy(new Error(`QMP handshake timed out on ${path}`)),
      timeoutMs,
    );
    try {
      await greeting;
      await client.execute('qmp_capabilities');
      return client;
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let msg: QmpMessage & { QMP?: unknown };
      try {
        msg = JSON.parse(line) as QmpMessage & { QMP?: unknown };
      } catch {
        continue;
      }
      if (msg.event) continue;
      const waiter = this.pending.shift();
      if (!waiter) continue;
      if (msg.error) waiter.reject(new Error(`QMP ${msg.error.class}: ${msg.error.desc}`));
      else waiter.resolve(msg.QMP ?? msg.return);
    }
  }

  /** Runs one QMP command and returns its `return` value. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket.write(
        `${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`,
      );
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
