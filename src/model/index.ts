export * from './errors.js';
export type * from './guest-asset.js';
export type * from './identity.js';
export * from './image.js';
export type * from './layer.js';
export * from './names.js';
export * from './progress.js';
export * from './sizes.js';
export * from './vm.js';
