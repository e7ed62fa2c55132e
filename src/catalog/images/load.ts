import { join } from 'node:path';
import { packageRoot } from '../../config/index.js';
import { notFound } from '../../model/errors.js';
import { loadCatalog, parseCatalog } from '../common.js';
import { type ImageCatalog, type ImageCatalogEntry, imageCatalogSchema } from './schema.js';

export { checkDownloadUrl } from '../common.js';

/** The catalog shipped with banger. */
export function embeddedImageCatalogPath(): string {
  return join(packageRoot(), 'src', 'catalog', 'images', 'catalog.json');
}

/** Validates catalog JSON text; `origin` names where it came from in errors. */
export function parseImageCatalog(text: string, origin: string): ImageCatalog {
  return parseCatalog('image', imageCatalogSchema, text, origin);
}

/** Loads the image catalog: the embedded one, or the `image_catalog` override (an https URL or a file path). */
export function loadImageCatalog(
  options: { override?: string | undefined; fetch?: typeof fetch } = {},
): Promise<ImageCatalog> {
  return loadCatalog('image', imageCatalogSchema, embeddedImageCatalogPath(), options);
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
