/**
 * The small-body counterpart of HashWriter (hash-writer.ts), same interface: hashes each chunk on
 * this thread as it comes (no copy) and writes it at its offset through libuv's pool. For bodies
 * known to be small, where booting a worker would cost more than the hashing it saves.
 */
import { fsync, write } from 'node:fs';
import type { Hash } from 'node:crypto';
import { newSha256 } from '../core/sha256.js';
import { HashWriterError, type HashingSink } from './hash-writer.js';

/** Writes in flight at most before write() asks the caller to wait. */
const MAX_IN_FLIGHT = 64;

export class InlineHashWriter implements HashingSink {
  onDrain: (() => void) | undefined;
  onError: ((err: HashWriterError) => void) | undefined;

  private fd = -1;
  private hash: Hash | undefined;
  private pos = 0;
  private inFlight = 0;
  private wantDrain = false;
  private error: HashWriterError | undefined;
  private idle: Array<() => void> = [];

  begin(fd: number): void {
    this.fd = fd;
    this.hash = newSha256();
    this.pos = 0;
    this.error = undefined;
  }

  write(chunk: Uint8Array): boolean {
    if (this.error) return true;
    this.hash!.update(chunk);
    const at = this.pos;
    this.pos += chunk.length;
    this.inFlight++;
    const writeFrom = (off: number): void => {
      write(this.fd, chunk, off, chunk.length - off, at + off, (err, n) => {
        if (!err && n > 0 && off + n < chunk.length) return writeFrom(off + n); // short write: the rest
        this.settled(err ?? (n > 0 ? null : Object.assign(new Error('write returned 0'), { code: 'EIO' })));
      });
    };
    writeFrom(0);
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  async end(): Promise<{ sha256: string; size: number }> {
    await this.quiet();
    if (this.error) throw this.error;
    await new Promise<void>((resolve, reject) => fsync(this.fd, (err) => (err ? reject(this.fail(err)) : resolve())));
    const sha256 = this.hash!.digest('hex');
    this.hash = undefined;
    return { sha256, size: this.pos };
  }

  async stop(): Promise<void> {
    await this.quiet();
    this.hash = undefined;
  }

  release(): void {
    this.onDrain = undefined;
    this.onError = undefined;
  }

  private quiet(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  private fail(err: NodeJS.ErrnoException): HashWriterError {
    if (!this.error) {
      this.error = new HashWriterError(`cannot write the temp file: ${err.code ?? err.message}`, err.code);
      this.onError?.(this.error);
    }
    return this.error;
  }

  private settled(err: NodeJS.ErrnoException | null): void {
    this.inFlight--;
    if (err) this.fail(err);
    if (this.inFlight === 0) for (const r of this.idle.splice(0)) r();
    if (this.wantDrain && this.inFlight < MAX_IN_FLIGHT / 2) {
      this.wantDrain = false;
      this.onDrain?.();
    }
  }
}
