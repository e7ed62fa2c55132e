import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { packageRoot } from '../../config/index.js';
import { badRequest, notFound, operationFailed } from '../../model/errors.js';
import { type KernelCatalog, type KernelCatalogEntry, kernelCatalogSchema } from './schema.js';

/** A catalog larger than this is not a catalog. */
const MAX_CATALOG_BYTES = 4 * 1024 * 1024;

/** The catalog shipped with banger. */
export function embeddedKernelCatalogPath(): string {
  return join(packageRoot(), 'src', 'catalog', 'kernels', 'catalog.json');
}

/** Validates catalog JSON text; `origin` names where it came from in errors. */
export function parseKernelCatalog(text: string, origin: string): KernelCatalog {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw badRequest(`kernel catalog ${origin} is not JSON`, { cause: err });
  }
  const parsed = kernelCatalogSchema.safeParse(json);
  if (!parsed.success) {
    throw badRequest(`kernel catalog ${origin} is invalid: ${z.prettifyError(parsed.error)}`, {
      hint: 'fix the file or the kernel_catalog setting in config.toml',
    });
  }
  return parsed.data;
}

async function fetchText(url: string, fetchImpl: typeof fetch): Promise<string> {
  const res = await fetchImpl(url, { redirect: 'follow' }).catch((err: unknown) => {
    throw operationFailed(`cannot fetch kernel catalog ${url}`, { cause: err });
  });
  if (!res.ok) throw operationFailed(`cannot fetch kernel catalog ${url}: HTTP ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  if (body.length > MAX_CATALOG_BYTES) throw operationFailed(`kernel catalog ${url} is larger than 4 MiB`);
  return body.toString('utf8');
}

/**
 * Loads the kernel catalog: the embedded one, or the `kernel_catalog` override (an https URL or a file path).
 * Plain http is accepted only for loopback (local tests and mirrors on this machine).
 */
export async function loadKernelCatalog(
  options: { override?: string | undefined; fetch?: typeof fetch } = {},
): Promise<KernelCatalog> {
  const override = options.override?.trim();
  if (!override) return parseKernelCatalog(await readFile(embeddedKernelCatalogPath(), 'utf8'), 'embedded');
  if (/^https?:\/\//.test(override)) {
    const url = new URL(override);
    if (url.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
      throw badRequest(`kernel catalog ${override} must use https`);
    }
    return parseKernelCatalog(await fetchText(override, options.fetch ?? fetch), override);
  }
  const text = await readFile(override, 'utf8').catch((err: unknown) => {
    throw badRequest(`cannot read kernel catalog ${override}`, { cause: err });
  });
  return parseKernelCatalog(text, override);
}

/** The entry called `name`; `not_found` listing what is available. */
export function findCatalogEntry(catalog: KernelCatalog, name: string): KernelCatalogEntry {
  const entry = catalog.entries.find((e) => e.name === name);
  if (!entry) {
    const names = catalog.entries.map((e) => e.name);
    throw notFound(`kernel ${name} is not in the catalog; available: ${names.join(', ') || '(none)'}`, {
      hint: 'see `banger kernel list --available`, or import your own with `banger kernel import`',
    });
  }
  return entry;
}
