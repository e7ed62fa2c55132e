/** Port forwards (issue 17): host TCP ports relayed to guest ports through each VM's agent. */
export {
  createForwardService,
  type ForwardInfo,
  type ForwardList,
  type ForwardReservation,
  type ForwardService,
  type ForwardServiceDeps,
} from './service.js';
export { DEFAULT_HOST_ADDRESS, type ForwardSpec, hostEndpoint, parseForwardSpec } from './spec.js';
