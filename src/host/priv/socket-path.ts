/**
 * Where `banger system install|run` puts the helper's socket (the directory root-owned 0711). Its own module so
 * the CLI's `system` commands get it without loading the helper protocol's zod schemas on every `banger` call.
 */
export const PRIV_HELPER_DEFAULT_SOCKET = '/run/banger-root/bangerd-root.sock';
