/** What the rest of passim sees of the store. The http and control parts depend only on this. */
import type { Readable } from 'node:stream';

export interface ItemInfo {
  /** sha256, 64 lowercase hex */
  hash: string;
  basename: string;
  /** absolute path of the bytes on disk */
  path: string;
  size: number;
  /** seconds; 0 = never expires (static-dir items) */
  maxAge: number;
  /** times it may be served to peers; 0 = unlimited (static-dir items) */
  shareLimit: number;
  /** times served to non-loopback peers so far */
  shareCount: number;
  /** publish (creation) time, ms since the epoch */
  created: number;
  /** the command line of the publisher, if known */
  cmdline?: string;
  /** published with --next-reboot: disabled (HTTP 423, not advertised) until the machine reboots */
  nextReboot: boolean;
  /** true while nextReboot holds and the boot has not changed */
  disabled: boolean;
  /** from a passim.d static dir: never deleted, never expires */
  static: boolean;
}

export interface PublishOptions {
  basename: string;
  /** default DEFAULT_MAX_AGE (lib/core/defaults.ts) */
  maxAge?: number;
  /** default DEFAULT_SHARE_LIMIT (lib/core/defaults.ts) */
  shareLimit?: number;
  nextReboot?: boolean;
  cmdline?: string;
  /** if given, the received bytes must hash to this or the publish fails with ChecksumMismatchError */
  expectedSha256?: string;
}

export type RemoveReason = 'unpublished' | 'expired' | 'share-limit' | 'static-gone' | 'corrupt';

export interface Savings {
  /** bytes served to peers, all time */
  downloadSaving: number;
  /** kg CO2e: downloadSaving × CarbonCost / 1024³ */
  carbonSaving: number;
}

/** Events: 'added' (item), 'removed' (item, reason), 'changed' (item: disabled state or share count). */
export interface ItemStore {
  get(hash: string): ItemInfo | undefined;
  list(): ItemInfo[];
  /** how many items are held */
  readonly size: number;
  /** hashes that should be advertised over mDNS now (enabled items, static included) */
  advertisedHashes(): string[];
  /** `sizeHint`: how big the source says it is (a big one is written by a worker) */
  publish(source: Readable, opts: PublishOptions, sizeHint?: number): Promise<ItemInfo>;
  unpublish(hash: string): Promise<ItemInfo>;
  /**
   * Called by the HTTP server after a complete response of `bytes` to a non-loopback peer:
   * counts a share, logs SHARE, adds to the savings, and deletes the item once the count
   * reaches its share-limit.
   */
  recordShare(hash: string, peerAddress: string, bytes: number): Promise<void>;
  /**
   * Reserves one share before serving, so that N concurrent peers of an item with share-limit
   * L get at most L full downloads. Returns false when no share is left. Release with
   * releaseShare() if the response did not complete.
   */
  reserveShare(hash: string): boolean;
  releaseShare(hash: string): void;
  savings(): Savings;
  on(event: 'added', fn: (item: ItemInfo) => void): this;
  on(event: 'removed', fn: (item: ItemInfo, reason: RemoveReason) => void): this;
  on(event: 'changed', fn: (item: ItemInfo) => void): this;
}

/** How the daemon (and tests) construct the real store in lib/store/store.ts: `new Store(opts)`, then `await store.load()`. */
export interface StoreOptions {
  /** audit log at <stateDir>/log/audit.log; persisted share counts under stateDir */
  stateDir: string;
  /** where items live; default <stateDir>/data (upstream's Path=) */
  dataDir?: string;
  /** dir holding passim.d/*.conf static-dir configs; undefined = no static dirs */
  configDir?: string;
  /** bytes; default DEFAULT_MAX_ITEM_SIZE (lib/core/defaults.ts) */
  maxItemSize?: number;
  /** kg/GB; default DEFAULT_CARBON_COST (lib/core/defaults.ts) */
  carbonCost?: number;
  /** clock in ms, injectable so expiry is tested without sleeping */
  now?: () => number;
  /** the current boot id (btime line of /proc/stat); injectable for next-reboot tests */
  bootTime?: () => string;
  logger?: import('../core/logger.js').Logger;
  /** where item metadata goes: 'auto' (default) = xattrs if the data dir's filesystem takes them, else a sidecar */
  metadata?: 'auto' | 'xattr' | 'sidecar';
  /** ms between expiry runs once startTimers() is called; default 60 000 */
  expiryIntervalMs?: number;
  /** ms between static-dir rescans once startTimers() is called; default 60 000 */
  rescanIntervalMs?: number;
  /** ms to wait after a change in passim.d or a static dir before rescanning; default 200 */
  watchDebounceMs?: number;
}
