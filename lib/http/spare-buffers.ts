/**
 * Read buffers kept for reuse once their user is done with them (serve-item.ts sends item bytes
 * through them). A response's buffers live as long as it does — seconds to minutes for a big file —
 * so by its end V8 has moved them to the old generation, where they wait for a full collection
 * (which a daemon that allocates little may not run for minutes) and then leave holes in malloc's
 * heap that are not given back: serving 1 GiB to 8 peers at once, each round added ~4 MiB of RSS
 * that stayed. Reused, they cost their size once.
 */
export class SpareBuffers {
  private readonly spare: Buffer[] = [];

  /** `size`: bytes of each buffer; `keep`: spare buffers kept at most (more are left to the GC) */
  constructor(readonly size: number, private readonly keep: number) {}

  take(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafe(this.size);
  }

  /** Only a buffer that nothing reads into or writes from any more. */
  give(buf: Buffer): void {
    if (buf.length === this.size && this.spare.length < this.keep) this.spare.push(buf);
  }

  /** spare buffers held now */
  get held(): number {
    return this.spare.length;
  }
}
