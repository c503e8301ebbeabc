/**
 * The daemon's item store: the items in the data dir and the static dirs, their metadata, publish,
 * unpublish, expiry, share counting, verification and the audit log. Knows nothing of HTTP or mDNS;
 * it emits 'added' (item), 'removed' (item, reason) and 'changed' (item).
 *
 * load() emits no events and leaves no write of its own running: after it resolves, list() /
 * advertisedHashes() are the state, and so is the state dir.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ChecksumMismatchError, ItemExistsError, NotFoundError, PassimError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { statePaths, staticConfDir } from '../core/paths.js';
import { isSha256, normaliseSha256, sha256File } from '../core/sha256.js';
import type { VerifyReply } from '../control/api.js';
import { DirSync } from '../core/atomic-write.js';
import { mapLimit } from '../core/map-limit.js';
import { AuditLog } from './audit-log.js';
import { currentBootTime } from './boot-time.js';
import { isExpired } from './expiry.js';
import { isTempFileName, itemFileName, parseItemFileName } from './item-file.js';
import type { ItemMeta, MetadataBackend } from './item-metadata.js';
import { chooseMetadataBackend } from './metadata-backend.js';
import { streamToTemp } from './publish.js';
import { checkPublishOptions } from './publish-options.js';
import { readDownloadSaving, savingsFor } from './savings.js';
import { DEFAULT_CARBON_COST, DEFAULT_MAX_ITEM_SIZE } from '../core/defaults.js';
import { ShareCounts } from './share-counts.js';
import { StaticCatalog, type StaticEntry, type StaticSnapshot } from './static-catalog.js';
import { DirWatcher } from './static-watcher.js';
import type { ItemInfo, ItemStore, PublishOptions, RemoveReason, Savings, StoreOptions } from './types.js';

export const DEFAULT_EXPIRY_INTERVAL_MS = 60_000;
export const DEFAULT_RESCAN_INTERVAL_MS = 60_000;

/** What the store keeps per item; shareCount and disabled are derived when an ItemInfo is handed out. */
interface ItemRecord extends Omit<ItemInfo, 'shareCount' | 'disabled'> {
  /** boot time recorded at publish (next-reboot items) */
  bootTime?: string;
  /** static items: size:mtime of the file when it was hashed */
  stamp?: string;
}

export class Store extends EventEmitter implements ItemStore {
  readonly dataDir: string;
  readonly auditLogPath: string;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly bootTime: () => string | undefined;
  private maxItemSize: number;
  private carbonCost: number;
  private readonly items = new Map<string, ItemRecord>();
  /** hashes being renamed into place by a publish right now */
  private readonly pending = new Set<string>();
  /** static files unpublished or found corrupt: path → stamp; shown again once the file changes */
  private readonly hiddenStatic = new Map<string, string>();
  private readonly problemsLogged = new Map<string, string>();
  private readonly audit: AuditLog;
  private readonly shares: ShareCounts;
  private readonly catalog?: StaticCatalog;
  /** fsyncs of the data dir after a rename, shared by publishes finishing together */
  private readonly dataDirSync: DirSync;
  private meta!: MetadataBackend;
  private downloadSaving = 0;
  private loading = false;
  private loaded = false;
  private closed = false;
  private timers: NodeJS.Timeout[] = [];
  private watcher?: DirWatcher;
  private rescanning?: Promise<void>;
  private rescanAgain = false;
  private staticScanned = true;
  private staticScanStarted = false;
  /** called once when the scan pass in progress ends (the first scan's log line) */
  private afterStaticPass?: () => void;

  constructor(private readonly opts: StoreOptions) {
    super();
    const sp = statePaths(opts.stateDir);
    this.dataDir = opts.dataDir ?? sp.dataDir;
    this.auditLogPath = sp.auditLog;
    this.dataDirSync = new DirSync(this.dataDir);
    this.log = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.bootTime = opts.bootTime ?? currentBootTime;
    this.maxItemSize = opts.maxItemSize ?? DEFAULT_MAX_ITEM_SIZE;
    this.carbonCost = opts.carbonCost ?? DEFAULT_CARBON_COST;
    this.audit = new AuditLog(sp.auditLog, this.now);
    this.shares = new ShareCounts(sp.sharesFile, this.log);
    if (opts.configDir) this.catalog = new StaticCatalog(staticConfDir(opts.configDir), this.log, { cacheFile: sp.staticChecksums });
  }

  /** 'xattr' or 'sidecar': where item metadata is kept (known after load()). */
  get metadataKind(): 'xattr' | 'sidecar' {
    return this.meta.kind;
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Reads the data dir (and finishes what a crash left: temp files, expired and shared-out items).
   * The static dirs are scanned too: by default before load() resolves; with `staticInBackground`
   * (the daemon) the scan runs on after it, and each static item is added — with an 'added'
   * event — as soon as its hash is known (`staticLoading` is true until that first scan is done).
   */
  async load(opts: { staticInBackground?: boolean } = {}): Promise<void> {
    if (this.loaded) return;
    this.loading = true;
    try {
      await mkdir(this.dataDir, { recursive: true, mode: 0o755 });
      this.meta = await chooseMetadataBackend(this.dataDir, this.opts.metadata ?? 'auto', this.log);
      await this.audit.open();
      this.downloadSaving = await readDownloadSaving(this.auditLogPath);
      await this.shares.load();
      await this.loadDataDir();
      const held = new Set(this.items.keys());
      await this.meta.cleanup(held);
      this.shares.retainOnly(held);
      if (this.catalog && !opts.staticInBackground) await this.rescanStatic();
      await this.expire();
      await this.removeSharedOut();
      this.loaded = true;
    } finally {
      // dropped and shared-out items changed the share counts: when load() resolves their save
      // is on disk and no temp file of it is left (a crash check reads the state dir right away)
      await this.shares.flush();
      this.loading = false;
    }
    this.log.info(`store: ${this.items.size} items in ${this.dataDir} (metadata in ${this.meta.kind}s)`);
    if (this.catalog && opts.staticInBackground) this.staticScanned = false;
  }

  /**
   * After load({ staticInBackground: true }): starts the first scan of the static dirs (the daemon
   * calls it once it is listening, so the scan does not compete with its start-up). Items are added
   * as their hashes arrive; staticLoading turns false when the scan ends. `settled` is called once
   * that scan and any rescan asked for meanwhile (the watchers starting) are over.
   */
  startStaticScan(settled?: () => void): void {
    if (!this.catalog || this.staticScanned || this.staticScanStarted || this.closed) return;
    this.staticScanStarted = true;
    const t0 = Date.now();
    // done after the first pass: a rescan asked for meanwhile (the watchers starting) runs on after it
    this.afterStaticPass = () => {
      this.staticScanned = true;
      const { hashed, cached } = this.catalog!.stats;
      const n = this.staticCount();
      this.log.info(`static dirs: ${n} items after ${Date.now() - t0} ms (${hashed} files hashed, ${cached} from the xattr checksum cache, ${Math.max(0, n - hashed - cached)} known from the last scan)`);
    };
    void this.rescanStatic()
      .catch((err) => this.log.warn(`static dirs: ${(err as Error).message}`))
      .finally(() => {
        this.staticScanned = true;
        settled?.();
      });
  }

  /** True until the first scan of the static dirs has finished (load with staticInBackground). */
  get staticLoading(): boolean {
    return !this.staticScanned;
  }

  /** Static files listed by the scan in progress whose hash is not known yet. */
  get staticPending(): number {
    return this.catalog?.pending ?? 0;
  }

  private staticCount(): number {
    let n = 0;
    for (const rec of this.items.values()) if (rec.static) n++;
    return n;
  }

  /**
   * Reads every item of the data dir. The stat and metadata reads run 64 at a time (a store of
   * 10,000 items loads in a fraction of the time one-by-one reads take); names are then taken in
   * directory order, so which of two files with the same sha256 wins does not depend on timing.
   */
  private async loadDataDir(): Promise<void> {
    const entries = await readdir(this.dataDir, { withFileTypes: true });
    const candidates: Array<{ path: string; hash: string; basename: string }> = [];
    for (const ent of entries) {
      const name = ent.name;
      const path = join(this.dataDir, name);
      if (isTempFileName(name)) {
        this.log.info(`removing unfinished publish ${path}`);
        await unlink(path).catch((err) => this.log.warn(`cannot remove ${path}: ${(err as Error).message}`));
        continue;
      }
      if (name.startsWith('.')) continue;
      if (!ent.isFile()) continue;
      const parsed = parseItemFileName(name);
      if (!parsed) {
        this.log.warn(`ignoring ${path}: not named <sha256>-<basename>`);
        continue;
      }
      candidates.push({ path, ...parsed });
    }
    const loaded = await mapLimit(candidates, 64, async (c) => {
      let st;
      try {
        st = await lstat(c.path);
      } catch {
        return undefined;
      }
      if (!st.isFile()) return undefined;
      try {
        return { c, st, meta: await this.meta.read(c.path, c.hash) };
      } catch (err) {
        this.log.warn(`ignoring ${c.path}: cannot read its metadata: ${(err as Error).message}`);
        return undefined;
      }
    });
    for (const r of loaded) {
      if (!r) continue;
      const { c, st, meta } = r;
      if (this.items.has(c.hash)) {
        this.log.warn(`ignoring ${c.path}: another file holds the same sha256`);
        continue;
      }
      this.items.set(c.hash, {
        hash: c.hash,
        basename: c.basename,
        path: c.path,
        size: st.size,
        maxAge: meta.maxAge,
        shareLimit: meta.shareLimit,
        created: meta.created ?? (st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs),
        cmdline: meta.cmdline,
        nextReboot: meta.bootTime !== undefined,
        bootTime: meta.bootTime,
        static: false,
      });
    }
  }

  /** Periodic expiry and static rescans, and watchers on passim.d and the static dirs. Stopped by close(). */
  startTimers(): void {
    if (this.closed || this.timers.length) return;
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const t = setInterval(() => {
        fn().catch((err) => this.log.warn(`store: ${(err as Error).message}`));
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.expiryIntervalMs ?? DEFAULT_EXPIRY_INTERVAL_MS, () => this.expire());
    if (this.catalog) {
      every(this.opts.rescanIntervalMs ?? DEFAULT_RESCAN_INTERVAL_MS, () => this.rescanStatic());
      this.watcher = new DirWatcher(() => {
        this.rescanStatic().catch((err) => this.log.warn(`static rescan: ${(err as Error).message}`));
      }, this.opts.watchDebounceMs, this.log);
      this.syncWatchers([]);
      // dirs named by the confs are known after a scan (one in progress syncs them when it ends)
      if (!this.rescanning) this.rescanStatic().catch((err) => this.log.warn(`static rescan: ${(err as Error).message}`));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.watcher?.close();
    await this.catalog?.close(); // a scan in progress stops hashing
    await this.rescanning?.catch(() => {});
    await this.shares.flush();
    await this.audit.close();
  }

  // ---------------------------------------------------------------- read side

  /** Published with next-reboot and the machine has not rebooted since. */
  private isDisabled(rec: ItemRecord): boolean {
    return rec.bootTime !== undefined && rec.bootTime === this.bootTime();
  }

  private toInfo(rec: ItemRecord): ItemInfo {
    // spelled out: a rest-spread per item cost most of the main thread's time adding 10,000 static items
    const info: ItemInfo = {
      hash: rec.hash, basename: rec.basename, path: rec.path, size: rec.size, maxAge: rec.maxAge, shareLimit: rec.shareLimit,
      shareCount: this.shares.get(rec.hash), created: rec.created, nextReboot: rec.nextReboot, disabled: this.isDisabled(rec), static: rec.static,
    };
    if (rec.cmdline !== undefined) info.cmdline = rec.cmdline;
    return info;
  }

  /** How many items are held (without building the list). */
  get size(): number {
    return this.items.size;
  }

  get(hash: string): ItemInfo | undefined {
    if (!isSha256(hash)) return undefined;
    const rec = this.items.get(hash.toLowerCase());
    return rec && this.toInfo(rec);
  }

  list(): ItemInfo[] {
    return [...this.items.values()]
      .map((r) => this.toInfo(r))
      .sort((a, b) => (a.basename < b.basename ? -1 : a.basename > b.basename ? 1 : a.hash < b.hash ? -1 : 1));
  }

  advertisedHashes(): string[] {
    const out: string[] = [];
    for (const rec of this.items.values()) if (!this.isDisabled(rec)) out.push(rec.hash);
    return out;
  }

  savings(): Savings {
    return savingsFor(this.downloadSaving, this.carbonCost);
  }

  /** Live config change (SIGHUP reload): the upload size limit and the carbon cost (kg/GB). */
  setLimits(limits: { maxItemSize?: number; carbonCost?: number }): void {
    if (limits.maxItemSize !== undefined) this.maxItemSize = limits.maxItemSize;
    if (limits.carbonCost !== undefined) this.carbonCost = limits.carbonCost;
  }

  private emitEvent(event: 'added' | 'changed', item: ItemInfo): void;
  private emitEvent(event: 'removed', item: ItemInfo, reason: RemoveReason): void;
  private emitEvent(event: string, item: ItemInfo, reason?: RemoveReason): void {
    if (this.loading) return;
    if (reason) this.emit(event, item, reason);
    else this.emit(event, item);
  }

  // ---------------------------------------------------------------- publish / unpublish

  /** `sizeHint`: how big the source says it is (a big one is written by a worker, publish.ts) */
  async publish(source: Readable, options: PublishOptions, sizeHint?: number): Promise<ItemInfo> {
    if (this.closed || !this.loaded) throw new PassimError('the store is not open');
    const o = checkPublishOptions(options);
    let bootTime: string | undefined;
    if (o.nextReboot) {
      bootTime = this.bootTime();
      if (bootTime === undefined) throw new PassimError('cannot publish for the next reboot: the boot time is unknown (/proc/stat)');
    }
    // known up front: refuse before reading anything (the caller still owns the source)
    if (o.expectedSha256 && (this.items.has(o.expectedSha256) || this.pending.has(o.expectedSha256))) {
      throw new ItemExistsError(`an item with sha256 ${o.expectedSha256} is already published`);
    }
    const tmp = await streamToTemp(source, this.dataDir, this.maxItemSize, sizeHint);
    const hash = tmp.sha256;
    const discard = () => unlink(tmp.tempPath).catch(() => {});
    if (o.expectedSha256 && o.expectedSha256 !== hash) {
      await discard();
      throw new ChecksumMismatchError(o.expectedSha256, hash);
    }
    if (this.items.has(hash) || this.pending.has(hash)) {
      await discard();
      throw new ItemExistsError(`an item with sha256 ${hash} is already published`);
    }
    this.pending.add(hash);
    const finalPath = join(this.dataDir, itemFileName(hash, o.basename));
    const created = this.now();
    try {
      await this.meta.write(tmp.tempPath, hash, {
        maxAge: o.maxAge, shareLimit: o.shareLimit, cmdline: o.cmdline, bootTime, created,
      });
      await rename(tmp.tempPath, finalPath);
      await this.dataDirSync.sync();
    } catch (err) {
      this.pending.delete(hash);
      await discard();
      await this.meta.remove(hash);
      throw err;
    }
    const rec: ItemRecord = {
      hash, basename: o.basename, path: finalPath, size: tmp.size, maxAge: o.maxAge, shareLimit: o.shareLimit,
      created, cmdline: o.cmdline, nextReboot: o.nextReboot, bootTime, static: false,
    };
    this.items.set(hash, rec);
    this.pending.delete(hash);
    this.shares.forget(hash);
    await this.audit.append('PBLSH', [['hash', hash], ['basename', o.basename], ['size', tmp.size], ['cmdline', o.cmdline ?? '']])
      .catch((err) => this.log.warn(`audit log: ${(err as Error).message}`));
    const info = this.toInfo(rec);
    this.emitEvent('added', info);
    return info;
  }

  /** Deletes a published item, or unadvertises a static one (its file is never touched). */
  async unpublish(hash: string): Promise<ItemInfo> {
    const h = normaliseSha256(hash);
    const rec = this.items.get(h);
    if (!rec) throw new NotFoundError(`no item with sha256 ${h}`);
    return rec.static ? this.hideStatic(rec, 'unpublished') : this.deleteItem(rec, 'unpublished');
  }

  private async deleteItem(rec: ItemRecord, reason: RemoveReason): Promise<ItemInfo> {
    const info = this.toInfo(rec);
    if (this.items.get(rec.hash) !== rec) return info; // already gone
    this.items.delete(rec.hash);
    await unlink(rec.path).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn(`cannot delete ${rec.path}: ${(err as Error).message}`);
    });
    await this.meta.remove(rec.hash);
    this.shares.forget(rec.hash);
    await this.audit.append('DELTE', [['hash', rec.hash], ['basename', rec.basename]])
      .catch((err) => this.log.warn(`audit log: ${(err as Error).message}`));
    this.log.info(`removed ${rec.basename} (${rec.hash}): ${reason}`);
    this.emitEvent('removed', info, reason);
    return info;
  }

  private hideStatic(rec: ItemRecord, reason: RemoveReason): ItemInfo {
    const info = this.toInfo(rec);
    if (this.items.get(rec.hash) !== rec) return info;
    this.items.delete(rec.hash);
    this.hiddenStatic.set(rec.path, rec.stamp ?? '');
    this.emitEvent('removed', info, reason);
    return info;
  }

  // ---------------------------------------------------------------- expiry

  /** Deletes the items older than their max-age; returns them. */
  async expire(): Promise<ItemInfo[]> {
    const now = this.now();
    const out: ItemInfo[] = [];
    for (const rec of [...this.items.values()]) {
      if (isExpired(rec, now)) out.push(await this.deleteItem(rec, 'expired'));
    }
    return out;
  }

  /**
   * An item whose saved share count already reached its limit (a crash between saving the count
   * and deleting the file) could never be served again: finish the deletion at load.
   */
  private async removeSharedOut(): Promise<void> {
    for (const rec of [...this.items.values()]) {
      if (!rec.static && rec.shareLimit > 0 && this.shares.get(rec.hash) >= rec.shareLimit) {
        await this.deleteItem(rec, 'share-limit');
      }
    }
  }

  // ---------------------------------------------------------------- shares

  reserveShare(hash: string): boolean {
    if (!isSha256(hash)) return false;
    const rec = this.items.get(hash.toLowerCase());
    if (!rec || this.isDisabled(rec)) return false;
    return this.shares.reserve(rec.hash, rec.static ? 0 : rec.shareLimit);
  }

  releaseShare(hash: string): void {
    if (isSha256(hash)) this.shares.release(hash.toLowerCase());
  }

  async recordShare(hash: string, peerAddress: string, bytes: number): Promise<void> {
    const h = normaliseSha256(hash);
    if (this.closed) {
      this.log.debug(`share of ${h} after close not recorded`);
      return;
    }
    const rec = this.items.get(h);
    if (!Number.isSafeInteger(bytes) || bytes < 0) bytes = 0;
    this.downloadSaving += bytes;
    await this.audit.append('SHARE', [['hash', h], ['basename', rec?.basename ?? ''], ['size', bytes], ['ipaddr', peerAddress]])
      .catch((err) => this.log.warn(`audit log: ${(err as Error).message}`));
    if (!rec) {
      this.shares.release(h);
      return;
    }
    const count = this.shares.increment(h);
    if (!rec.static && rec.shareLimit > 0 && count >= rec.shareLimit) {
      await this.deleteItem(rec, 'share-limit');
    } else if (this.items.get(h) === rec) {
      this.emitEvent('changed', this.toInfo(rec));
    }
  }

  // ---------------------------------------------------------------- verify

  /** Re-hashes every item; with fix, bad items are deleted (static ones only unadvertised). */
  async verify(fix: boolean): Promise<VerifyReply> {
    const reply: VerifyReply = { checked: 0, bad: [] };
    for (const rec of [...this.items.values()]) {
      let actual = '';
      try {
        actual = (await sha256File(rec.path)).sha256;
      } catch (err) {
        this.log.warn(`verify: cannot read ${rec.path}: ${(err as Error).message}`);
      }
      if (this.items.get(rec.hash) !== rec) continue; // removed meanwhile (expired, shared out)
      reply.checked++;
      if (actual === rec.hash) continue;
      let fixed = false;
      if (fix) {
        if (rec.static) {
          this.hideStatic(rec, 'corrupt');
          await this.catalog?.forget(rec.path); // a stale checksum cache: hash afresh next time
        } else {
          await this.deleteItem(rec, 'corrupt');
        }
        fixed = true;
      }
      reply.bad.push({ hash: rec.hash, basename: rec.basename, actual, fixed });
    }
    return reply;
  }

  // ---------------------------------------------------------------- static dirs

  /** Re-reads passim.d and the static dirs now; concurrent calls share one scan (plus one more if needed). */
  rescanStatic(): Promise<void> {
    if (!this.catalog) return Promise.resolve();
    if (this.rescanning) {
      this.rescanAgain = true;
      return this.rescanning;
    }
    this.rescanning = (async () => {
      try {
        do {
          this.rescanAgain = false;
          if (this.closed) return;
          this.applyStatic(await this.catalog!.scan((e) => this.addStatic(e)));
          const after = this.afterStaticPass;
          this.afterStaticPass = undefined;
          after?.();
        } while (this.rescanAgain);
      } finally {
        this.rescanning = undefined;
      }
    })();
    return this.rescanning;
  }

  private applyStatic(snap: StaticSnapshot): void {
    if (this.closed) return;
    this.logProblems(snap.problems);
    const byPath = new Map(snap.entries.map((e) => [e.path, e]));
    // gone or changed files
    for (const rec of [...this.items.values()]) {
      if (!rec.static) continue;
      const e = byPath.get(rec.path);
      if (!e || e.sha256 !== rec.hash) {
        this.items.delete(rec.hash);
        this.shares.forget(rec.hash);
        this.emitEvent('removed', this.toInfo(rec), 'static-gone');
      } else if (e.stamp !== rec.stamp) {
        rec.stamp = e.stamp;
        rec.created = e.created;
      }
    }
    for (const path of [...this.hiddenStatic.keys()]) {
      const e = byPath.get(path);
      if (!e || e.stamp !== this.hiddenStatic.get(path)) this.hiddenStatic.delete(path);
    }
    // new files (first holder of a hash wins; a later scan retries once it is free)
    for (const e of snap.entries) this.addStatic(e);
    this.syncWatchers(snap.dirs);
  }

  /**
   * A static file whose hash is known: held from now on unless hidden or its hash is already held.
   * Called as each hash arrives during a scan (so it is served before the scan ends) and again for
   * every entry when the scan is applied (a no-op for those already added).
   */
  private addStatic(e: StaticEntry): void {
    if (this.closed || this.hiddenStatic.has(e.path) || this.items.has(e.sha256) || this.pending.has(e.sha256)) return;
    const rec: ItemRecord = {
      hash: e.sha256, basename: e.basename, path: e.path, size: e.size, maxAge: 0, shareLimit: 0,
      created: e.created, nextReboot: false, static: true, stamp: e.stamp,
    };
    this.items.set(rec.hash, rec);
    this.emitEvent('added', this.toInfo(rec));
  }

  private syncWatchers(dirs: string[]): void {
    if (!this.watcher || !this.opts.configDir) return;
    const confDir = staticConfDir(this.opts.configDir);
    // passim.d itself, or its parent until passim.d exists (to notice it appear)
    this.watcher.sync([existsSync(confDir) ? confDir : this.opts.configDir, ...dirs]);
  }

  private logProblems(problems: Map<string, string>): void {
    for (const [path, msg] of problems) {
      if (this.problemsLogged.get(path) !== msg) this.log.warn(`static dirs: ${msg}`);
    }
    this.problemsLogged.clear();
    for (const [k, v] of problems) this.problemsLogged.set(k, v);
  }
}
