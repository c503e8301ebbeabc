/**
 * The fetch engine behind the method: hash-known requests are handed to the batch engine
 * (lib/fetch/batch-api.ts FetchBatchLike), which tries LAN peers, then the URI, verifies, writes
 * apt's Filename through temp + rename and publishes to the local daemon.
 *
 * Until lib/fetch/batch.ts is in, this stands in for it: every add() is one fetchFile() (the same
 * client `passim fetch` is), run in parallel.
 */
import type { BatchEntry, FetchBatchLike } from '../fetch/batch-api.js';
import type { FetchResult } from '../fetch/fetch.js';

export interface EngineOptions {
  /** recorded by the daemon as the publishing command */
  cmdline: string;
  /** control socket of the local daemon (default: PASSIM_SOCKET / the usual path) */
  socketPath?: string;
}

export type EngineFactory = (o: EngineOptions) => Promise<FetchBatchLike>;

export const createEngine: EngineFactory = async (o) => {
  const { fetchFile } = await import('../fetch/fetch.js');
  const pending = new Set<Promise<unknown>>();
  return {
    add(entry: BatchEntry): Promise<FetchResult> {
      const p = fetchFile({ name: entry.name, sha256: entry.sha256, cdn: entry.urls, output: entry.output, cmdline: o.cmdline, socketPath: o.socketPath });
      const tracked = p.catch(() => undefined).finally(() => pending.delete(tracked));
      pending.add(tracked);
      return p;
    },
    async close() {
      await Promise.all([...pending]);
    },
  };
};
