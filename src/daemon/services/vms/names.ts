import { randomBytes, randomInt } from 'node:crypto';

const ADJECTIVES = [
  'amber',
  'bold',
  'brave',
  'brisk',
  'calm',
  'clever',
  'cosy',
  'crisp',
  'eager',
  'fair',
  'fond',
  'gentle',
  'glad',
  'grand',
  'happy',
  'hardy',
  'keen',
  'kind',
  'lively',
  'lucky',
  'merry',
  'mild',
  'neat',
  'nimble',
  'noble',
  'plucky',
  'proud',
  'quick',
  'quiet',
  'rapid',
  'ready',
  'shy',
  'sleek',
  'snug',
  'steady',
  'sunny',
  'swift',
  'tidy',
  'vivid',
  'warm',
  'wise',
  'witty',
  'zesty',
];
const ANIMALS = [
  'badger',
  'bison',
  'crane',
  'dingo',
  'eagle',
  'ferret',
  'finch',
  'gecko',
  'heron',
  'ibis',
  'jackal',
  'koala',
  'lemur',
  'llama',
  'lynx',
  'marten',
  'mole',
  'newt',
  'ocelot',
  'orca',
  'otter',
  'panda',
  'puffin',
  'quail',
  'raven',
  'robin',
  'seal',
  'shrew',
  'sloth',
  'stoat',
  'swan',
  'tapir',
  'toad',
  'trout',
  'vole',
  'walrus',
  'wombat',
  'wren',
  'yak',
  'zebra',
];

const pick = (list: readonly string[]) => list[randomInt(list.length)] as string;

/**
 * A free `adjective-animal` name (a DNS label, so it works as `<name>.vm` and as the hostname); a numeric
 * suffix once the plain pairs keep colliding.
 */
export function generateVmName(taken: (name: string) => boolean): string {
  for (let i = 0; i < 50; i++) {
    const name = `${pick(ADJECTIVES)}-${pick(ANIMALS)}`;
    if (!taken(name)) return name;
  }
  for (;;) {
    const name = `${pick(ADJECTIVES)}-${pick(ANIMALS)}-${randomInt(1000, 10000)}`;
    if (!taken(name)) return name;
  }
}

/** VM ids: 16 hex digits, short enough that socket paths under the VM dir fit sun_path. */
export const newVmId = (): string => randomBytes(8).toString('hex');

/** A locally administered unicast MAC derived from the VM id, stable across restarts. */
export function macFor(vmId: string): string {
  const hex = vmId.padEnd(10, '0').slice(0, 10);
  const bytes = hex.match(/../g) as string[];
  return ['02', ...bytes].join(':');
}
