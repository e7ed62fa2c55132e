import { join } from 'node:path';
import { packageRoot } from '../../config/index.js';
import { notFound } from '../../model/errors.js';
import { loadCatalog, parseCatalog } from '../common.js';
import { type KernelCatalog, type KernelCatalogEntry, kernelCatalogSchema } from './schema.js';

/** The catalog shipped with banger. */
export function embeddedKernelCatalogPath(): string {
  return join(packageRoot(), 'src', 'catalog', 'kernels', 'catalog.json');
}

/** Validates catalog JSON text; `origin` names where it came from in errors. */
export function parseKernelCatalog(text: string, origin: string): KernelCatalog {
  return parseCatalog('kernel', kernelCatalogSchema, text, origin);
}

/** Loads the kernel catalog: the embedded one, or the `kernel_catalog` override (an https URL or a file path). */
export function loadKernelCatalog(
  options: { override?: string | undefined; fetch?: typeof fetch } = {},
): Promise<KernelCatalog> {
  return loadCatalog('kernel', kernelCatalogSchema, embeddedKernelCatalogPath(), options);
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
