/**
 * The sha256 of a static-dir file, cached in the xattr `user.checksum.sha256` (as upstream) together
 * with the size and mtime it was computed for (`user.passim.checksum_stat`), so an edited file is
 * re-hashed. Where xattrs cannot be written the hash is computed each time it is asked for (the
 * caller keeps its own in-memory cache by stat).
 *
 * Runs in the checksum worker threads (checksum-pool.ts): the xattr calls block, and a file of at
 * most one chunk is read with one blocking read into the worker's scratch buffer.
 */
import { HASH_CHUNK, isSha256, sha256File, sha256FileSync } from '../core/sha256.js';
import { getXattrStringSync, isXattrDenied, isXattrUnsupported, removeXattr, setXattrSync } from './xattr.js';

export const XATTR_CHECKSUM = 'user.checksum.sha256';
export const XATTR_CHECKSUM_STAT = 'user.passim.checksum_stat';

export interface FileStamp {
  size: number;
  /** nanoseconds, as a decimal string (exact) */
  mtimeNs: string;
}

export function stampString(s: FileStamp): string {
  return `${s.size}:${s.mtimeNs}`;
}

export interface ChecksumResult {
  sha256: string;
  /** true when it came from the xattr cache */
  cached: boolean;
}

/** The cached checksum when its stamp matches, else undefined (also when xattrs are unreadable). */
export function cachedChecksum(path: string, stamp: FileStamp): string | undefined {
  try {
    const stat = getXattrStringSync(path, XATTR_CHECKSUM_STAT);
    if (stat !== stampString(stamp)) return undefined;
    const hash = getXattrStringSync(path, XATTR_CHECKSUM);
    return hash && isSha256(hash) ? hash.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

export async function staticChecksum(path: string, stamp: FileStamp, scratch?: Buffer): Promise<ChecksumResult> {
  const hit = cachedChecksum(path, stamp);
  if (hit) return { sha256: hit, cached: true };
  const { sha256 } = stamp.size <= HASH_CHUNK ? sha256FileSync(path, scratch) : await sha256File(path);
  try {
    setXattrSync(path, XATTR_CHECKSUM, sha256);
    setXattrSync(path, XATTR_CHECKSUM_STAT, stampString(stamp));
  } catch (err) {
    if (!isXattrUnsupported(err) && !isXattrDenied(err)) throw err;
  }
  return { sha256, cached: false };
}

/** Removes the cached checksum xattrs (ignoring filesystems and files where that is not possible). */
export async function clearChecksumCache(path: string): Promise<void> {
  for (const name of [XATTR_CHECKSUM_STAT, XATTR_CHECKSUM]) {
    try {
      await removeXattr(path, name);
    } catch {
      // read-only or no xattrs: nothing cached there either
    }
  }
}
