import { checkAcceleration } from './acceleration.js';
import {
  type Check,
  type CheckResult,
  checkArchitecture,
  checkConfig,
  checkE2fsprogs,
  checkFirecracker,
  checkFirewall,
  checkStore,
  type DoctorContext,
  requireTool,
} from './checks.js';
import { checkDns } from './dns.js';
import { ownerAccessCheck } from './owner-access.js';
import { checkPrivileges } from './privileges.js';

export { aptLine, type CheckResult, type CheckStatus, type DoctorContext } from './checks.js';

/** The checks, in the order they print. Read-only: doctor never migrates or writes anything. */
export const CHECKS: readonly Check[] = [
  checkArchitecture,
  checkAcceleration,
  requireTool('qemu', ['qemu-system-x86_64', '--version'], 'qemu-system-x86'),
  requireTool('qemu-img', ['qemu-img', '--version'], 'qemu-utils'),
  checkFirecracker,
  checkE2fsprogs,
  requireTool('iproute2', ['ip', '-V'], 'iproute2'),
  checkFirewall,
  checkDns,
  requireTool('ssh', ['ssh', '-V'], 'openssh-client'),
  checkStore,
  checkConfig,
  checkPrivileges,
  ownerAccessCheck(),
];

export async function runDoctor(
  ctx: DoctorContext,
  checks: readonly Check[] = CHECKS,
): Promise<CheckResult[]> {
  return Promise.all(checks.map((check) => check(ctx)));
}
