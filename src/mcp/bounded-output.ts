/**
 * One stream of a command's output kept within a byte budget: the first half and the last half of the
 * budget are kept (a build's first error and its summary both matter), the middle is counted and dropped.
 * Memory stays at about the budget however much the command prints.
 */
export class BoundedOutput {
  readonly #headMax: number;
  readonly #tailMax: number;
  #head: Buffer[] = [];
  #headBytes = 0;
  #tail: Buffer[] = [];
  #tailBytes = 0;
  #total = 0;

  constructor(maxBytes: number) {
    this.#headMax = Math.ceil(maxBytes / 2);
    this.#tailMax = maxBytes - this.#headMax;
  }

  write(chunk: Buffer): void {
    this.#total += chunk.length;
    let rest = chunk;
    if (this.#headBytes < this.#headMax) {
      const take = rest.subarray(0, this.#headMax - this.#headBytes);
      this.#head.push(take);
      this.#headBytes += take.length;
      rest = rest.subarray(take.length);
    }
    if (rest.length === 0 || this.#tailMax === 0) return;
    this.#tail.push(rest);
    this.#tailBytes += rest.length;
    // Compact only when twice over budget, so a stream of small chunks is not copied per chunk.
    if (this.#tailBytes > 2 * this.#tailMax) this.#compactTail();
  }

  #compactTail(): void {
    const all = Buffer.concat(this.#tail);
    const keep = all.subarray(all.length - Math.min(all.length, this.#tailMax));
    this.#tail = [keep];
    this.#tailBytes = keep.length;
  }

  /** Bytes the command wrote to this stream. */
  get totalBytes(): number {
    return this.#total;
  }

  /** True when bytes were dropped. */
  get truncated(): boolean {
    return this.#total > this.#headMax + this.#tailMax;
  }

  /** The kept text; when bytes were dropped, a marker line in their place says how many. */
  text(): string {
    const head = Buffer.concat(this.#head);
    if (!this.truncated) return Buffer.concat([head, ...this.#tail]).toString('utf8');
    this.#compactTail();
    const tail = this.#tail[0] ?? Buffer.alloc(0);
    const first = utf8Prefix(head);
    const last = utf8Suffix(tail);
    const dropped = this.#total - Buffer.byteLength(first) - Buffer.byteLength(last);
    return `${first}\n[… ${dropped} bytes omitted …]\n${last}`;
  }
}

/** `buf` less a multi-byte character cut at its end. */
export function utf8Prefix(buf: Buffer): string {
  let end = buf.length;
  // Walk back over continuation bytes to the last lead byte; drop it if its sequence is incomplete.
  let i = end - 1;
  while (i >= 0 && i > end - 4 && ((buf[i] ?? 0) & 0xc0) === 0x80) i--;
  if (i >= 0) {
    const lead = buf[i] ?? 0;
    const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (end - i < need) end = i;
  }
  return buf.subarray(0, end).toString('utf8');
}

/** `buf` less the continuation bytes of a character cut at its start. */
export function utf8Suffix(buf: Buffer): string {
  let start = 0;
  while (start < buf.length && start < 3 && ((buf[start] ?? 0) & 0xc0) === 0x80) start++;
  return buf.subarray(start).toString('utf8');
}
