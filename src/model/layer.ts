import type { Readable } from 'node:stream';

/**
 * One filesystem layer as the rootfs builder consumes it: a (possibly compressed) tar stream, opened on
 * demand. OCI registry layers, cached blobs, catalog bundles and user tarballs all look like this, so the
 * rootfs pipeline never knows where bytes come from.
 */
export interface LayerSource {
  /** `sha256:<hex>` when known; used in messages and the fidelity report. */
  digest?: string;
  /** OCI/Docker media type when known; compression is detected from magic bytes regardless. */
  mediaType?: string;
  /** Compressed size in bytes when known, for progress. */
  size?: number;
  /** A fresh stream of the layer's bytes, from the start. */
  open(): Promise<Readable>;
}
