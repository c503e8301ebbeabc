/**
 * "Which peer has H?" for the loopback lookup (lib/http/server.ts, `GET /NAME?sha256=` from
 * loopback for a hash not held): the peer cache first (an answer with no wait), then every live
 * finder at once — mDNS (one browse), and any other source of peers, such as a wide-area DNS zone —
 * for at most `windowMs`; the first peer found ends the lookup, the window's end without one is
 * undefined (→ 404). A finder feeds what it learns into the cache (the mDNS finder hands it every
 * response it hears; another finder calls `cache.put(hash, peer, ttl, via)`), and a peer the cache
 * hears meanwhile on the daemon's own sockets ends the wait as well.
 */
import type { Peer, PeerVia } from './types.js';
import { browse, type BrowserConfig } from './browser.js';
import type { CachedPeer, PeerCache } from './peer-cache.js';

/** Looks for peers of one hash until `signal` aborts or it has nothing more to ask; reports each. */
export type PeerFinder = (sha256: string, opts: { signal: AbortSignal; onPeer: (peer: Peer, via: PeerVia) => void }) => Promise<void>;

/**
 * The window a loopback lookup waits for a peer when the cache has none, and when its browse sends
 * the PTR query: at 0, 100 and 200 ms, so a late answer still has 100 ms. Peers answer a one-shot
 * query at once (ours in ~10–20 ms on a LAN), so this is for lost packets; the 404 for an unknown
 * hash then comes after ~300 ms, with room under the 500 ms target for a busy machine
 * (issue 9; upstream passimd takes 1.0 s). bench/measures/loopback-lookup.ts measures it.
 */
export const LOOKUP_WINDOW_MS = 300;
export const LOOKUP_QUERY_SCHEDULE_MS = [0, 100, 200];

export interface LookupOptions {
  cache?: PeerCache;
  finders: PeerFinder[];
  windowMs?: number;
  /** which of several peers to answer with; default a random one (as upstream) */
  pick?: (peers: CachedPeer[]) => CachedPeer;
}

const randomPick = (peers: CachedPeer[]) => peers[Math.floor(Math.random() * peers.length)]!;

export async function lookupPeer(sha256: string, opts: LookupOptions): Promise<CachedPeer | undefined> {
  const pick = opts.pick ?? randomPick;
  const cached = opts.cache?.lookup(sha256) ?? [];
  if (cached.length) return pick(cached);
  if (!opts.finders.length) return undefined;
  const ac = new AbortController();
  const windowMs = opts.windowMs ?? LOOKUP_WINDOW_MS;
  return new Promise<CachedPeer | undefined>((resolve) => {
    let settled = false;
    const finish = (peer: CachedPeer | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ac.abort();
      resolve(peer);
    };
    const timer = setTimeout(() => finish(undefined), windowMs);
    let running = opts.finders.length;
    for (const find of opts.finders) {
      find(sha256, { signal: ac.signal, onPeer: (peer, via) => finish({ ...peer, via }) })
        .catch(() => {})
        .finally(() => {
          if (--running === 0) finish(undefined);
        });
    }
    void opts.cache?.waitFor(sha256, ac.signal).then((found) => {
      if (!found || settled) return;
      const now = opts.cache!.lookup(sha256);
      if (now.length) finish(pick(now));
    });
  });
}

/**
 * The mDNS finder: one browse of `windowMs`, every response it hears fed into the cache. `options`
 * is read at each lookup (the daemon's own instance name may change after a conflict).
 */
export function mdnsFinder(options: () => Omit<BrowserConfig, 'signal' | 'onResponse' | 'timeoutMs' | 'maxMs'>, cache?: PeerCache, windowMs = LOOKUP_WINDOW_MS): PeerFinder {
  return async (sha256, { signal, onPeer }) => {
    const it = browse(sha256, {
      ...options(),
      timeoutMs: windowMs,
      maxMs: windowMs,
      queryScheduleMs: LOOKUP_QUERY_SCHEDULE_MS.filter((t) => t < windowMs),
      signal,
      onResponse: cache ? (msg, from) => cache.ingest(msg, from) : undefined,
    } as BrowserConfig);
    for await (const peer of it) onPeer(peer, 'mdns');
  };
}
