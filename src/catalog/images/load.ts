import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { packageRoot } from '../../config/index.js';
import { badRequest, notFound, operationFailed } from '../../model/errors.js';
import { type ImageCatalog, type ImageCatalogEntry, imageCatalogSchema } from './schema.js';

/** A catalog larger than this is not a catalog. */
const MAX_CATALOG_BYTES = 4 * 1024 * 1024;
const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

/** The catalog shipped with banger. */
export function embeddedImageCatalogPath(): string {
  return join(packageRoot(), 'src', 'catalog', 'images', 'catalog.json');
}

/** Validates catalog JSON text; `origin` names where it came from in errors. */
export function parseImageCatalog(text: string, origin: string): ImageCatalog {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw badRequest(`image catalog ${origin} is not JSON`, { cause: err });
  }
  const parsed = imageCatalogSchema.safeParse(json);
  if (!parsed.success) {
    throw badRequest(`image catalog ${origin} is invalid: ${z.prettifyError(parsed.error)}`, {
      hint: 'fix the file or the image_catalog setting in config.toml',
    });
  }
  return parsed.data;
}

/** https, or plain http to loopback only (local mirrors and tests). */
export function checkDownloadUrl(what: string, raw: string): URL {
  const url = new URL(raw);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.includes(url.hostname))) return url;
  throw badRequest(`${what} ${raw} must use https`);
}

async function fetchText(url: string, fetchImpl: typeof fetch): Promise<string> {
  const res = await fetchImpl(url, { redirect: 'follow' }).catch((err: unknown) => {
    throw operationFailed(`cannot fetch image catalog ${url}`, { cause: err });
  });
  if (!res.ok) throw operationFailed(`cannot fetch image catalog ${url}: HTTP ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  if (body.length > MAX_CATALOG_BYTES) throw operationFailed(`image catalog ${url} is larger than 4 MiB`);
  return body.toString('utf8');
}

/** Loads the image catalog: the embedded one, or the `image_catalog` override (an https URL or a file path). */
export async function loadImageCatalog(
  options: { override?: string | undefined; fetch?: typeof fetch } = {},
): Promise<ImageCatalog> {
  const override = options.override?.trim();
  if (!override) return parseImageCatalog(await readFile(embeddedImageCatalogPath(), 'utf8'), 'embedded');
  if (/^https?:\/\//.test(override)) {
    checkDownloadUrl('image catalog', override);
    return parseImageCatalog(await fetchText(override, options.fetch ?? fetch), override);
  }
  const text = await readFile(override, 'utf8').catch((err: unknown) => {
    throw badRequest(`cannot read image catalog ${override}`, { cause: err });
  });
  return parseImageCatalog(text, override);
}

/** The entry called `name`, or undefined. */
export function lookupImageEntry(catalog: ImageCatalog, name: string): ImageCatalogEntry | undefined {
  return catalog.entries.find((e) => e.name === name);
}

/** The entry called `name`; `not_found` listing what the catalog holds. */
export function findImageEntry(catalog: ImageCatalog, name: string): ImageCatalogEntry {
  const entry = lookupImageEntry(catalog, name);
  if (!entry) {
    const names = catalog.entries.map((e) => e.name);
    throw notFound(`image ${name} is not in the catalog; available: ${names.join(', ') || '(none)'}`, {
      hint: 'see `banger image catalog`, or pull an OCI reference such as docker.io/library/debian:bookworm',
    });
  }
  return entry;
}
