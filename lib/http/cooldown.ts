/**
 * Per (peer address, hash) cooldown: a non-loopback peer that asks for the same hash again within
 * `Cooldown` seconds gets 403 (upstream behaviour). The first request starts the window whatever
 * its outcome; a refused request does not extend it. Memory is bounded: expired entries are swept
 * and past `maxEntries` the oldest entries are dropped.
 */

export interface CooldownOptions {
  /** seconds; 0 disables the cooldown */
  seconds: number;
  /** ms clock */
  now?: () => number;
  /** most (peer, hash) pairs remembered; default 100 000 */
  maxEntries?: number;
}

export class Cooldown {
  /** key → ms timestamp the window ends; insertion order is start order, hence expiry order */
  private readonly until = new Map<string, number>();
  private windowMs: number;
  private readonly now: () => number;
  private readonly maxEntries: number;

  constructor(opts: CooldownOptions) {
    this.windowMs = Math.max(0, opts.seconds) * 1000;
    this.now = opts.now ?? Date.now;
    this.maxEntries = Math.max(1, opts.maxEntries ?? 100_000);
  }

  private static key(peer: string, hash: string): string {
    return `${peer}\u0000${hash}`;
  }

  /**
   * Returns true when `peer` is still cooling down for `hash` (the request must be refused);
   * otherwise starts a new window and returns false.
   */
  hit(peer: string, hash: string): boolean {
    if (this.windowMs === 0) return false;
    const now = this.now();
    const k = Cooldown.key(peer, hash);
    const end = this.until.get(k);
    if (end !== undefined && end > now) return true;
    if (end !== undefined) this.until.delete(k);
    this.until.set(k, now + this.windowMs);
    if (this.until.size > this.maxEntries) this.prune(now);
    return false;
  }

  /** Live config change: new windows use `seconds`; 0 turns the cooldown off and forgets every window. */
  setSeconds(seconds: number): void {
    this.windowMs = Math.max(0, seconds) * 1000;
    if (this.windowMs === 0) this.until.clear();
  }

  /** Forgets a window, e.g. when the response never completed, so the peer may try again. */
  forget(peer: string, hash: string): void {
    this.until.delete(Cooldown.key(peer, hash));
  }

  get size(): number {
    return this.until.size;
  }

  /** Drops expired entries, then the oldest ones while over the cap. */
  prune(now: number = this.now()): void {
    for (const [k, end] of this.until) {
      if (end > now && this.until.size <= this.maxEntries) break;
      this.until.delete(k);
    }
  }

  clear(): void {
    this.until.clear();
  }
}
