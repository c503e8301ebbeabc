/**
 * What the static dirs hold right now: reads passim.d, lists each dir and hashes each file
 * (a cache keyed by size + mtime first — in memory, saved in the state dir between starts
 * (checksum-file.ts); else, in the checksum worker threads, the xattr cache, then a full hash).
 * Each file is handed to `onEntry` as soon as its hash is known, so a caller can serve it before
 * the whole scan is done.
 */
import type { Logger } from '../core/logger.js';
import { ChecksumPool, type ChecksumPoolOptions } from './checksum-pool.js';
import { readStaticConfs } from './static-conf.js';
import { join } from 'node:path';
import { setImmediate as setImmediateP } from 'node:timers/promises';
import { statStaticFile, staticNames, type StaticFile } from './static-scan.js';
import { clearChecksumCache, stampString } from './static-checksum.js';
import { readChecksumFile, writeChecksumFile, type KnownChecksum } from './checksum-file.js';

export interface StaticEntry extends StaticFile {
  sha256: string;
  /** size:mtime, changes when the file does */
  stamp: string;
}

export interface StaticSnapshot {
  entries: StaticEntry[];
  /** dirs named by the confs */
  dirs: string[];
  /** path → message for bad confs and unreadable dirs */
  problems: Map<string, string>;
}

/** names per message to a checksum worker */
const LIST_BATCH = 128;

export interface StaticCatalogOptions {
  /** where the known checksums are kept between starts (none: memory and xattrs only) */
  cacheFile?: string;
  pool?: ChecksumPoolOptions;
}

export class StaticCatalog {
  private memo = new Map<string, KnownChecksum>();
  /** memo differs from the cache file */
  private dirty = false;
  private fileRead = false;
  private readonly pool: ChecksumPool;
  private readonly cacheFile?: string;

  constructor(readonly confDir: string, private readonly log?: Logger, opts: StaticCatalogOptions = {}) {
    this.pool = new ChecksumPool(opts.pool);
    this.cacheFile = opts.cacheFile;
  }

  /** Files listed by the scan in progress whose hash is not known yet. */
  get pending(): number {
    return this.pool.pending;
  }

  /** Files hashed, and files whose hash came from the xattr cache, since start. */
  get stats(): { hashed: number; cached: number } {
    return { ...this.pool.stats };
  }

  /** Drops every cached checksum of `path` (memory and xattr), so the next scan hashes it again. */
  async forget(path: string): Promise<void> {
    if (this.memo.delete(path)) this.dirty = true;
    await clearChecksumCache(path);
    await this.save(); // a restart must not trust the old hash either
  }

  private async save(): Promise<void> {
    if (!this.cacheFile || !this.dirty) return;
    this.dirty = false;
    try {
      await writeChecksumFile(this.cacheFile, this.memo);
    } catch (err) {
      this.dirty = true;
      this.log?.warn(`cannot save static checksums to ${this.cacheFile}: ${(err as Error).message}`);
    }
  }

  async scan(onEntry?: (e: StaticEntry) => void): Promise<StaticSnapshot> {
    if (!this.fileRead && this.cacheFile) {
      this.fileRead = true;
      this.memo = await readChecksumFile(this.cacheFile, this.log);
    }
    const { dirs, problems } = await readStaticConfs(this.confDir);
    const seen = new Set<string>();
    const seenDirs = new Set<string>();
    const jobs: Array<Promise<StaticEntry[]>> = [];
    const found: StaticEntry[] = [];
    const done = (f: StaticFile, sha256: string): StaticEntry => {
      const e: StaticEntry = { path: f.path, basename: f.basename, size: f.size, mtimeNs: f.mtimeNs, created: f.created, sha256, stamp: stampString(f) };
      const k = this.memo.get(f.path);
      if (!k || k.stamp !== e.stamp || k.sha256 !== sha256) {
        this.memo.set(f.path, { stamp: e.stamp, sha256 });
        this.dirty = true;
      }
      onEntry?.(e);
      return e;
    };
    for (const dir of dirs) {
      let names: string[];
      try {
        names = await staticNames(dir);
      } catch (err) {
        problems.set(dir, `cannot read static dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        continue;
      }
      // a dir named by two confs is listed once (the same path is never in two dirs otherwise)
      const base = join(dir, '/'); // normalised once: every file's path is base + name, here and in the workers
      if (seenDirs.has(base)) continue;
      seenDirs.add(base);
      for (let i = 0; i < names.length; i += LIST_BATCH) {
        const batch = names.slice(i, i + LIST_BATCH);
        // a file whose checksum is known (an earlier scan, or the last start's): one lstat here, and
        // while its stamp holds nothing more; the others go to the workers in one message, coming
        // back with stat data and the small files' hashes
        const rest: string[] = [];
        let statted = false;
        for (const n of batch) {
          const path = base + n;
          seen.add(path);
          const k = this.memo.get(path);
          if (!k) {
            rest.push(n);
            continue;
          }
          statted = true;
          const f = statStaticFile(dir, n, path);
          if (!f) continue; // gone, or no longer a regular file
          if (stampString(f) === k.stamp) found.push(done(f, k.sha256));
          else rest.push(n);
        }
        if (rest.length) jobs.push(this.listed(dir, rest, done));
        // many lstats in a row: let requests in between batches
        if (statted && i + LIST_BATCH < names.length) await setImmediateP();
      }
    }
    for (const list of await Promise.all(jobs)) for (const e of list) found.push(e);
    this.pool.retireIdle(); // hashing is over: the threads' memory goes now, not after their idle time
    for (const path of [...this.memo.keys()]) {
      if (seen.has(path)) continue;
      this.memo.delete(path);
      this.dirty = true;
    }
    await this.save();
    return { entries: found, dirs, problems };
  }

  /** Names of `dir` to the workers: stat data and hashes of the small files, then each big file alone. */
  private async listed(dir: string, names: string[], done: (f: StaticFile, sha256: string) => StaticEntry): Promise<StaticEntry[]> {
    let files;
    try {
      files = await this.pool.list(dir, names);
    } catch (err) {
      this.log?.debug(`cannot list ${names.length} files of ${dir}: ${(err as Error).message}`);
      return [];
    }
    const out: StaticEntry[] = [];
    const big: Array<Promise<void>> = [];
    for (const f of files) {
      if (f.sha256) {
        out.push(done(f, f.sha256));
        continue;
      }
      big.push(this.pool.checksum(f.path, f).then(
        (r) => { out.push(done(f, r.sha256)); },
        (err: Error) => this.log?.debug(`cannot hash ${f.path}: ${err.message}`), // vanished or unreadable: the next scan sees it again
      ));
    }
    await Promise.all(big);
    return out;
  }

  /** Ends the checksum workers; a scan in progress finishes without the files still queued. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
