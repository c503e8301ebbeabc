/**
 * The static dirs' checksums kept in the state dir as well as in each file's xattrs: path →
 * size:mtime (the stamp) and sha256, one JSON file written temp + rename after a scan that changed
 * it. A start then needs one lstat per file (the stamp must still match, else the file is hashed
 * again) and no xattr reads, which cost more than the lstat. Whatever is missing, unreadable or
 * stale here falls back to the xattr cache, then to hashing.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from '../core/logger.js';
import { isSha256 } from '../core/sha256.js';
import { removeAtomicTemps, writeFileAtomic } from '../core/atomic-write.js';

export interface KnownChecksum {
  /** size:mtimeNs (static-checksum.ts stampString) */
  stamp: string;
  sha256: string;
}

/** Reads the file; an absent or unreadable one is an empty map (logged when unreadable). */
export async function readChecksumFile(path: string, log?: Logger): Promise<Map<string, KnownChecksum>> {
  const out = new Map<string, KnownChecksum>();
  await removeAtomicTemps(path); // a crash during a save leaves its temp file
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log?.warn(`${path}: ${(err as Error).message}`);
    return out;
  }
  try {
    // one string per file, "<sha256> <size>:<mtimeNs> <path>" (an array, not an object with a
    // key per file: V8 keeps such an object as a slow dictionary)
    const j = JSON.parse(text) as { version?: number; files?: unknown };
    if (j.version !== 1 || !Array.isArray(j.files)) return out;
    for (const v of j.files as unknown[]) {
      if (typeof v !== 'string') continue;
      const sp = v.indexOf(' ', 65);
      const sha256 = v.slice(0, 64);
      if (v[64] === ' ' && sp > 65 && isSha256(sha256)) out.set(v.slice(sp + 1), { stamp: v.slice(65, sp), sha256 });
    }
  } catch (err) {
    log?.warn(`${path}: ignoring unreadable static checksums: ${(err as Error).message}`);
  }
  return out;
}

export async function writeChecksumFile(path: string, known: Map<string, KnownChecksum>): Promise<void> {
  const files: string[] = [];
  for (const [p, k] of known) files.push(`${k.sha256} ${k.stamp} ${p}`);
  await writeFileAtomic(path, JSON.stringify({ version: 1, files }) + '\n', 0o644);
}
