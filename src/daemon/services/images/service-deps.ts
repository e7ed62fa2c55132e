import type { Logger } from 'pino';
import type { Runner } from '../../../host/index.js';
import type { KernelManager } from '../../../kernel/index.js';
import type { Store } from '../../../store/index.js';
import type { ImagePipelineParts, RootfsLimits } from './contracts.js';

/** What the composition root hands the image service. */
export interface ImageServiceDeps {
  store: Store;
  kernels: KernelManager;
  runner: Runner;
  log: Logger;
  /** Layout.imagesDir */
  imagesDir: string;
  /** Layout.ociDir: measured by `image cache prune --dry-run`. */
  ociDir: string;
  parts: ImagePipelineParts;
  limits: RootfsLimits;
  /** config.image_catalog */
  catalogOverride?: string | undefined;
  /** Where the debootstrap recipe keeps its tree as a tarball between builds (tests; unset in production). */
  recipeCacheDir?: string | undefined;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}
