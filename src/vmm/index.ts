/**
 * VMM drivers behind one interface: QEMU (microvm machine, or q35 for kernels without virtio-mmio; KVM when
 * it really works, TCG otherwise) and Firecracker (API over its unix socket, jailer optional). The daemon
 * probes the host, picks a driver with chooseVmm and a machine with chooseMachine, builds the driver with
 * buildVmm, and reattaches running VMs with adopt after a restart.
 */
export { type BuildVmmDeps, buildVmm, preferredAgentTransport } from './build.js';
export { chooseVmm, type VmmChoice } from './choose.js';
export { CONSOLE_LOG_MAX_BYTES } from './console.js';
export { type AccelerationReport, type DescribeAccelerationDeps, describeAcceleration } from './doctor.js';
export { firecrackerConfigCalls, firecrackerRunFiles } from './firecracker/config.js';
export {
  createFirecrackerVmm,
  type FirecrackerDriverDeps,
  preflightFirecracker,
} from './firecracker/driver.js';
export { type HostProbe, type HostProbeDeps, hostTscKhz, probeHost } from './host-probe.js';
export {
  createKvmProbeCache,
  KVM_PROBE_TIMEOUT_MS,
  type KvmProbeCache,
  type KvmProbeOptions,
  type KvmVerdict,
  kvmProbeCachePath,
  kvmProbeKey,
  probeKvm,
  readOnlyKvmProbeCache,
} from './kvm-probe.js';
export { chooseMachine, type MachineCapabilities } from './machine.js';
export { plannedVmmProcess, processAlive, vmmPidFile } from './process.js';
export { buildQemuCommand, qemuRunFiles } from './qemu/args.js';
export { createQemuVmm, type QemuDriverDeps } from './qemu/driver.js';
export {
  type Accel,
  type DiskFormat,
  type KernelFeatures,
  MACHINES,
  type Machine,
  type Vmm,
  type VmmCapabilities,
  type VmmDisk,
  type VmmExit,
  type VmmHandles,
  type VmmInstance,
  type VmmKind,
  type VmmLaunchSpec,
  type VmmStopOptions,
  vmmHandlesSchema,
} from './types.js';
