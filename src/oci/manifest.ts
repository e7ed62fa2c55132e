import { z } from 'zod';
import { badRequest, operationFailed } from '../model/errors.js';
import { IMAGE_MANIFEST_TYPES, INDEX_TYPES, MEDIA } from './media-types.js';

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, 'a sha256 digest');

export const descriptorSchema = z.object({
  mediaType: z.string(),
  digest,
  size: z.number().int().nonnegative(),
  platform: z
    .object({
      os: z.string(),
      architecture: z.string(),
      variant: z.string().optional(),
    })
    .optional(),
});

export const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
});

export const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});

/** The parts of the OCI/Docker image config we read; everything else is ignored. */
export const imageConfigBlobSchema = z.object({
  architecture: z.string().optional(),
  os: z.string().optional(),
  variant: z.string().optional(),
  config: z
    .object({
      Env: z.array(z.string()).nullish(),
      Entrypoint: z.array(z.string()).nullish(),
      Cmd: z.array(z.string()).nullish(),
      WorkingDir: z.string().nullish(),
      User: z.string().nullish(),
    })
    .nullish(),
});

export type Descriptor = z.infer<typeof descriptorSchema>;
export type ImageIndex = z.infer<typeof indexSchema>;
export type ImageManifest = z.infer<typeof imageManifestSchema>;
export type ImageConfigBlob = z.infer<typeof imageConfigBlobSchema>;

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; index: ImageIndex }
  | { kind: 'image'; mediaType: string; manifest: ImageManifest };

/**
 * Classifies and validates a manifest body. The media type comes from the body when it has one (OCI
 * allows it to be absent), else from Content-Type. Schema1 and unknown types are refused by name.
 */
export function parseManifest(body: Buffer, contentType: string | undefined, what: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw operationFailed(`manifest of ${what} is not valid JSON`);
  }
  const declared =
    typeof json === 'object' && json !== null && 'mediaType' in json && typeof json.mediaType === 'string'
      ? json.mediaType
      : undefined;
  const schemaVersion =
    typeof json === 'object' && json !== null && 'schemaVersion' in json ? json.schemaVersion : undefined;
  const header = contentType?.split(';')[0]?.trim();
  let mediaType = declared ?? header ?? '';
  if (schemaVersion === 1 || mediaType === MEDIA.dockerSchema1 || mediaType === MEDIA.dockerSchema1Signed) {
    throw badRequest(`${what} uses the Docker schema 1 manifest format, which banger does not support`, {
      hint: 'schema 1 was deprecated in 2017; re-push the image with a current Docker, skopeo or crane',
    });
  }
  // OCI manifests may omit mediaType and registries may send a generic Content-Type: tell by shape.
  if (
    !INDEX_TYPES.includes(mediaType) &&
    !IMAGE_MANIFEST_TYPES.includes(mediaType) &&
    declared === undefined
  ) {
    if (typeof json === 'object' && json !== null && 'manifests' in json) mediaType = MEDIA.ociIndex;
    else if (typeof json === 'object' && json !== null && 'layers' in json) mediaType = MEDIA.ociManifest;
  }
  if (INDEX_TYPES.includes(mediaType)) {
    const r = indexSchema.safeParse(json);
    if (!r.success)
      throw operationFailed(`index of ${what} is malformed: ${r.error.issues[0]?.message ?? ''}`);
    return { kind: 'index', mediaType, index: r.data };
  }
  if (IMAGE_MANIFEST_TYPES.includes(mediaType)) {
    const r = imageManifestSchema.safeParse(json);
    if (!r.success)
      throw operationFailed(`manifest of ${what} is malformed: ${r.error.issues[0]?.message ?? ''}`);
    return { kind: 'image', mediaType, manifest: r.data };
  }
  throw badRequest(`${what} has unsupported manifest media type ${JSON.stringify(mediaType)}`, {
    hint: 'banger pulls OCI images and Docker v2 images (schema 2)',
  });
}
