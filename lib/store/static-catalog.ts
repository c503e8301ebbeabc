/**
 * What the static dirs hold right now: reads passim.d, lists each dir and hashes each file
 * (xattr cache first, then an in-memory cache keyed by size + mtime, then a full hash).
 */
import type { Logger } from '../core/logger.js';
import { readStaticConfs } from './static-conf.js';
import { scanStaticDir, type StaticFile } from './static-scan.js';
import { clearChecksumCache, staticChecksum, stampString } from './static-checksum.js';

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

  constructor(readonly confDir: string, private readonly log?: Logger) {}

  /** Drops every cached checksum of `path` (memory and xattr), so the next scan hashes it again. */
  async forget(path: string): Promise<void> {
    this.memo.delete(path);
    await clearChecksumCache(path);
  }

  async scan(): Promise<StaticSnapshot> {
    const { dirs, problems } = await readStaticConfs(this.confDir);
    const entries: StaticEntry[] = [];
    const seen = new Set<string>();
    for (const dir of dirs) {
      let files: StaticFile[];
      try {
        files = await scanStaticDir(dir);
      } catch (err) {
        problems.set(dir, `cannot read static dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        continue;
      }
      for (const f of files) {
        if (seen.has(f.path)) continue;
        seen.add(f.path);
        const stamp = stampString(f);
        let sha256 = this.memo.get(f.path)?.stamp === stamp ? this.memo.get(f.path)!.sha256 : undefined;
        if (!sha256) {
          try {
            sha256 = (await staticChecksum(f.path, f)).sha256;
          } catch (err) {
            this.log?.debug(`cannot hash ${f.path}: ${(err as Error).message}`);
            continue; // vanished or unreadable: the next scan sees it again
          }
          this.memo.set(f.path, { stamp, sha256 });
        }
        entries.push({ ...f, sha256, stamp });
      }
    }
    for (const path of [...this.memo.keys()]) if (!seen.has(path)) this.memo.delete(path);
    return { entries, dirs, problems };
  }
}
