import { z } from 'zod';
import { vmSchema } from '../../model/vm.js';
import { method, noParams } from './define.js';

/** `vm.*` methods. */
export const vmMethods = {
  'vm.list': method({
    params: noParams,
    result: z.object({ vms: z.array(vmSchema) }),
    summary: 'Every VM in the store, any state.',
  }),
} as const;
