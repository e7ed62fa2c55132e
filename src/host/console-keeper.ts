/**
 * A VMM's console, kept on disk within bounds: the VMM writes into a pipe, and this shell loop appends to LOG until it holds MAX bytes, then renames it to LOG.1
 * (replacing the one before) and starts a new LOG. Each file stays at most MAX, and the last MAX bytes are
 * always on disk across the two. It is a process of its own, not the daemon, because VMMs outlive a daemon
 * restart; it ends when the VMM (the pipe's last writer) does. $1 is LOG (relative to its cwd), $2 is MAX.
 * `head -c` reads no byte past the count (the next round gets it); `stdbuf -o0` makes it write each read at
 * once, so `vm logs -f` sees output as it comes rather than in stdio-buffer sized steps.
 */
export const CONSOLE_KEEPER_SCRIPT = `
umask 077
while :; do
  size=$(wc -c < "$1" 2>/dev/null) || size=0
  if [ "$size" -ge "$2" ]; then mv -f "$1" "$1.1"; size=0; fi
  stdbuf -o0 head -c $(($2 - size)) >> "$1" || exit 1
  [ "$(wc -c < "$1")" -lt "$2" ] && exit 0
done`;
