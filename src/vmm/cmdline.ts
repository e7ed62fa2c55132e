/** Kernel command line helpers shared by both drivers. */

/** The serial console is how the console log fills; a caller that forgot it would get an empty log. */
export function withConsole(cmdline: string): string {
  return /(^|\s)console=/.test(cmdline) ? cmdline : `console=ttyS0 ${cmdline}`;
}
