/** Files of a running VM through its guest agent (issue 21). */
export { createFileService, FILE_MAX_BYTES, type FileService, type WriteOptions } from './service.js';
