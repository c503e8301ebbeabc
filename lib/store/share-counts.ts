/**
 * How many times each item was served to peers, and the shares reserved by responses in flight.
 * Counts persist in a small JSON file (upstream keeps them in memory only), written temp + rename;
 * a change is saved within SAVE_DELAY_MS, with every other change made meanwhile: a burst of
 * shares (a batch of small files served to a peer) costs one save per SAVE_DELAY_MS, not one (with
 * two fsyncs) per file. A crash loses at most the counts of that last moment; flush() saves at once.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from '../core/logger.js';
import { isSha256 } from '../core/sha256.js';
import { removeAtomicTemps, writeFileAtomic } from '../core/atomic-write.js';

/** Longest a changed count waits before it is saved (with every change made meanwhile). */
export const SAVE_DELAY_MS = 500;

export class ShareCounts {
  private counts = new Map<string, number>();
  private reserved = new Map<string, number>();
  private writing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private dirty = false;

  constructor(readonly path: string, private readonly log?: Logger) {}

  async load(): Promise<void> {
    await removeAtomicTemps(this.path); // a crash during a save leaves its temp file
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log?.warn(`${this.path}: ${(err as Error).message}`);
      return;
    }
    try {
      const j = JSON.parse(text) as { counts?: Record<string, unknown> };
      for (const [hash, n] of Object.entries(j.counts ?? {})) {
        if (isSha256(hash) && Number.isSafeInteger(n) && (n as number) > 0) this.counts.set(hash.toLowerCase(), n as number);
      }
    } catch (err) {
      this.log?.warn(`${this.path}: ignoring unreadable share counts: ${(err as Error).message}`);
    }
  }

  get(hash: string): number {
    return this.counts.get(hash) ?? 0;
  }

  inFlight(hash: string): number {
    return this.reserved.get(hash) ?? 0;
  }

  /** Takes one share if count + in-flight stays within `limit` (0 = unlimited). */
  reserve(hash: string, limit: number): boolean {
    if (limit > 0 && this.get(hash) + this.inFlight(hash) >= limit) return false;
    this.reserved.set(hash, this.inFlight(hash) + 1);
    return true;
  }

  release(hash: string): void {
    const n = this.inFlight(hash);
    if (n <= 1) this.reserved.delete(hash);
    else this.reserved.set(hash, n - 1);
  }

  /** A completed share: consumes a reservation if there is one, and counts. Returns the new count. */
  increment(hash: string): number {
    this.release(hash);
    const n = this.get(hash) + 1;
    this.counts.set(hash, n);
    this.schedulePersist();
    return n;
  }

  forget(hash: string): void {
    if (this.counts.delete(hash)) this.schedulePersist();
    this.reserved.delete(hash);
  }

  /** Drops counts of items no longer held. */
  retainOnly(held: Set<string>): void {
    let changed = false;
    for (const hash of [...this.counts.keys()]) {
      if (!held.has(hash)) {
        this.counts.delete(hash);
        changed = true;
      }
    }
    if (changed) this.schedulePersist();
  }

  private schedulePersist(): void {
    this.dirty = true;
    if (!this.writing && !this.timer) this.arm();
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.save();
    }, SAVE_DELAY_MS);
    this.timer.unref();
  }

  private save(): Promise<void> {
    this.dirty = false;
    const body = JSON.stringify({ version: 1, counts: Object.fromEntries(this.counts) }) + '\n';
    this.writing = writeFileAtomic(this.path, body, 0o644)
      .catch((err) => this.log?.warn(`cannot save share counts to ${this.path}: ${(err as Error).message}`))
      .finally(() => {
        this.writing = undefined;
        if (this.dirty && !this.timer) this.arm();
      });
    return this.writing;
  }

  /** Resolves once every change so far is on disk (saving now what waits for its delay). */
  async flush(): Promise<void> {
    for (;;) {
      if (this.writing) {
        await this.writing;
        continue;
      }
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      if (!this.dirty) return;
      await this.save();
    }
  }
}
