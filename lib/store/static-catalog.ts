/**
 * What the static dirs hold right now: reads passim.d, lists each dir and hashes each file
 * (an in-memory cache keyed by size + mtime first; else, in the checksum worker threads, the xattr
 * cache, then a full hash). Each file is handed to `onEntry` as soon as its hash is known, so a
 * caller can serve it before the whole scan is done.
 */
import type { Logger } from '../core/logger.js';
import { ChecksumPool, type ChecksumPoolOptions } from './checksum-pool.js';
import { readStaticConfs } from './static-conf.js';
import { join } from 'node:path';
import { staticNames, type StaticFile } from './static-scan.js';
import { clearChecksumCache, stampString } from './static-checksum.js';

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

export class StaticCatalog {
  private memo = new Map<string, { stamp: string; sha256: string }>();
  private readonly pool: ChecksumPool;

  constructor(readonly confDir: string, private readonly log?: Logger, pool?: ChecksumPoolOptions) {
    this.pool = new ChecksumPool(pool);
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
    this.memo.delete(path);
    await clearChecksumCache(path);
  }

  async scan(onEntry?: (e: StaticEntry) => void): Promise<StaticSnapshot> {
    const { dirs, problems } = await readStaticConfs(this.confDir);
    const seen = new Set<string>();
    const seenDirs = new Set<string>();
    const jobs: Array<Promise<Array<StaticEntry | undefined>>> = [];
    const done = (f: StaticFile, sha256: string): StaticEntry => {
      const e: StaticEntry = { path: f.path, basename: f.basename, size: f.size, mtimeNs: f.mtimeNs, created: f.created, sha256, stamp: stampString(f) };
      this.memo.set(f.path, { stamp: e.stamp, sha256 });
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
      const base = join(dir, '/'); // normalised as the workers' join(dir, name) is
      if (seenDirs.has(base)) continue;
      seenDirs.add(base);
      // batches of names to the workers: each comes back with stat data and the small files' hashes
      for (let i = 0; i < names.length; i += LIST_BATCH) {
        const batch = names.slice(i, i + LIST_BATCH);
        const known: Record<string, { stamp: string; sha256: string }> = {};
        for (const n of batch) {
          const path = base + n;
          seen.add(path);
          const k = this.memo.get(path);
          if (k) known[n] = k;
        }
        jobs.push(this.pool.list(dir, batch, known).then(
          (files) => Promise.all(files.map(async (f) => {
            if (f.sha256) return done(f, f.sha256);
            try {
              return done(f, (await this.pool.checksum(f.path, f)).sha256);
            } catch (err) {
              this.log?.debug(`cannot hash ${f.path}: ${(err as Error).message}`);
              return undefined; // vanished or unreadable: the next scan sees it again
            }
          })),
          (err: Error) => {
            this.log?.debug(`cannot list ${batch.length} files of ${dir}: ${err.message}`);
            return [];
          },
        ));
      }
    }
    const found = (await Promise.all(jobs)).flat();
    for (const path of [...this.memo.keys()]) if (!seen.has(path)) this.memo.delete(path);
    return { entries: found.filter((e): e is StaticEntry => e !== undefined), dirs, problems };
  }

  /** Ends the checksum workers; a scan in progress finishes without the files still queued. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
