import type { CallOptions, MethodName, Params, Result, RpcClient } from '../rpc/index.js';

/**
 * Every daemon method the SDK calls. `satisfies` ties it to the daemon's method table (src/rpc/protocol.ts):
 * a method renamed or removed there fails the typecheck here, and the SDK's `call` takes only these names
 * with the table's inferred params and result types, so the SDK cannot drift from what the daemon serves
 * (test/unit/sdk-methods.test.ts checks the same at run time).
 */
export const SDK_METHODS = [
  'ping',
  'vm.list',
  'vm.show',
  'vm.create',
  'vm.run',
  'vm.exec',
  'vm.stop',
  'vm.start',
  'vm.delete',
  'vm.ports',
  'vm.stats',
  'vm.files.read',
  'vm.files.write',
  'vm.files.list',
  'forward.add',
  'forward.remove',
  'forward.list',
  'image.list',
  'image.pull',
  'image.import',
] as const satisfies readonly MethodName[];

export type SdkMethod = (typeof SDK_METHODS)[number];

/** The one way the SDK reaches the daemon: the table's types, only the methods above. */
export type SdkCall = <M extends SdkMethod>(
  method: M,
  params: Params<M>,
  options?: CallOptions,
) => Promise<Result<M>>;

export function sdkCall(client: () => Promise<RpcClient>): SdkCall {
  return async (method, params, options) => (await client()).call(method, params, options);
}
