export {
  buildInitramfs,
  DEFAULT_BUSYBOX,
  type Initramfs,
  type InitramfsOptions,
  initScriptPath,
  isStaticElf,
} from './build.js';
export { type CpioEntry, writeCpio } from './cpio.js';
export {
  EXT4_MODULES,
  type ModuleIndex,
  type ModulePlan,
  parseModuleIndex,
  planModules,
  readModuleIndex,
  STAGE1_MODULES,
} from './modules.js';
