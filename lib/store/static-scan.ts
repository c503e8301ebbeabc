/**
 * Lists the files a static dir publishes: regular files directly in it (not recursive; symlinks,
 * dot-files and names unfit to serve are skipped), with the stat data the checksum cache keys on.
 * staticNames() runs in the daemon (one readdir); statStaticFile() in the checksum workers, one
 * blocking lstat per file, many files per message.
 */
import { lstatSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isValidBasename } from '../core/basename.js';
import type { FileStamp } from './static-checksum.js';

export interface StaticFile extends FileStamp {
  path: string;
  basename: string;
  /** creation time if the filesystem reports one, else mtime (ms) */
  created: number;
}

/** The names in `dir` that may be static files, in name order (types the dirent knows are filtered here). */
export async function staticNames(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isFile() || !(d.isDirectory() || d.isSymbolicLink() || d.isFIFO() || d.isSocket() || d.isBlockDevice() || d.isCharacterDevice()))
    .map((d) => d.name)
    .filter((name) => !name.startsWith('.') && isValidBasename(name))
    .sort();
}

/**
 * The file's stat data, or undefined when it is gone or not a regular file. `path` is join(dir,
 * name), for callers that already have it (join normalises character by character: per file of a
 * big dir, that costs more than the lstat).
 */
export function statStaticFile(dir: string, name: string, path = join(dir, name)): StaticFile | undefined {
  let st;
  try {
    st = lstatSync(path, { bigint: true });
  } catch {
    return undefined; // gone since readdir
  }
  if (!st.isFile()) return undefined;
  const birth = Number(st.birthtimeMs);
  return { path, basename: name, size: Number(st.size), mtimeNs: st.mtimeNs.toString(), created: birth > 0 ? birth : Number(st.mtimeMs) };
}

/** Every static file of `dir` (one lstat after another: for tests and tools, not the daemon). */
export async function scanStaticDir(dir: string): Promise<StaticFile[]> {
  return (await staticNames(dir)).map((n) => statStaticFile(dir, n)).filter((f): f is StaticFile => f !== undefined);
}
