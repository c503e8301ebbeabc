/**
 * Watches a set of directories (passim.d and each static dir) and calls back, debounced, after
 * anything in them changes. The set is replaced with sync() after each rescan.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../core/logger.js';

export const DEFAULT_DEBOUNCE_MS = 200;

export class DirWatcher {
  private watchers = new Map<string, FSWatcher>();
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly onChange: () => void,
    private readonly debounceMs = DEFAULT_DEBOUNCE_MS,
    private readonly log?: Logger,
  ) {}

  private kick = (): void => {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) this.onChange();
    }, this.debounceMs);
    this.timer.unref();
  };

  /**
   * Watches exactly `dirs` from now on (missing dirs are skipped; the periodic rescan covers them).
   * A dir watched for the first time may have changed between the scan that found it and this
   * watch starting, so that case schedules one more (debounced) rescan: nothing created in the
   * gap waits for the periodic rescan.
   */
  sync(dirs: Iterable<string>): void {
    if (this.closed) return;
    const want = new Set(dirs);
    for (const [dir, w] of this.watchers) {
      if (!want.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    let added = false;
    for (const dir of want) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, this.kick);
        w.on('error', (err) => {
          this.log?.debug(`watch ${dir}: ${err.message}`);
          w.close();
          if (this.watchers.get(dir) === w) this.watchers.delete(dir);
          this.kick();
        });
        this.watchers.set(dir, w);
        added = true;
      } catch (err) {
        this.log?.debug(`cannot watch ${dir}: ${(err as Error).message}`);
      }
    }
    if (added) this.kick();
  }

  watched(): string[] {
    return [...this.watchers.keys()];
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
