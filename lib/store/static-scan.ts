/**
 * Lists the files a static dir publishes: regular files directly in it (not recursive; symlinks,
 * dot-files and names unfit to serve are skipped), with the stat data the checksum cache keys on.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isValidBasename } from '../core/basename.js';
import type { FileStamp } from './static-checksum.js';

export interface StaticFile extends FileStamp {
  path: string;
  basename: string;
  /** creation time if the filesystem reports one, else mtime (ms) */
  created: number;
}

export async function scanStaticDir(dir: string): Promise<StaticFile[]> {
  const names = await readdir(dir);
  const out: StaticFile[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.') || !isValidBasename(name)) continue;
    const path = join(dir, name);
    let st;
    try {
      st = await lstat(path, { bigint: true });
    } catch {
      continue; // gone since readdir
    }
    if (!st.isFile()) continue;
    const birth = Number(st.birthtimeMs);
    out.push({
      path,
      basename: name,
      size: Number(st.size),
      mtimeNs: st.mtimeNs.toString(),
      created: birth > 0 ? birth : Number(st.mtimeMs),
    });
  }
  return out;
}
