import { badRequest, notFound } from '../../../model/errors.js';
import type { VM } from '../../../model/vm.js';
import type { VmRepository } from '../../../store/index.js';

/** A VM by id, then name, then a unique id or name prefix (as the original resolves refs). */
export function resolveVm(vms: VmRepository, ref: string): VM {
  if (!ref) throw badRequest('empty VM reference');
  const exact = vms.findById(ref) ?? vms.findByName(ref);
  if (exact) return exact;
  const matches = vms.list().filter((v) => v.id.startsWith(ref) || v.name.startsWith(ref));
  if (matches.length === 1) return matches[0] as VM;
  if (matches.length > 1) {
    throw badRequest(
      `${JSON.stringify(ref)} matches ${matches.length} VMs: ${matches.map((v) => v.name).join(', ')}`,
      {
        hint: 'give more of the name or id',
      },
    );
  }
  throw notFound(`no VM ${JSON.stringify(ref)}`, { hint: 'banger vm list' });
}
