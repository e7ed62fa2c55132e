import type { IncomingHttpHeaders } from 'node:http';
import { type Dispatcher, request } from 'undici';
import { operationFailed } from '../../model/errors.js';
import { isTemporaryNetworkError, isTemporaryStatus, networkError, redactUrl } from '../errors.js';

export interface HttpResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
  /** Where the answer came from, after redirects. */
  url: URL;
}

export interface SendOptions {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Tries in all (default ATTEMPTS); 1 for probes whose failure is an answer. */
  attempts?: number;
}

/** Blob redirects go to a CDN or object store once; more than this is a loop. */
const MAX_REDIRECTS = 5;
/** Attempts for one request on 5xx, 429 or a reset socket, with doubling backoff from BACKOFF_MS. */
const ATTEMPTS = 3;
const BACKOFF_MS = 200;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/**
 * One request with redirects followed by hand: `Authorization` is dropped as soon as a redirect leaves
 * the origin it was meant for (blob redirects to S3/R2 carry their own signature), and an https -> http
 * downgrade is refused.
 */
async function sendOnce(dispatcher: Dispatcher, url: URL, opts: SendOptions): Promise<HttpResponse> {
  let current = url;
  const headers = { ...opts.headers };
  for (let hop = 0; ; hop++) {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(current, {
        method: opts.method ?? 'GET',
        headers,
        dispatcher,
        signal: opts.signal,
      });
    } catch (err) {
      throw networkError(err, current, opts.signal);
    }
    const location = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(res.statusCode) || typeof location !== 'string')
      return { statusCode: res.statusCode, headers: res.headers, body: res.body, url: current };
    await res.body.dump();
    if (hop >= MAX_REDIRECTS) throw operationFailed(`too many redirects from ${redactUrl(url)}`);
    const next = new URL(location, current);
    if (current.protocol === 'https:' && next.protocol !== 'https:')
      throw operationFailed(`${redactUrl(current)} redirected to plain HTTP (${redactUrl(next)}); refused`);
    if (next.origin !== current.origin) delete headers.authorization;
    current = next;
  }
}

/** `sendOnce` with retries on temporary failures; the body of a retried answer is drained first. */
export async function send(dispatcher: Dispatcher, url: URL, opts: SendOptions = {}): Promise<HttpResponse> {
  const attempts = opts.attempts ?? ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    let res: HttpResponse;
    try {
      res = await sendOnce(dispatcher, url, opts);
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err;
      if (attempt < attempts && !opts.signal?.aborted && isTemporaryNetworkError(cause)) {
        await sleep(BACKOFF_MS * 2 ** (attempt - 1), opts.signal);
        continue;
      }
      throw err;
    }
    if (attempt < attempts && isTemporaryStatus(res.statusCode)) {
      await res.body.dump();
      await sleep(BACKOFF_MS * 2 ** (attempt - 1), opts.signal);
      continue;
    }
    return res;
  }
}
