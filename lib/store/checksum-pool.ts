/**
 * Hashes static-dir files on every core: a few worker threads (checksum-worker.ts), started when
 * there is work and ended after a short idle time, so a daemon that is not hashing holds none of
 * their memory. Each worker gets a few jobs at once (no round trip between small files); results
 * come back in any order.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startModuleWorker } from '../core/module-worker.js';
import { HASH_CHUNK } from '../core/sha256.js';
import type { ChecksumAnswer, ChecksumJob, ListedFile } from './checksum-worker.js';
import type { ChecksumResult, FileStamp } from './static-checksum.js';

export interface ChecksumPoolOptions {
  /** worker threads at most (default: the number of cores, at most 4) */
  size?: number;
  /** a worker with nothing to do for this long ends (ms, default 1000) */
  idleMs?: number;
}

/** jobs sent to one worker before its answers come back */
const IN_FLIGHT = 16;

interface Slot {
  worker: Worker;
  inFlight: number;
  /** a file bigger than one read chunk is being hashed: nothing more is queued behind it */
  big: boolean;
  idleTimer?: NodeJS.Timeout;
}

interface Pending {
  job: ChecksumJob;
  /** files of this job whose hash is not known yet, for `pending` */
  files: number;
  resolve(a: ChecksumAnswer): void;
  reject(err: Error): void;
  slot?: Slot;
}

export class ChecksumPool {
  private readonly size: number;
  private readonly idleMs: number;
  private readonly slots = new Set<Slot>();
  /** small files (one read chunk at most), and bigger ones */
  private readonly queue: Pending[] = [];
  private readonly bigQueue: Pending[] = [];
  private readonly sent = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  /** files answered so far: read and hashed, or taken from the xattr cache */
  readonly stats = { hashed: 0, cached: 0 };

  constructor(opts: ChecksumPoolOptions = {}) {
    // two at least: a big file takes one thread, the small ones keep coming on the other
    this.size = Math.max(1, opts.size ?? Math.min(Math.max(availableParallelism(), 2), 4));
    this.idleMs = opts.idleMs ?? 1000;
  }

  /** Files whose hash is being looked for (queued or in a worker). */
  get pending(): number {
    let n = 0;
    for (const p of this.queue) n += p.files;
    for (const p of this.bigQueue) n += p.files;
    for (const p of this.sent.values()) n += p.files;
    return n;
  }

  /** Worker threads running now. */
  get threads(): number {
    return this.slots.size;
  }

  /** The sha256 of one file (xattr cache first; the cache is written). */
  async checksum(path: string, stamp: FileStamp): Promise<ChecksumResult> {
    const a = await this.submit({ id: this.nextId++, kind: 'file', path, size: stamp.size, mtimeNs: stamp.mtimeNs }, 1, stamp.size > HASH_CHUNK);
    const { sha256, cached } = a as ChecksumResult;
    return { sha256, cached };
  }

  /**
   * Stats `names` in `dir` and hashes the regular files of at most one read chunk. Bigger files
   * come back without a hash: ask checksum() for each.
   */
  async list(dir: string, names: string[]): Promise<ListedFile[]> {
    const a = await this.submit({ id: this.nextId++, kind: 'list', dir, names }, names.length, false);
    return (a as { files: ListedFile[] }).files;
  }

  private submit(job: ChecksumJob, files: number, big: boolean): Promise<ChecksumAnswer> {
    if (this.closed) return Promise.reject(new Error('the checksum pool is closed'));
    return new Promise((resolve, reject) => {
      (big ? this.bigQueue : this.queue).push({ job, files, resolve, reject });
      this.dispatch();
    });
  }

  /** Sends queued jobs to workers: a big file only to an idle worker, small ones to the least busy. */
  private dispatch(): void {
    for (;;) {
      let sent = false;
      for (const big of [true, false]) {
        const q = big ? this.bigQueue : this.queue;
        if (!q.length) continue;
        const slot = this.freeSlot(big);
        if (!slot) continue;
        this.send(slot, q.shift()!, big);
        sent = true;
      }
      if (!sent) return;
    }
  }

  private freeSlot(big: boolean): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) {
      if (s.big || s.inFlight >= IN_FLIGHT || (big && s.inFlight > 0)) continue;
      if (!best || s.inFlight < best.inFlight) best = s;
    }
    if (!best || best.inFlight > 0) best = this.spawn() ?? best;
    return best;
  }

  private send(slot: Slot, p: Pending, big: boolean): void {
    p.slot = slot;
    slot.inFlight++;
    slot.big = big;
    if (slot.idleTimer) {
      clearTimeout(slot.idleTimer);
      slot.idleTimer = undefined;
    }
    if (slot.inFlight === 1) slot.worker.ref(); // busy: keeps the process alive until it answers
    this.sent.set(p.job.id, p);
    slot.worker.postMessage(p.job);
  }

  private spawn(): Slot | undefined {
    if (this.slots.size >= this.size) return undefined;
    // small heaps: a worker holds one read buffer and a few jobs, nothing more
    const worker = startModuleWorker(import.meta.url, './checksum-worker', { resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 } });
    const slot: Slot = { worker, inFlight: 0, big: false };
    worker.on('message', (a: ChecksumAnswer) => this.answer(slot, a));
    const fail = (err: Error) => this.lost(slot, err);
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`checksum worker exited (${code})`)));
    worker.unref();
    this.slots.add(slot);
    return slot;
  }

  private answer(slot: Slot, a: ChecksumAnswer): void {
    const p = this.sent.get(a.id);
    if (!p) return;
    this.sent.delete(a.id);
    slot.inFlight--;
    slot.big = false;
    if ('error' in a) p.reject(Object.assign(new Error(a.error), { code: a.code }));
    else {
      if ('files' in a) {
        this.stats.hashed += a.hashed;
        this.stats.cached += a.cached;
        p.resolve(a);
      } else {
        if (a.cached) this.stats.cached++;
        else this.stats.hashed++;
        p.resolve({ id: a.id, sha256: a.sha256, cached: a.cached });
      }
    }
    if (slot.inFlight === 0) slot.worker.unref();
    if (slot.inFlight === 0 && !this.queue.length && !this.bigQueue.length) {
      slot.idleTimer = setTimeout(() => void this.retire(slot), this.idleMs);
      slot.idleTimer.unref();
    }
    this.dispatch();
  }

  /** A worker that died: its jobs fail (the next scan retries those files). */
  private lost(slot: Slot, err: Error): void {
    if (!this.slots.delete(slot)) return;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    for (const [id, p] of this.sent) {
      if (p.slot !== slot) continue;
      this.sent.delete(id);
      p.reject(err);
    }
    if (!this.closed) this.dispatch();
  }

  private async retire(slot: Slot): Promise<void> {
    if (slot.inFlight > 0 || !this.slots.delete(slot)) return;
    await slot.worker.terminate();
  }

  /**
   * Ends the workers that have nothing to do now, without waiting for their idle time (a scan is
   * over: each thread holds several MiB of memory until it ends). Busy ones end when idle as usual.
   */
  retireIdle(): void {
    if (this.queue.length || this.bigQueue.length) return;
    for (const slot of [...this.slots]) {
      if (slot.inFlight > 0) continue;
      if (slot.idleTimer) clearTimeout(slot.idleTimer);
      void this.retire(slot);
    }
  }

  /** Ends every worker; queued and running jobs are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('the checksum pool is closed');
    for (const p of [...this.queue.splice(0), ...this.bigQueue.splice(0)]) p.reject(err);
    for (const p of this.sent.values()) p.reject(err);
    this.sent.clear();
    const slots = [...this.slots];
    this.slots.clear();
    await Promise.all(slots.map((s) => {
      if (s.idleTimer) clearTimeout(s.idleTimer);
      return s.worker.terminate();
    }));
  }
}
