/** Test data: incompressible pseudo-random files (AES-CTR keystream, ~GB/s), hashed as written. */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { open, link, copyFile, mkdir } from 'node:fs/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
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

/** Builds `count` small items in upstream's store layout (data/<sha256>-item-N.bin + xattrs); returns their hashes. */
export function buildStore(stateDir: string, count: number): string[] {
  const data = join(stateDir, 'data');
  mkdirSync(data, { recursive: true });
  const hashes: string[] = [];
  const maxAge = u32(86400 * 30);
  const share = u32(1000);
  for (let i = 0; i < count; i++) {
    const content = Buffer.from(`passim bench item ${i}\n`);
    const h = createHash('sha256').update(content).digest('hex');
    const p = join(data, `${h}-item-${i}.bin`);
    writeFileSync(p, content);
    setAttributeSync(p, 'user.max_age', maxAge);
    setAttributeSync(p, 'user.share_limit', share);
    hashes.push(h);
  }
  return hashes;
}

/**
 * A static dir of `count` small random files (1–4 KiB, no checksum xattrs yet) and the passim.d
 * conf naming it, under a daemon root; returns the files' hashes in name order.
 */
export function buildStaticDir(root: string, count: number): string[] {
  const dir = join(root, 'static');
  mkdirSync(dir, { recursive: true });
  mkdirSync(join(root, 'config', 'passim.d'), { recursive: true });
  writeFileSync(join(root, 'config', 'passim.d', 'bench.conf'), `[passim]\nPath=${dir}\n`);
  const hashes: string[] = [];
  for (let i = 0; i < count; i++) {
    const content = randomBytes(1024 + (i % 3072));
    writeFileSync(join(dir, `file-${String(i).padStart(5, '0')}.bin`), content);
    hashes.push(createHash('sha256').update(content).digest('hex'));
  }
  return hashes;
}
