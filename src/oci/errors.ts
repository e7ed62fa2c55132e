import type { Dispatcher } from 'undici';
import { BangerError, type ErrorCode } from '../model/errors.js';

/** Error bodies are small JSON; never buffer more than this of one. */
const MAX_ERROR_BODY = 64 * 1024;

/** `https://user:pw@host/p?x` -> `https://host/p`: credentials and query (signed URLs) never reach messages. */
export function redactUrl(url: URL | string): string {
  const u = new URL(String(url));
  return `${u.protocol}//${u.host}${u.pathname}`;
}

async function readCapped(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    if (n + b.length > MAX_ERROR_BODY) {
      chunks.push(b.subarray(0, MAX_ERROR_BODY - n));
      body.destroy();
      break;
    }
    chunks.push(b);
    n += b.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The registry's own error codes (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, …) and messages, when it sent them. */
function registryCodes(text: string): string[] {
  try {
    const json = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    return (json.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * A registry answered with an error status: maps it to our codes (404 -> not_found, 401/403 ->
 * unauthorized, else operation_failed), keeping status, the registry's codes and the redacted URL.
 */
export async function registryError(
  res: { statusCode: number; body: Dispatcher.ResponseData['body'] },
  url: URL,
  what: string,
  hint?: string,
): Promise<BangerError> {
  const text = await readCapped(res.body).catch(() => '');
  const codes = registryCodes(text);
  const code: ErrorCode =
    res.statusCode === 404
      ? 'not_found'
      : res.statusCode === 401 || res.statusCode === 403
        ? 'unauthorized'
        : 'operation_failed';
  const detail = codes.length ? ` (${codes.join('; ')})` : '';
  const err = new BangerError(code, `${what}: ${redactUrl(url)} answered HTTP ${res.statusCode}${detail}`, {
    hint,
  });
  return Object.assign(err, { status: res.statusCode, registryCodes: codes });
}

const TLS_CODES = /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL)/;

/** A failure below HTTP (refused, reset, TLS, DNS), named by the host we were talking to. */
export function networkError(err: unknown, url: URL, signal?: AbortSignal): BangerError {
  if (err instanceof BangerError) return err;
  if (signal?.aborted)
    return new BangerError('cancelled', `pull cancelled while talking to ${url.host}`, { cause: err });
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  const message = e.cause?.message ?? e.message ?? String(err);
  if (TLS_CODES.test(code) || /certificate|ssl|tls/i.test(message)) {
    return new BangerError('operation_failed', `TLS with registry ${url.host} failed: ${message}`, {
      cause: err,
      hint: 'add its CA certificate to registry_ca_files, or list the registry in insecure_registries if it speaks plain HTTP',
    });
  }
  return new BangerError(
    'operation_failed',
    `cannot reach ${url.host}: ${message}${code ? ` (${code})` : ''}`,
    {
      cause: err,
    },
  );
}

/** Statuses and socket errors worth another try: the registry or a proxy was briefly unwell. */
export function isTemporaryStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

export function isTemporaryNetworkError(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  return [
    'ECONNRESET',
    'ETIMEDOUT',
    'EPIPE',
    'UND_ERR_SOCKET',
    'UND_ERR_CONNECT_TIMEOUT',
    'UND_ERR_HEADERS_TIMEOUT',
    'UND_ERR_BODY_TIMEOUT',
  ].includes(code);
}
