/**
 * Bounded concurrency per key (a peer's address:port, a CDN's host:port): `run(key, fn)` waits for
 * one of the key's `limit` slots, runs fn, frees the slot — or earlier, when fn calls the `release`
 * it is given (a download whose last byte is in no longer needs the host while it is fsynced).
 * Waiters are served in arrival order.
 */
export class HostSlots {
  readonly #busy = new Map<string, number>();
  readonly #waiting = new Map<string, Array<() => void>>();

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`slot limit must be a whole number ≥ 1, got ${limit}`);
  }

  async run<T>(key: string, fn: (release: () => void) => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#take(key, signal);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.#give(key);
    };
    try {
      return await fn(release);
    } finally {
      release();
    }
  }

  /** Slots in use for a key plus the runs waiting for one: how busy that host is. */
  load(key: string): number {
    return (this.#busy.get(key) ?? 0) + (this.#waiting.get(key)?.length ?? 0);
  }

  #take(key: string, signal?: AbortSignal): Promise<void> {
    const n = this.#busy.get(key) ?? 0;
    if (n < this.limit) {
      this.#busy.set(key, n + 1);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const q = this.#waiting.get(key) ?? [];
      this.#waiting.set(key, q);
      const onAbort = () => {
        const i = q.indexOf(go);
        if (i >= 0) q.splice(i, 1);
        reject(signal?.reason ?? new Error('aborted'));
      };
      const go = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(); // the slot was handed over by #give: the count stays
      };
      q.push(go);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #give(key: string): void {
    const q = this.#waiting.get(key);
    const next = q?.shift();
    if (q && !q.length) this.#waiting.delete(key);
    if (next) return next();
    const n = (this.#busy.get(key) ?? 1) - 1;
    if (n <= 0) this.#busy.delete(key);
    else this.#busy.set(key, n);
  }
}

/** The key a URL's connection pool is known by: scheme, host and port. */
export function hostKey(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}
