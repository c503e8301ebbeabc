/** sha256: validation, normalisation and streaming hashing shared by daemon and client. */
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { InvalidHashError } from './errors.js';

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** True for 64 hex digits in either case. */
export function isSha256(value: unknown): value is string {
  return typeof value === 'string' && HEX64.test(value);
}

/** Lower-cases a sha256 or throws InvalidHashError (upstream never matched upper case: we accept it). */
export function normaliseSha256(value: string): string {
  if (!isSha256(value)) throw new InvalidHashError(`not a sha256 (64 hex digits): ${JSON.stringify(String(value).slice(0, 80))}`);
  return value.toLowerCase();
}

export function newSha256(): Hash {
  return createHash('sha256');
}

/** Size of each read when hashing a file; 1 MiB measured fastest here (NOTES). */
export const HASH_CHUNK = 1024 * 1024;

/** Hashes a file by reading it in 1 MiB chunks into one reused buffer. */
export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const fh = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(HASH_CHUNK);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, HASH_CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(bytesRead === HASH_CHUNK ? buf : buf.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { sha256: hash.digest('hex'), size };
  } finally {
    await fh.close();
  }
}
