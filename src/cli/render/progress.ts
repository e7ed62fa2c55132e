import type { ProgressEvent } from '../../model/progress.js';
import { formatSize } from '../../model/sizes.js';
import { colorsFor } from './color.js';

/**
 * Renders progress events on stderr: on a TTY one line that redraws in place (stage, bytes, bar), as plain
 * lines otherwise (one per stage, byte counts at most every 10%), so logs and pipes stay readable.
 */
export function createProgressRenderer(stream: NodeJS.WriteStream = process.stderr) {
  const tty = Boolean(stream.isTTY);
  const c = colorsFor(stream);
  let open = false;
  const lastPercent = new Map<string, number>();

  const clear = () => {
    if (tty && open) stream.write('\r\x1b[2K');
    open = false;
  };

  const render = (event: ProgressEvent) => {
    switch (event.kind) {
      case 'stage':
        clear();
        stream.write(`${c.cyan('•')} ${event.stage}${event.message ? `: ${event.message}` : ''}\n`);
        break;
      case 'log':
        clear();
        stream.write(`${event.level === 'warn' ? c.yellow('warning:') : c.dim('note:')} ${event.message}\n`);
        break;
      case 'bytes': {
        const label = event.item ? `${event.stage} ${shortDigest(event.item)}` : event.stage;
        const amount = event.total
          ? `${formatSize(event.done)} / ${formatSize(event.total)}`
          : formatSize(event.done);
        if (tty) {
          const bar = event.total ? ` ${progressBar(event.done / event.total, 20)}` : '';
          stream.write(`\r\x1b[2K  ${label}${bar} ${amount}`);
          open = true;
        } else if (event.total) {
          const percent = Math.floor((event.done / event.total) * 10) * 10;
          if (percent > (lastPercent.get(label) ?? -1)) {
            lastPercent.set(label, percent);
            stream.write(`  ${label} ${amount} (${percent}%)\n`);
          }
        }
        break;
      }
    }
  };

  return { render, done: clear };
}

function shortDigest(item: string): string {
  return item.startsWith('sha256:') ? item.slice(7, 19) : item;
}

function progressBar(fraction: number, width: number): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}
