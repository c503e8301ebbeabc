/**
 * The same-thread counterpart of HashWriter (core/hash-writer.ts), same interface: hashes each chunk on
 * this thread as it comes (no copy) and writes the chunks gathered meanwhile with one writev at a
 * time through libuv's pool. For bodies known to be small, where booting a worker costs more than
 * the hashing it saves (and for PASSIM_FETCH_HASHING=inline, to compare the two).
 */
import { fsync, writev } from 'node:fs';
import type { Hash } from 'node:crypto';
import { newSha256 } from '../core/sha256.js';
import { HashWriterError, type HashingSink } from '../core/hash-writer.js';

/** Bytes waiting for the disk above which write() asks the caller to wait. */
const HIGH_WATER = 4 * 1024 * 1024;
/** Chunks per writev at most (IOV_MAX is 1024 on Linux). */
const MAX_IOV = 512;

export class InlineHashWriter implements HashingSink {
  onDrain: (() => void) | undefined;
  onError: ((err: HashWriterError) => void) | undefined;

  private fd = -1;
  private hash: Hash | undefined;
  /** bytes hashed (and handed to write) so far */
  private pos = 0;
  /** file offset of the first queued chunk */
  private written = 0;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private writing = false;
  private wantDrain = false;
  private error: HashWriterError | undefined;
  private idle: Array<() => void> = [];

  begin(fd: number): void {
    this.fd = fd;
    this.hash = newSha256();
    this.pos = 0;
    this.written = 0;
    this.queue = [];
    this.queued = 0;
    this.error = undefined;
  }

  write(chunk: Uint8Array): boolean {
    if (this.error) return true;
    this.hash!.update(chunk);
    this.pos += chunk.length;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (!this.writing) this.flush();
    if (this.queued >= HIGH_WATER) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  async end(sync = true): Promise<{ sha256: string; size: number }> {
    await this.quiet();
    if (this.error) throw this.error;
    if (sync) await new Promise<void>((resolve, reject) => fsync(this.fd, (err) => (err ? reject(this.fail(err)) : resolve())));
    const sha256 = this.hash!.digest('hex');
    this.hash = undefined;
    return { sha256, size: this.pos };
  }

  async stop(): Promise<void> {
    this.queue = [];
    this.queued = 0;
    await this.quiet();
    this.hash = undefined;
  }

  release(): void {
    this.onDrain = undefined;
    this.onError = undefined;
  }

  private quiet(): Promise<void> {
    return !this.writing ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  /** One writev of what is queued (up to MAX_IOV chunks); the next one when it is done. */
  private flush(): void {
    if (this.error || this.queue.length === 0) {
      this.writing = false;
      for (const r of this.idle.splice(0)) r();
      return;
    }
    this.writing = true;
    const batch = this.queue.splice(0, MAX_IOV);
    const bytes = batch.reduce((n, c) => n + c.length, 0);
    const at = this.written;
    writev(this.fd, batch, at, (err, n) => {
      if (!err && n < bytes) {
        // short write: put the unwritten tail back in front
        let skip = n;
        const rest: Uint8Array[] = [];
        for (const c of batch) {
          if (skip >= c.length) skip -= c.length;
          else { rest.push(c.subarray(skip)); skip = 0; }
        }
        this.queue.unshift(...rest);
      }
      if (!err && n === 0) err = Object.assign(new Error('writev wrote nothing'), { code: 'EIO' });
      if (err) this.fail(err);
      const done = err ? bytes : n;
      this.written += done;
      this.queued -= done;
      if (this.wantDrain && this.queued < HIGH_WATER / 2) {
        this.wantDrain = false;
        this.onDrain?.();
      }
      this.flush();
    });
  }

  private fail(err: NodeJS.ErrnoException): HashWriterError {
    if (!this.error) {
      this.error = new HashWriterError(`cannot write the temp file: ${err.code ?? err.message}`, err.code);
      this.onError?.(this.error);
    }
    return this.error;
  }
}
