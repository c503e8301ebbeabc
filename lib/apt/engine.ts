/**
 * The fetch engine behind the method: hash-known requests are handed to the batch engine
 * (lib/fetch/batch.ts), which tries the local daemon and LAN peers, then the URI, verifies and
 * writes apt's Filename through temp + rename. One batch per method process: requests apt
 * pipelines close together share a discovery round and connections. The method publishes to the
 * local daemon itself, after answering apt (publisher.ts), so the batch is told not to.
 */
import type { FetchBatchLike } from '../fetch/batch-api.js';

export interface EngineOptions {
  /** recorded by the daemon as the publishing command */
  cmdline: string;
  /** control socket of the local daemon (default: PASSIM_SOCKET / the usual path) */
  socketPath?: string;
  /** aborts every download in flight (the method is exiting) */
  signal?: AbortSignal;
  /** publish each verified file to the local daemon before resolving (default true) */
  publish?: boolean;
}

export type EngineFactory = (o: EngineOptions) => Promise<FetchBatchLike>;

export const createEngine: EngineFactory = async (o) => {
  const { FetchBatch } = await import('../fetch/batch.js');
  // apt sends many files: peer connections kept alive across them (peerPool), as for `fetch --from`
  return new FetchBatch({ cmdline: o.cmdline, socketPath: o.socketPath, signal: o.signal, publish: o.publish, peerPool: true });
};
