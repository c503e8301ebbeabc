/**
 * The first half of a publish: stream the bytes into a new temp file in the data dir, hashing as
 * they arrive and stopping as soon as they exceed the size limit; then fsync. Renaming into place
 * is the store's job (it has to check the hash is new first).
 *
 * A source known to be big (`sizeHint`, from the request's Content-Length or the passed fd's size)
 * is hashed and written by a worker thread with O_DIRECT (core/hash-writer.ts), as `passim fetch`
 * writes its downloads: the copy into the page cache and its write-back at the fsync were most of
 * the time of a big publish (measured in bench/measures/hashing.ts). Small ones stay on this
 * thread, where starting a worker would cost more than it saves.
 */
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { TooLargeError } from '../core/errors.js';
import type { HashWriter } from '../core/hash-writer.js';
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

/** Sources at least this big (by their size hint) go through the worker (core/hash-writer.ts). */
const PIPELINED_MIN_SIZE = 8 * 1024 * 1024;

/**
 * Writes `source` to a temp file in `dir`. On any error the temp file is removed. `sizeHint`:
 * how big the source says it is (not trusted: maxSize still applies to what arrives).
 */
export async function streamToTemp(source: Readable, dir: string, maxSize: number, sizeHint?: number): Promise<StreamedTemp> {
  if (sizeHint !== undefined && sizeHint >= PIPELINED_MIN_SIZE && sizeHint <= maxSize) return streamPipelined(source, dir, maxSize);
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

/** streamToTemp for a big source: a worker hashes and writes (O_DIRECT) while this thread reads. */
async function streamPipelined(source: Readable, dir: string, maxSize: number): Promise<StreamedTemp> {
  const { HashWriter } = await import('../core/hash-writer.js');
  const tempPath = join(dir, tempFileName());
  const fh = await open(tempPath, 'wx', 0o644);
  const w: HashWriter = new HashWriter();
  let failed: Error | undefined;
  let wake: (() => void) | undefined;
  w.onError = (err) => {
    failed = err;
    wake?.();
  };
  w.onDrain = () => wake?.();
  try {
    w.begin(fh.fd, { direct: true });
    let size = 0;
    for await (const chunk of chunksOf(source)) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      size += buf.length;
      if (size > maxSize) throw new TooLargeError(`item is larger than the maximum item size of ${maxSize} bytes`);
      if (failed) throw failed;
      if (!w.write(buf)) {
        await new Promise<void>((resolve) => { wake = resolve; });
        wake = undefined;
      }
    }
    const r = await w.end(true);
    await fh.close();
    return { tempPath, sha256: r.sha256, size: r.size };
  } catch (err) {
    await w.stop();
    await fh.close().catch(() => {});
    await unlink(tempPath).catch(() => {});
    throw err;
  } finally {
    w.release({ keep: false });
  }
}
