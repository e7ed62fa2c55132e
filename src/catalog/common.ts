// What the image and kernel catalogs share: the entry-name rule, the catalog envelope, and loading one
// (embedded, a file, or an https URL) with the same size cap and error wording.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { badRequest, operationFailed } from '../model/errors.js';
import { validateArtifactName } from '../model/names.js';

type CatalogKind = 'image' | 'kernel';

/** A catalog larger than this is not a catalog. */
const MAX_CATALOG_BYTES = 4 * 1024 * 1024;
const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

/** An entry name, by the same rule as the artifact names banger stores. */
export function catalogEntryName(kind: CatalogKind) {
  return z.string().refine(
    (n) => {
      try {
        validateArtifactName(kind, n);
        return true;
      } catch {
        return false;
      }
    },
    { message: `${kind === 'image' ? 'an image' : 'a kernel'} name: letters, digits, '.', '-', '_'` },
  );
}

/** catalog.json: version 1, names unique. */
export function catalogSchema<E extends z.ZodType<{ name: string }>>(kind: CatalogKind, entry: E) {
  return z
    .strictObject({ version: z.literal(1), entries: z.array(entry) })
    .refine((c) => new Set(c.entries.map((e) => e.name)).size === c.entries.length, {
      message: `${kind} catalog entry names must be unique`,
    });
}

/** https, or plain http to loopback only (local mirrors and tests). */
export function checkDownloadUrl(what: string, raw: string): URL {
  const url = new URL(raw);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.includes(url.hostname))) return url;
  throw badRequest(`${what} ${raw} must use https`);
}

/** Validates catalog JSON text; `origin` names where it came from in errors. */
export function parseCatalog<T>(kind: CatalogKind, schema: z.ZodType<T>, text: string, origin: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw badRequest(`${kind} catalog ${origin} is not JSON`, { cause: err });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw badRequest(`${kind} catalog ${origin} is invalid: ${z.prettifyError(parsed.error)}`, {
      hint: `fix the file or the ${kind}_catalog setting in config.toml`,
    });
  }
  return parsed.data;
}

async function fetchText(kind: CatalogKind, url: string, fetchImpl: typeof fetch): Promise<string> {
  const res = await fetchImpl(url, { redirect: 'follow' }).catch((err: unknown) => {
    throw operationFailed(`cannot fetch ${kind} catalog ${url}`, { cause: err });
  });
  if (!res.ok) throw operationFailed(`cannot fetch ${kind} catalog ${url}: HTTP ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  if (body.length > MAX_CATALOG_BYTES) throw operationFailed(`${kind} catalog ${url} is larger than 4 MiB`);
  return body.toString('utf8');
}

/**
 * Loads a catalog: the embedded one, or the `<kind>_catalog` override (an https URL or a file path).
 * Plain http is accepted only for loopback (local tests and mirrors on this machine).
 */
export async function loadCatalog<T>(
  kind: CatalogKind,
  schema: z.ZodType<T>,
  embeddedPath: string,
  options: { override?: string | undefined; fetch?: typeof fetch },
): Promise<T> {
  const override = options.override?.trim();
  if (!override) return parseCatalog(kind, schema, await readFile(embeddedPath, 'utf8'), 'embedded');
  if (/^https?:\/\//.test(override)) {
    checkDownloadUrl(`${kind} catalog`, override);
    return parseCatalog(kind, schema, await fetchText(kind, override, options.fetch ?? fetch), override);
  }
  const text = await readFile(override, 'utf8').catch((err: unknown) => {
    throw badRequest(`cannot read ${kind} catalog ${override}`, { cause: err });
  });
  return parseCatalog(kind, schema, text, override);
}
