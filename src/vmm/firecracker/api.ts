import { request } from 'node:http';
import { contractProblems } from './contract.js';

/** Firecracker's error body: `{ "fault_message": "…" }`. */
export class FirecrackerApiError extends Error {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly faultMessage: string;

  constructor(method: string, path: string, status: number, faultMessage: string) {
    super(`Firecracker API ${method} ${path} answered ${status}: ${faultMessage}`);
    this.method = method;
    this.path = path;
    this.status = status;
    this.faultMessage = faultMessage;
  }
}

/** Bounds one API call; Firecracker answers pre-boot calls in milliseconds. */
const API_TIMEOUT_MS = 10_000;

/** A JSON client over Firecracker's API socket (HTTP/1.1 on a unix socket). */
export interface FirecrackerApi {
  get<T = unknown>(path: string): Promise<T>;
  put(path: string, body: unknown): Promise<void>;
  patch(path: string, body: unknown): Promise<void>;
}

export function createFirecrackerApi(socketPath: string): FirecrackerApi {
  function call(method: string, path: string, body?: unknown): Promise<unknown> {
    // A request outside the contract is banger's bug: say so here rather than as Firecracker's 400.
    const problems = contractProblems(method, path, body);
    if (problems.length > 0)
      return Promise.reject(
        new Error(
          `banger built a Firecracker request outside the API contract: ${method} ${path}: ${problems.join('; ')}`,
        ),
      );
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath,
          method,
          path,
          timeout: API_TIMEOUT_MS,
          headers: {
            Accept: 'application/json',
            ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(json);
            else {
              const fault = (json as { fault_message?: string } | undefined)?.fault_message ?? text;
              reject(new FirecrackerApiError(method, path, status, fault));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`Firecracker API ${method} ${path} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
  return {
    get: <T>(path: string) => call('GET', path) as Promise<T>,
    put: async (path, body) => {
      await call('PUT', path, body);
    },
    patch: async (path, body) => {
      await call('PATCH', path, body);
    },
  };
}
