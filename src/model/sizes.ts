import { badRequest } from './errors.js';

const UNITS: Record<string, number> = {
  '': 1024 ** 2, // a bare number means MiB, as the original
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Parses `4G`, `4GiB`, `512MiB`, `4KiB`, `1.5G`; a bare number means MiB. Units are powers of 1024. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw badRequest(`invalid size ${JSON.stringify(text)}`, {
      hint: 'use a number with a unit, e.g. 512MiB or 4G',
    });
  }
  return Math.round(Number(match[1]) * unit);
}

/** Formats bytes the way the CLI shows them: `1.2 GiB`, `512 MiB`, `0 B`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  const text = i === 0 || value >= 100 || Number.isInteger(value) ? value.toFixed(0) : value.toFixed(1);
  return `${text} ${units[i]}`;
}
