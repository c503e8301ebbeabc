/**
 * A checksum worker thread (started by checksum-pool.ts): takes `{ id, path, size, mtimeNs }`
 * messages and answers `{ id, sha256, cached }` or `{ id, error }`, one file at a time, with the
 * same code the store uses (static-checksum.ts: xattr cache, then sha256, then the cache written).
 */
import { parentPort } from 'node:worker_threads';
import { HASH_CHUNK } from '../core/sha256.js';
import { staticChecksum } from './static-checksum.js';

export interface ChecksumJob {
  id: number;
  path: string;
  size: number;
  mtimeNs: string;
}

export type ChecksumAnswer =
  | { id: number; sha256: string; cached: boolean }
  | { id: number; error: string; code?: string };

const port = parentPort;
if (port) {
  /** one read buffer for every small file this thread hashes */
  const scratch = Buffer.allocUnsafe(HASH_CHUNK);
  const queue: ChecksumJob[] = [];
  let busy = false;
  const drain = async () => {
    busy = true;
    while (queue.length) {
      const job = queue.shift()!;
      let answer: ChecksumAnswer;
      try {
        const r = await staticChecksum(job.path, job, scratch);
        answer = { id: job.id, sha256: r.sha256, cached: r.cached };
      } catch (err) {
        answer = { id: job.id, error: (err as Error).message, code: (err as NodeJS.ErrnoException).code };
      }
      port.postMessage(answer);
    }
    busy = false;
  };
  port.on('message', (job: ChecksumJob) => {
    queue.push(job);
    if (!busy) void drain();
  });
}
