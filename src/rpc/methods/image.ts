import { z } from 'zod';
import { imageSchema } from '../../model/image.js';
import { method, noParams } from './define.js';

/** `image.*` methods. */
export const imageMethods = {
  'image.list': method({
    params: noParams,
    result: z.object({ images: z.array(imageSchema) }),
    summary: 'Every image in the store.',
  }),
} as const;
