import type { BangerError } from '../../model/errors.js';
import type { HttpResponse } from './http.js';

/**
 * Reads a whole response body that a registry or token server controls, never holding more than `cap`
 * bytes: a declared Content-Length over the cap is refused before reading, and a body that streams past
 * it (chunked, or lying about its length) is cut off there and the connection dropped.
 * `tooLarge` builds the error, given the declared size when there was one.
 */
export async function readCapped(
  res: Pick<HttpResponse, 'headers' | 'body'>,
  cap: number,
  tooLarge: (declared?: number) => BangerError,
): Promise<Buffer> {
  const declared = Number(res.headers['content-length'] ?? Number.NaN);
  if (declared > cap) {
    res.body.destroy();
    throw tooLarge(declared);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body) {
    const b = chunk as Buffer;
    n += b.length;
    if (n > cap) {
      res.body.destroy();
      throw tooLarge();
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
