import type { FileService } from '../services/files/index.js';
import type { HandlerGroup } from './types.js';

/** `vm.files.*` handlers: thin, each calls one file-service function; bytes travel base64. */
export function fileHandlers(deps: { files: FileService }): HandlerGroup<'vm.files'> {
  const { files } = deps;
  return {
    'vm.files.read': async ({ ref, path }, ctx) => {
      const data = await files.read(ref, path, { signal: ctx.signal });
      return { data: data.toString('base64'), size: data.length };
    },
    'vm.files.write': async ({ ref, path, data, mode, uid, gid }, ctx) => {
      const buf = Buffer.from(data, 'base64');
      await files.write(ref, path, buf, { mode, uid, gid, signal: ctx.signal });
      return { size: buf.length };
    },
    'vm.files.list': async ({ ref, path }, ctx) => files.list(ref, path, { signal: ctx.signal }),
  };
}
