/**
 * OCI images from any distribution registry: reference parsing, the registry client (auth, manifests,
 * platform choice) and the content-addressed blob cache. The images service builds one puller in the
 * composition root and hands its `PulledImage.layers` to the rootfs builder.
 */
export { type Credentials, createCredentialSource } from './auth/credentials.js';
export { type BlobCache, createBlobCache } from './cache.js';
export { MEDIA } from './media-types.js';
export {
  choosePlatform,
  DEFAULT_PLATFORM,
  formatPlatform,
  type Platform,
  parsePlatform,
} from './platform.js';
export {
  createOciPuller,
  type OciPuller,
  type OciPullerDeps,
  type PulledImage,
  type PullOptions,
} from './puller.js';
export { DOCKER_HUB, DOCKER_HUB_API, type ImageReference, parseReference } from './reference.js';
export { isLoopback, MAX_MANIFEST_BYTES, transportFor } from './registry.js';
