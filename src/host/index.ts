export * from './runner.js';
export { findExecutable } from './which.js';
