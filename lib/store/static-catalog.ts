/**
 * What the static dirs hold right now: reads passim.d, lists each dir and hashes each file
 * (an in-memory cache keyed by size + mtime first; else, in the checksum worker threads, the xattr
 * cache, then a full hash). Each file is handed to `onEntry` as soon as its hash is known, so a
 * caller can serve it before the whole scan is done.
 */
import type { Logger } from '../core/logger.js';
import { ChecksumPool, type ChecksumPoolOptions } from './checksum-pool.js';
import { readStaticConfs } from './static-conf.js';
import { scanStaticDir, type StaticFile } from './static-scan.js';
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
    const files: StaticFile[] = [];
    const seen = new Set<string>();
    for (const dir of dirs) {
      let list: StaticFile[];
      try {
        list = await scanStaticDir(dir);
      } catch (err) {
        problems.set(dir, `cannot read static dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        continue;
      }
      for (const f of list) {
        if (seen.has(f.path)) continue;
        seen.add(f.path);
        files.push(f);
      }
    }
    const found = await Promise.all(files.map(async (f): Promise<StaticEntry | undefined> => {
      const stamp = stampString(f);
      const known = this.memo.get(f.path);
      let sha256 = known?.stamp === stamp ? known.sha256 : undefined;
      if (!sha256) {
        try {
          sha256 = (await this.pool.checksum(f.path, f)).sha256;
        } catch (err) {
          this.log?.debug(`cannot hash ${f.path}: ${(err as Error).message}`);
          return undefined; // vanished or unreadable: the next scan sees it again
        }
        this.memo.set(f.path, { stamp, sha256 });
      }
      const e: StaticEntry = { ...f, sha256, stamp };
      onEntry?.(e);
      return e;
    }));
    for (const path of [...this.memo.keys()]) if (!seen.has(path)) this.memo.delete(path);
    return { entries: found.filter((e): e is StaticEntry => e !== undefined), dirs, problems };
  }

  /** Ends the checksum workers; a scan in progress finishes without the files still queued. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
