import type { ForwardService } from '../services/forwards/index.js';
import { parseForwardSpec } from '../services/forwards/index.js';
import type { HandlerGroup } from './types.js';

/** `forward.*` handlers: thin, each calls one service function. */
export function forwardHandlers(deps: {
  forwards: ForwardService;
  vms: { get(ref: string): { id: string; name: string } };
}): HandlerGroup<'forward'> {
  const { forwards, vms } = deps;
  const reply = ({ vm, auto, forwards: list }: Awaited<ReturnType<ForwardService['add']>>) => ({
    name: vm.name,
    auto,
    forwards: list,
  });
  return {
    'forward.list': async ({ ref }) => {
      const vm = vms.get(ref);
      return { name: vm.name, ...forwards.list(vm.id) };
    },
    'forward.add': async ({ ref, specs }) => reply(await forwards.add(ref, specs.map(parseForwardSpec))),
    'forward.remove': async ({ ref, hostPorts }) => reply(await forwards.remove(ref, hostPorts)),
    'forward.auto': async ({ ref, enabled }) => reply(await forwards.setAuto(ref, enabled)),
  };
}
