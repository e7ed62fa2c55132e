import { badRequest } from '../../model/errors.js';

/**
 * The image is not something this reader will read: damaged, hostile, or built with a feature it does not
 * know. Always bad_request: the image is the caller's input, and nothing of it was written anywhere.
 */
export function refuseImage(image: string, why: string): Error {
  return badRequest(`cannot read the ext4 filesystem in ${image}: ${why}`, {
    hint: `check the image with: e2fsck -fn ${image}`,
  });
}
