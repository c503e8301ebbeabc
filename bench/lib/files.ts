/** Test data: incompressible pseudo-random files (AES-CTR keystream, ~GB/s), hashed as written. */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { open, link, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setAttributeSync } from '@napi-rs/xattr';

/** Writes `size` random bytes to `path` and returns their sha256. */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const zeros = Buffer.alloc(4 * 1024 * 1024);
  const hash = createHash('sha256');
  const fh = await open(path, 'wx');
  try {
    let left = size;
    while (left > 0) {
      const n = Math.min(left, zeros.length);
      const chunk = cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n));
      hash.update(chunk);
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      left -= n;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

/**
 * Puts a file into a (not yet running) daemon's store the way upstream passimd lays it out:
 * `<state>/data/<sha256>-<name>` with the `user.max_age` / `user.share_limit` xattrs. Hard-linked
 * when possible (a GiB copy would only cost time), else copied.
 */
export async function seedItem(stateDir: string, file: string, sha256: string, name: string, o: { maxAge?: number; shareLimit?: number } = {}): Promise<string> {
  const dataDir = join(stateDir, 'data');
  await mkdir(dataDir, { recursive: true });
  const dst = join(dataDir, `${sha256}-${name}`);
  await link(file, dst).catch(() => copyFile(file, dst));
  setAttributeSync(dst, 'user.max_age', u32(o.maxAge ?? 86400));
  setAttributeSync(dst, 'user.share_limit', u32(o.shareLimit ?? 5));
  return dst;
}

export { u32 as encodeU32 };
