/**
 * Hash and write a download off the main thread: the main thread (TLS, HTTP) copies each body
 * chunk into 1 MiB batches and hands full batches to a worker (hash-write-worker.ts), which
 * sha256-hashes and writes them to the temp file and hands the batch back. The two run in
 * parallel; a bounded pool of batch slots is the backpressure (write() returns false when all
 * are with the worker; `onDrain` says when to read on). The slots are one shared, page-aligned
 * memory (a WebAssembly.Memory's buffer: the one kind of buffer JavaScript gets page-aligned),
 * so the worker can write them with O_DIRECT (`direct`, see hash-write-worker.ts).
 *
 *   const w = acquireHashWriter();          // early: the worker boots while we connect
 *   w.begin(fd, { direct: true });          // direct: the file is fsynced at the end anyway
 *   if (!w.write(chunk)) body.pause();  w.onDrain = () => body.resume();
 *   const { sha256, size } = await w.end(); // all written and fsynced
 *   // or on failure: await w.stop();       // nothing of the worker touches fd any more
 *   w.release();
 *
 * Workers are kept (unref'd, at most IDLE_MAX) for the next download of the process.
 */
import { Worker } from 'node:worker_threads';
import { WORKER_SOURCE, type FromWorker, type ToWorker } from './hash-write-worker.js';
import { reapplyV8Flags } from './kept-v8-flags.js';

/** Size of one batch handed to the worker. */
export const BATCH_SIZE = 1024 * 1024;
/** Batches in flight at most (memory bound: BATCH_SIZE × this). */
export const MAX_BATCHES = 16;
/** WebAssembly memory pages are 64 KiB */
const WASM_PAGE = 64 * 1024;

// what we use of the WebAssembly global (not in the ES lib types)
declare const WebAssembly: {
  Memory: new (d: { initial: number; maximum: number; shared: true }) => { buffer: SharedArrayBuffer };
};
/** Bytes between background fdatasyncs in the worker, writing through the page cache. */
export const SYNC_EVERY = 32 * 1024 * 1024;
/**
 * The same, writing O_DIRECT: the fdatasync then only has the disk flush its write cache (no
 * write-back), and more often is better: measured on the peer-download bench at 256 MiB (median
 * wall of 5), 32 MiB 1.75 s, 16 MiB 1.30 s, 8 MiB 1.30 s, 4 MiB 1.34 s, none (one fsync at the end,
 * 0.2 s of it) 1.38 s.
 */
export const DIRECT_SYNC_EVERY = 8 * 1024 * 1024;
const IDLE_MAX = 2;

export class HashWriterError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
    this.name = 'HashWriterError';
  }
}

/** What verifiedDownload streams a body into: hashes it and writes it to an open fd. */
export interface HashingSink {
  /** called when write() returned false and the sink can take more */
  onDrain: (() => void) | undefined;
  /** called once when writing fails */
  onError: ((err: HashWriterError) => void) | undefined;
  /**
   * a new download into `fd` (stays open and owned by the caller, open for writing); `direct`:
   * the caller will fsync the file, so whole blocks may bypass the page cache (where the sink can)
   */
  begin(fd: number, o?: { direct?: boolean }): void;
  /** takes the chunk; false = wait for onDrain before more */
  write(chunk: Uint8Array): boolean;
  /** every byte hashed and written (and fsynced unless fsync is false): the sha256 and byte count */
  end(fsync?: boolean): Promise<HashedFile>;
  /** abandons the download; resolves once nothing of the sink touches the fd */
  stop(): Promise<void>;
  /** done with it (workers go back to the pool unless keep is false) */
  release(o?: { keep?: boolean }): void;
}

export interface HashedFile {
  sha256: string;
  size: number;
  /** bytes written around the page cache (O_DIRECT) */
  direct?: number;
}

interface Waiter {
  kind: 'end' | 'stop';
  resolve: (v: HashedFile | undefined) => void;
  reject: (e: Error) => void;
}

const idle: HashWriter[] = [];

export class HashWriter implements HashingSink {
  /** called when write() returned false and a buffer is free again */
  onDrain: (() => void) | undefined;
  /** called once when the worker fails (write error, crash) */
  onError: ((err: HashWriterError) => void) | undefined;

  private readonly worker: Worker;
  /** MAX_BATCHES slots of BATCH_SIZE bytes, page-aligned, shared with the worker */
  private readonly slots: SharedArrayBuffer;
  /** slots back from the worker; slots never used yet are `used`…MAX_BATCHES-1 */
  private free: number[] = [];
  private used = 0;
  private curSlot = -1;
  private cur: Uint8Array | undefined;
  private curLen = 0;
  private wantDrain = false;
  private error: HashWriterError | undefined;
  private dead = false;
  private deadError: HashWriterError | undefined;
  private active = false;
  private waiter: Waiter | undefined;

  constructor() {
    // no execArgv of ours (loaders, profilers): the worker needs node built-ins only
    const pages = (MAX_BATCHES * BATCH_SIZE) / WASM_PAGE;
    this.slots = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer;
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { slots: this.slots, slotSize: BATCH_SIZE } });
    // a new isolate resets some process-wide V8 flags (the daemon's young generation, kept-v8-flags.ts)
    this.worker.once('online', reapplyV8Flags);
    this.worker.once('exit', reapplyV8Flags);
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
    this.worker.on('error', (err) => {
      this.deadError ??= new HashWriterError(`hash worker failed: ${err.message}`);
      this.onFailure(this.deadError);
    });
    this.worker.on('exit', (code) => {
      this.dead = true;
      this.deadError ??= new HashWriterError(`hash worker exited (${code})`);
      this.onFailure(this.deadError);
    });
  }

  /** A new download into `fd` (stays open and owned by the caller). */
  begin(fd: number, o: { direct?: boolean; syncEvery?: number; directSyncEvery?: number } = {}): void {
    if (this.active) throw new Error('HashWriter: begin while a download is active');
    this.active = true;
    this.error = this.deadError;
    this.curLen = 0;
    this.wantDrain = false;
    this.worker.ref();
    this.post({
      t: 'begin', fd, direct: o.direct === true, syncEvery: o.syncEvery ?? SYNC_EVERY, directSyncEvery: o.directSyncEvery ?? DIRECT_SYNC_EVERY,
    });
  }

  /** Takes the chunk (copied); false = no free batch buffer left: wait for onDrain before more. */
  write(chunk: Uint8Array): boolean {
    if (this.error) return true; // dropped: end() reports the error
    let off = 0;
    while (off < chunk.length) {
      if (!this.cur) {
        const slot = this.takeSlot();
        if (slot < 0) {
          // keep the rest: it goes out with the first buffer that comes back
          this.pending = this.pending ? concat(this.pending, chunk.subarray(off)) : chunk.subarray(off);
          this.wantDrain = true;
          return false;
        }
        this.curSlot = slot;
        this.cur = new Uint8Array(this.slots, slot * BATCH_SIZE, BATCH_SIZE);
        this.curLen = 0;
      }
      const n = Math.min(chunk.length - off, BATCH_SIZE - this.curLen);
      this.cur.set(chunk.subarray(off, off + n), this.curLen);
      this.curLen += n;
      off += n;
      if (this.curLen === BATCH_SIZE) this.flush();
    }
    if (this.free.length === 0 && this.used >= MAX_BATCHES && !this.cur) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  /** Everything written so far, hashed, written and fsynced: the sha256 and byte count. */
  async end(fsync = true): Promise<HashedFile> {
    // a chunk still waiting for a buffer goes out first
    while (this.pending && !this.error) await new Promise<void>((resolve) => { this.pendingDrained = resolve; });
    if (this.error) throw this.error;
    this.flush();
    const r = await new Promise<HashedFile | undefined>((resolve, reject) => {
      this.waiter = { kind: 'end', resolve, reject };
      this.post({ t: 'end', fsync });
    });
    this.active = false;
    return r!;
  }

  /** Abandons the download; resolves once the worker no longer touches the fd. */
  async stop(): Promise<void> {
    if (!this.active) return;
    this.pending = undefined;
    this.pendingDrained?.();
    this.dropCurrent();
    if (!this.dead) {
      await new Promise<unknown>((resolve, reject) => {
        this.waiter = { kind: 'stop', resolve, reject };
        this.post({ t: 'stop' });
      }).catch(() => undefined);
    }
    this.active = false;
  }

  /** false once its worker failed or exited */
  get usable(): boolean {
    return !this.dead && !this.deadError;
  }

  /**
   * Back to the pool (or ended, if it failed or the pool is full); `keep: false` ends it anyway
   * (the daemon keeps no idle worker and its batch memory between rare big publishes).
   */
  release(o: { keep?: boolean } = {}): void {
    this.onDrain = undefined;
    this.onError = undefined;
    if (o.keep === false || this.active || this.dead || this.error || idle.length >= IDLE_MAX) {
      this.dead = true;
      void this.worker.terminate();
      return;
    }
    this.worker.unref();
    idle.push(this);
  }

  /** the part of a chunk that found no free buffer (sent when one comes back) */
  private pending: Uint8Array | undefined;
  private pendingDrained: (() => void) | undefined;

  /** a free slot's number, or -1 when all are with the worker */
  private takeSlot(): number {
    const s = this.free.pop();
    if (s !== undefined) return s;
    if (this.used >= MAX_BATCHES) return -1;
    return this.used++;
  }

  /** the batch being filled goes back to the free slots unsent */
  private dropCurrent(): void {
    if (this.cur) this.free.push(this.curSlot);
    this.cur = undefined;
    this.curLen = 0;
  }

  private flush(): void {
    if (!this.cur) return;
    if (this.curLen === 0) return this.dropCurrent();
    const slot = this.curSlot;
    const len = this.curLen;
    this.cur = undefined;
    this.curLen = 0;
    this.post({ t: 'data', slot, len });
  }

  private post(m: ToWorker): void {
    if (this.dead) return;
    this.worker.postMessage(m);
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'buf': {
        this.free.push(m.slot);
        if (!this.active) return;
        if (this.pending) {
          const rest = this.pending;
          this.pending = undefined;
          const ok = this.write(rest);
          if (!this.pending) this.pendingDrained?.();
          if (!ok) return;
        }
        if (this.wantDrain) {
          this.wantDrain = false;
          this.onDrain?.();
        }
        return;
      }
      case 'done':
        this.settle({ sha256: m.sha256, size: m.size, direct: m.direct });
        return;
      case 'stopped':
        this.settle(undefined);
        return;
      case 'error':
        this.onFailure(new HashWriterError(`cannot write the temp file: ${m.code ?? m.message}`, m.code));
        return;
    }
  }

  private onFailure(err: HashWriterError): void {
    if (!this.active) return;
    if (!this.error) {
      this.error = err;
      this.onError?.(err);
    }
    this.pendingDrained?.();
    const w = this.waiter;
    if (!w) return;
    // end() fails at once; stop() waits for 'stopped', unless the worker is gone
    if (w.kind === 'end') {
      this.waiter = undefined;
      w.reject(err);
    } else if (this.dead) {
      this.waiter = undefined;
      w.resolve(undefined);
    }
  }

  private settle(v: HashedFile | undefined): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve(v);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * Bodies at least this big (or of unknown size) are hashed and written by a worker; smaller ones
 * on this thread (InlineHashWriter), where booting a worker would cost more than it saves.
 */
export const WORKER_MIN_SIZE = 8 * 1024 * 1024;

/** A writer from the pool, or a new one (its worker boots in the background). */
export function acquireHashWriter(): HashWriter {
  for (let w = idle.pop(); w; w = idle.pop()) if (w.usable) return w;
  return new HashWriter();
}
