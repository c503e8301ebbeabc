/**
 * Where a file may come from, in the order fetch tries them:
 *   1. the local daemon, when its control socket answers and it holds the hash (downloaded from its
 *      HTTPS port on 127.0.0.1 — the CLI never reads the store's files);
 *   2. peers, in the order the browser finds them (the first is tried as soon as it is found while
 *      the browser keeps collecting the others for failover);
 *   3. each CDN URL in the order given.
 * With herd suppression (herd.ts) between 2 and 3: when another host on the LAN is fetching the same
 * hash, the peers that get it meanwhile (or nothing, once it is time to go to the CDN after all);
 * and after 3 failed, one more look for a peer that has it by now.
 */
import { lstat } from 'node:fs/promises';
import type { ControlClient } from '../control/client.js';
import { withTimeout } from '../core/with-timeout.js';
import type { Peer } from '../discovery/types.js';

export type SourceKind = 'local' | 'peer' | 'cdn';

export interface Source {
  kind: SourceKind;
  url: string;
  /** peer address (peer and local sources) */
  peer?: string;
  /** size known in advance (the local daemon's item) */
  expectedSize?: number;
}

export interface LocalDaemon {
  port: number;
  /** its mDNS instance name, so the browser skips it */
  instance: string;
  /** the item, when the daemon holds this hash and it is enabled */
  item?: { basename: string; size: number };
}

/** What one look at the local daemon shows: its port, instance and the enabled items it holds. */
export interface DaemonView {
  port: number;
  instance: string;
  items: Map<string, { basename: string; size: number }>;
}

/**
 * Asks the local daemon (if any) for its status and items, once (a batch does this once for all
 * its files). Never throws: no daemon is a normal case.
 */
export async function probeDaemon(socketPath: string, timeoutMs = 2000): Promise<DaemonView | undefined> {
  let client: ControlClient | undefined;
  try {
    // no socket file, no daemon: no need to load the HTTP client to hear ENOENT from it
    if (!(await lstat(socketPath).catch(() => undefined))) return undefined;
    const { ControlClient } = await import('../control/client.js');
    client = new ControlClient(socketPath);
    const c = client;
    const [status, items] = await withTimeout(Promise.all([c.status(), c.items()]), timeoutMs, 'control socket timed out');
    const held = new Map<string, { basename: string; size: number }>();
    for (const i of items) if (!i.disabled) held.set(i.hash, { basename: i.basename, size: i.size });
    return { port: status.port, instance: status.name, items: held };
  } catch {
    return undefined;
  } finally {
    // destroy, not close: a daemon that never answers must not hold the process open
    if (client) await destroyClient(client);
  }
}

/** The daemon as one file's fetch sees it: with the item for that hash, if held. */
export function daemonFor(view: DaemonView, sha256: string): LocalDaemon {
  return { port: view.port, instance: view.instance, item: view.items.get(sha256) };
}

/** Asks the local daemon (if any) about the hash. Never throws: no daemon is a normal case. */
export async function probeLocalDaemon(socketPath: string, sha256: string, timeoutMs = 2000): Promise<LocalDaemon | undefined> {
  const view = await probeDaemon(socketPath, timeoutMs);
  return view && daemonFor(view, sha256);
}

/** Drops a ControlClient's connection at once (close() would wait for an unanswered request). */
export async function destroyClient(client: Pick<ControlClient, 'destroy'>): Promise<void> {
  await client.destroy().catch(() => {}); // already gone
}

export function peerUrl(host: string, port: number, name: string, sha256: string): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `https://${h}:${port}/${encodeURIComponent(name)}?sha256=${sha256}`;
}

export function localSource(d: LocalDaemon, sha256: string): Source | undefined {
  if (!d.item) return undefined;
  return { kind: 'local', url: peerUrl('127.0.0.1', d.port, d.item.basename, sha256), peer: '127.0.0.1', expectedSize: d.item.size };
}

/** How busy each peer is, and which one a fetch took (PeerQueue.next). */
export interface PeerSpread {
  load(p: Peer): number;
  took(p: Peer): void;
}

/**
 * Peers for one hash, queued as they are found (deduplicated by address:port, at most `maxPeers`;
 * scoped IPv6 and ill-shaped ones dropped). Whoever finds them calls `push`, and `end` once no more
 * will come. `next()` resolves with the next peer, or undefined once ended and empty.
 */
export class PeerQueue {
  private readonly queue: Peer[] = [];
  private readonly seen = new Set<string>();
  private waiters: Array<(p: Peer | undefined) => void> = [];
  private ended = false;
  private readonly max: number;
  /** how many peers were queued (after dedup) */
  found = 0;
  /** the finder's error, if it failed (a discovery failure only means "no peers") */
  error: unknown;

  constructor(maxPeers = 32) {
    this.max = maxPeers;
  }

  get done(): boolean {
    return this.ended;
  }

  /** Queues a peer; false when it was not taken (ended, full, duplicate or unusable). */
  push(p: Peer): boolean {
    if (this.ended || this.found >= this.max) return false;
    if (!p || typeof p.address !== 'string' || !Number.isInteger(p.port) || p.port <= 0 || p.port > 65535) return false;
    if (p.address.includes('%')) return false; // a scoped IPv6 address cannot be put in a URL
    const key = `${p.address}|${p.port}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    this.found++;
    const w = this.waiters.shift();
    if (w) w(p);
    else this.queue.push(p);
    return true;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  /**
   * The next peer: the first queued, or with `spread` the queued one it scores least busy (told at
   * once which it took, so concurrent picks see each other and files spread over the peers).
   */
  next(spread?: PeerSpread): Promise<Peer | undefined> {
    let i = 0;
    if (spread) for (let k = 1; k < this.queue.length; k++) if (spread.load(this.queue[k]!) < spread.load(this.queue[i]!)) i = k;
    const p = this.queue.splice(i, 1)[0];
    if (p) {
      spread?.took(p);
      return Promise.resolve(p);
    }
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** The sources in order, produced lazily so a peer is tried as soon as it is found. */
export async function* orderedSources(opts: {
  sha256: string;
  name: string;
  local?: LocalDaemon;
  peers?: Pick<PeerQueue, 'next'>;
  /** spreads files over the peers found (least busy first) */
  spread?: PeerSpread;
  cdn: string[];
  /** herd suppression (herd.ts), consulted once the peers are used up */
  herd?: { sources(tried: Set<string>): AsyncIterable<Source>; lateSources(tried: Set<string>): AsyncIterable<Source> };
  /** URLs already tried (the caller adds to it), so the herd never offers one twice */
  tried?: Set<string>;
}): AsyncGenerator<Source> {
  const tried = opts.tried ?? new Set<string>();
  if (opts.local) {
    const s = localSource(opts.local, opts.sha256);
    if (s) yield s;
  }
  if (opts.peers) {
    for (;;) {
      const p = await opts.peers.next(opts.spread);
      if (!p) break;
      yield { kind: 'peer', url: peerUrl(p.address, p.port, opts.name, opts.sha256), peer: p.address };
    }
  }
  if (opts.herd) yield* opts.herd.sources(tried);
  for (const url of opts.cdn) yield { kind: 'cdn', url };
  if (opts.herd && opts.cdn.length) yield* opts.herd.lateSources(tried);
}
