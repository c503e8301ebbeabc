/**
 * A checksum worker thread (started by checksum-pool.ts). Two kinds of job, answered in order:
 *  - `file`: `{ path, size, mtimeNs }` → `{ sha256, cached }` (a big file, hashed alone);
 *  - `list`: a static dir and a batch of names → for each regular file its stat data and, for
 *    files of at most one read chunk, its hash (the xattr cache, else hashed); bigger files come back without one,
 *    for the daemon to send as `file` jobs, so they never hold up a batch.
 * Hashing is the store's own code (static-checksum.ts): blocking xattr calls and reads, one reused buffer.
 */
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { HASH_CHUNK } from '../core/sha256.js';
import { staticChecksum } from './static-checksum.js';
import { statStaticFile, type StaticFile } from './static-scan.js';

export type ChecksumJob =
  | { id: number; kind: 'file'; path: string; size: number; mtimeNs: string }
  | { id: number; kind: 'list'; dir: string; names: string[] };

export interface ListedFile extends StaticFile {
  /** absent for a file bigger than one chunk whose hash is not known yet */
  sha256?: string;
  cached?: boolean;
}

export type ChecksumAnswer =
  | { id: number; sha256: string; cached: boolean }
  | { id: number; files: ListedFile[]; hashed: number; cached: number }
  | { id: number; error: string; code?: string };

const port = parentPort;
if (port) {
  /** one read buffer for every small file this thread hashes */
  const scratch = Buffer.allocUnsafe(HASH_CHUNK);
  const queue: ChecksumJob[] = [];
  let busy = false;
  const list = async (job: Extract<ChecksumJob, { kind: 'list' }>): Promise<ChecksumAnswer> => {
    const files: ListedFile[] = [];
    let hashed = 0;
    let cached = 0;
    const base = join(job.dir, '/');
    for (const name of job.names) {
      const f: ListedFile | undefined = statStaticFile(job.dir, name, base + name);
      if (!f) continue;
      if (f.size <= HASH_CHUNK) {
        try {
          const r = await staticChecksum(f.path, f, scratch);
          f.sha256 = r.sha256;
          f.cached = r.cached;
          if (r.cached) cached++;
          else hashed++;
        } catch {
          continue; // vanished or unreadable: the next scan sees it again
        }
      }
      files.push(f);
    }
    return { id: job.id, files, hashed, cached };
  };
  const drain = async () => {
    busy = true;
    while (queue.length) {
      const job = queue.shift()!;
      let answer: ChecksumAnswer;
      try {
        if (job.kind === 'list') answer = await list(job);
        else {
          const r = await staticChecksum(job.path, job, scratch);
          answer = { id: job.id, sha256: r.sha256, cached: r.cached };
        }
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
