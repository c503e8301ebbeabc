/**
 * The first half of a publish: stream the bytes into a new temp file in the data dir, hashing as
 * they arrive and stopping as soon as they exceed the size limit; then fsync. Renaming into place
 * is the store's job (it has to check the hash is new first).
 */
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { TooLargeError } from '../core/errors.js';
import { newSha256 } from '../core/sha256.js';
import { tempFileName } from './item-file.js';

export interface StreamedTemp {
  tempPath: string;
  sha256: string;
  size: number;
}

function chunksOf(source: Readable): AsyncIterable<unknown> {
  // keep the source alive on an early stop so the caller can still answer (e.g. 413) on it
  const it = (source as Readable & { iterator?: (o: { destroyOnReturn: boolean }) => AsyncIterable<unknown> }).iterator;
  return typeof it === 'function' ? it.call(source, { destroyOnReturn: false }) : source;
}

/** Writes `source` to a temp file in `dir`. On any error the temp file is removed. */
export async function streamToTemp(source: Readable, dir: string, maxSize: number): Promise<StreamedTemp> {
  const tempPath = join(dir, tempFileName());
  const fh = await open(tempPath, 'wx', 0o644);
  const hash = newSha256();
  let size = 0;
  try {
    for await (const chunk of chunksOf(source)) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      size += buf.length;
      if (size > maxSize) throw new TooLargeError(`item is larger than the maximum item size of ${maxSize} bytes`);
      hash.update(buf);
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await fh.write(buf, off, buf.length - off);
        off += bytesWritten;
      }
    }
    await fh.sync();
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tempPath).catch(() => {});
    throw err;
  }
  return { tempPath, sha256: hash.digest('hex'), size };
}
