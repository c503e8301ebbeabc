/**
 * The batch fetch engine's contract (lib/fetch/batch.ts implements it). A single `passim fetch NAME`
 * is a batch of one; `passim fetch --from FILE`, the apt method (lib/apt/) and the wrappers feed
 * the same engine. Entries may be added at any time (apt's pipeline sends requests one by one);
 * hashes added close together share one discovery round.
 */
import type { FetchResult } from './result.js';

export interface BatchEntry {
  /** expected sha256 (any case) */
  sha256: string;
  /** basename: what peers serve it as, and the default output name */
  name: string;
  /** mirror/CDN URLs tried in order after the peers */
  urls: string[];
  /** full target path; default <outputDir>/<name>; '-' = stdout (batch of one only) */
  output?: string;
}

export interface FetchBatchLike {
  /**
   * Queues one file. Resolves with the verified, renamed file (and publishes it to the local
   * daemon in the batch's one publish session); rejects with a PassimError (NotFoundError,
   * ChecksumMismatchError, …) whose exit code says why. Never leaves a partial file at `output`.
   */
  add(entry: BatchEntry): Promise<FetchResult>;
  /** Starts what every file needs (asking the local daemon what it holds) before the first is added. */
  warm?(): void;
  /** Waits for every queued file and publish, then releases sockets and connections. */
  close(): Promise<void>;
}
