import type { Command as CommanderCommand } from 'commander';
import type { RpcClient } from '../rpc/index.js';

type NameSource = 'vm' | 'image' | 'kernel';

/**
 * Which live names an argument completes to, by the argument's name: every VM verb names its operand
 * `<vm>` or `<vm...>`, image verbs `<image>`, kernel verbs `<kernel>`; `[image]` of `vm run` too.
 */
function sourceFor(argName: string): NameSource | undefined {
  if (/^(vm|vms|ref|refs)$/.test(argName)) return 'vm';
  if (/^images?$/.test(argName)) return 'image';
  if (/^kernels?$/.test(argName)) return 'kernel';
  return undefined;
}

/**
 * Whether this call may need the completion commands: `completion`, `complete`, or a help listing that
 * shows them. Any other call (`vm list`, `vm run`, …) leaves the completion library unloaded: loading it cost
 * every call several milliseconds (issue 20).
 */
export function wantsCompletion(argv: readonly string[]): boolean {
  const args = argv.slice(2);
  if (args.length === 0) return true;
  return args.some((a) => ['complete', 'completion', 'help', '--help', '-h'].includes(a));
}

/**
 * Adds `banger completion bash|zsh|fish|powershell` and the hidden `complete -- …` protocol, when the call
 * may use them (wantsCompletion). Names of VMs, images and kernels come from the daemon when it answers;
 * when it does not, completion offers nothing rather than starting one.
 */
export async function installCompletion(
  program: CommanderCommand,
  client: RpcClient,
  argv: readonly string[],
): Promise<void> {
  if (!wantsCompletion(argv)) return;
  const { default: tab } = await import('@bomb.sh/tab/commander');
  const root = tab(program, { completionCommandName: 'completion' });
  if (!argv.includes('complete')) return;
  const names = await fetchNames(client);
  for (const command of root.commands.values()) {
    for (const arg of command.arguments.values()) {
      const source = sourceFor(arg.name);
      if (!source) continue;
      arg.handler = (complete) => {
        for (const n of names[source]) complete(n, '');
      };
    }
  }
}

async function fetchNames(client: RpcClient): Promise<Record<NameSource, string[]>> {
  const opts = { timeoutMs: 1000 };
  const [vms, images, kernels] = await Promise.all([
    client
      .call('vm.list', {}, opts)
      .then((r) => r.vms.map((v) => v.name))
      .catch(() => []),
    client
      .call('image.list', {}, opts)
      .then((r) => r.images.map((i) => i.name))
      .catch(() => []),
    // Broken kernels too: `kernel rm` is how a user gets rid of one.
    client
      .call('kernel.list', {}, opts)
      .then((r) => [...r.kernels.map((k) => k.name), ...r.broken.map((b) => b.name)])
      .catch(() => []),
  ]);
  return { vm: vms, image: images, kernel: kernels };
}
