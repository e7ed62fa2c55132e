import type { guestAssets } from '../../../guest/index.js';
import type { OciPuller } from '../../../oci/index.js';
import type { buildRootfs, injectAssets, writeFidelityReport } from '../../../rootfs/index.js';

export type { OciPuller, PulledImage } from '../../../oci/index.js';
export type { FidelityReport, RootfsLimits } from '../../../rootfs/index.js';

/**
 * What the image service borrows from the rooms below it (rootfs, guest, oci), in one record the
 * composition root fills with the real modules. Tests may hand in others with the same shape.
 */
export interface ImagePipelineParts {
  rootfs: {
    buildRootfs: typeof buildRootfs;
    writeFidelityReport: typeof writeFidelityReport;
    injectAssets: typeof injectAssets;
  };
  guest: { guestAssets: typeof guestAssets };
  puller: OciPuller;
}
