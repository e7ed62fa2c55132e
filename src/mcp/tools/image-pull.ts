import { z } from 'zod';
import { defineTool } from '../tool.js';
import { pullShape } from './schemas.js';
import { imageSummary } from './summaries.js';

export const imagePullTool = () =>
  defineTool({
    name: 'image_pull',
    title: 'Pull an image',
    description:
      'Fetch a catalog image by name, or an OCI image reference (e.g. docker.io/library/alpine:3.20).',
    input: z.strictObject({
      ref: pullShape.ref.describe('a catalog name or an OCI reference'),
      name: pullShape.name.describe('store it under this name (default: derived from ref)'),
      platform: pullShape.platform.describe('OCI platform, e.g. linux/amd64'),
    }),
    // Progress (stages, bytes) goes to an MCP client that sent a progressToken.
    async run(args, ctx, signal, onProgress) {
      const client = await ctx.client();
      const { image } = await client.call('image.pull', args, { signal, onProgress });
      return { image: imageSummary(image) };
    },
  });
