import type { Image } from '../../model/image.js';
import type { VM } from '../../model/vm.js';

/** What an agent needs of a VM (no host paths or teardown identities). */
export const vmSummary = (vm: VM, imageName?: string) => ({
  name: vm.name,
  id: vm.id,
  state: vm.state,
  image: imageName ?? vm.imageId,
  guestIp: vm.runtime.guestIp ?? null,
  vcpu: vm.spec.vcpu,
  memoryMib: vm.spec.memoryMib,
  nat: vm.spec.nat,
  createdBy: vm.createdBy ?? null,
  createdAt: vm.createdAt,
});

export const imageSummary = (image: Image) => ({
  name: image.name,
  id: image.id,
  sizeBytes: image.sizeBytes,
  createdAt: image.createdAt,
});
