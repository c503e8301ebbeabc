/**
 * The sha256 of a static-dir file, cached in the xattr `user.checksum.sha256` (as upstream) together
 * with the size and mtime it was computed for (`user.passim.checksum_stat`), so an edited file is
 * re-hashed. Where xattrs cannot be written the hash is computed each time it is asked for (the
 * caller keeps its own in-memory cache by stat).
 */
import { sha256File, isSha256 } from '../core/sha256.js';
import { getXattrString, isXattrDenied, isXattrUnsupported, removeXattr, setXattr } from './xattr.js';

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

export async function staticChecksum(path: string, stamp: FileStamp): Promise<ChecksumResult> {
  try {
    const [hash, stat] = await Promise.all([getXattrString(path, XATTR_CHECKSUM), getXattrString(path, XATTR_CHECKSUM_STAT)]);
    if (hash && isSha256(hash) && stat === stampString(stamp)) return { sha256: hash.toLowerCase(), cached: true };
  } catch {
    // unreadable xattrs: just hash
  }
  const { sha256 } = await sha256File(path);
  try {
    await setXattr(path, XATTR_CHECKSUM, sha256);
    await setXattr(path, XATTR_CHECKSUM_STAT, stampString(stamp));
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
