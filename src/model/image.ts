import { z } from 'zod';

/** Where an image came from; shown by `image show`. */
export const imageSourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('oci'), reference: z.string(), digest: z.string(), platform: z.string() }),
  z.object({ kind: z.literal('bundle'), url: z.string(), sha256: z.string() }),
  z.object({ kind: z.literal('recipe'), recipe: z.string() }),
  z.object({ kind: z.literal('tar'), file: z.string() }),
  z.object({ kind: z.literal('registered') }),
]);

/** The files an image boots from. Managed images own them under <imagesDir>/<id>/. */
export const imageArtifactsSchema = z.object({
  rootfsPath: z.string(),
  kernelRef: z.string().optional(),
  kernelPath: z.string().optional(),
  initrdPath: z.string().optional(),
  modulesDir: z.string().optional(),
  /** The rootfs builder's fidelity report (JSON). */
  reportPath: z.string().optional(),
});

/** The parts of an OCI image config that `vm run IMAGE -- cmd` uses. */
export const imageConfigSchema = z.object({
  env: z.array(z.string()).optional(),
  entrypoint: z.array(z.string()).optional(),
  cmd: z.array(z.string()).optional(),
  workingDir: z.string().optional(),
  user: z.string().optional(),
});

export const imageSchema = z.object({
  id: z.string(),
  name: z.string(),
  managed: z.boolean(),
  source: imageSourceSchema,
  artifacts: imageArtifactsSchema,
  config: imageConfigSchema,
  sizeBytes: z.number().int().nonnegative(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export type ImageSource = z.infer<typeof imageSourceSchema>;
export type ImageArtifacts = z.infer<typeof imageArtifactsSchema>;
export type ImageConfig = z.infer<typeof imageConfigSchema>;
export type Image = z.infer<typeof imageSchema>;
