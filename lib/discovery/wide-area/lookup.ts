/**
 * Finds peers for hashes through a DNS zone (wide-area DNS-SD, RFC 6763 §11) with ordinary
 * unicast queries through node:dns: PTR of `_<60 hex>._sub._cache._tcp.<domain>`, then SRV and
 * TXT of each instance found, then A (and AAAA with IPv6) of the SRV target. Additional records
 * are never relied on (a recursive resolver may drop them). An instance whose TXT says it was last
 * refreshed long ago is a host that stopped (crashed): it is skipped without a connection attempt.
 *
 * Each round uses its own Resolver, so no answer cached by an earlier round (c-ares caches,
 * negative answers included) hides a record added since.
 */
import { Resolver } from 'node:dns/promises';
import type { BrowseMany, BrowseManyOptions, Browse, BrowseOptions, Peer } from '../types.js';
import { normaliseSha256 } from '../../core/sha256.js';
import { fmt, type ServerAddress } from './transport.js';
import { instanceOfName, normaliseDomain, refreshedOf, subtypeNameIn } from './records.js';

export interface ZoneLookupConfig {
  domain: string;
  /** ask this server; default the system resolver */
  server?: ServerAddress;
  /** also AAAA records */
  ipv6?: boolean;
  /** an instance refreshed longer ago than this is skipped; default 300 s (five missed refreshes) */
  staleAfterSec?: number;
  /** lookups in flight at most; default 64 */
  concurrency?: number;
  now?: () => number;
}

const DEFAULT_TIMEOUT_MS = 1000;

/** BrowseMany over the zone: resolves when every lookup has answered or timed out. */
export function zoneBrowseMany(cfg: ZoneLookupConfig): BrowseMany {
  const domain = normaliseDomain(cfg.domain);
  // the first Resolver#setServers of a process blocks for 20–120 ms (measured on a loaded 2-core
  // machine; later calls take ~0): pay it here, when the finder is made, not inside a fetch's round
  if (cfg.server && domain) new Resolver().setServers([fmt(cfg.server)]);
  return async (hashes: string[], opts: BrowseManyOptions): Promise<void> => {
    const list = hashes.map((h) => normaliseSha256(h)); // InvalidHashError up front
    if (!domain || opts.signal?.aborted) return;
    const timeoutMs = Math.max(50, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
    if (cfg.server) resolver.setServers([fmt(cfg.server)]);
    const exclude = new Set((opts.excludeInstances ?? []).map((s) => s.toLowerCase()));
    const staleAfter = cfg.staleAfterSec ?? 300;
    const now = cfg.now ?? (() => Date.now() / 1000);
    const instances = new Map<string, Promise<Peer[]>>();
    let cancelled = false;
    const cancel = () => { cancelled = true; resolver.cancel(); };
    opts.signal?.addEventListener('abort', cancel, { once: true });
    // a server that never answers costs each query timeout × tries, three levels deep at most
    const cap = setTimeout(cancel, timeoutMs * 6);

    const resolveInstance = async (fqdn: string, instance: string): Promise<Peer[]> => {
      const [srvs, txt] = await Promise.all([
        resolver.resolveSrv(fqdn).catch(() => []),
        resolver.resolveTxt(fqdn).catch(() => [] as string[][]),
      ]);
      const refreshed = refreshedOf(txt);
      if (refreshed !== undefined && now() - refreshed > staleAfter) return [];
      const peers: Peer[] = [];
      await Promise.all(srvs.map(async (srv) => {
        const lookups = [resolver.resolve4(srv.name).catch(() => [] as string[])];
        if (cfg.ipv6) lookups.push(resolver.resolve6(srv.name).catch(() => [] as string[]));
        for (const addrs of await Promise.all(lookups)) {
          for (const address of addrs) peers.push({ address, port: srv.port, instance, host: srv.name });
        }
      }));
      return peers;
    };

    const one = async (sha256: string) => {
      let ptrs: string[];
      try {
        ptrs = await resolver.resolvePtr(subtypeNameIn(sha256, domain));
      } catch {
        return; // NXDOMAIN / NODATA / timeout: nobody in the zone has it
      }
      await Promise.all(ptrs.map(async (ptr) => {
        const instance = instanceOfName(ptr, domain);
        if (!instance || exclude.has(instance.toLowerCase())) return;
        const key = ptr.toLowerCase();
        let p = instances.get(key);
        if (!p) instances.set(key, (p = resolveInstance(ptr, instance)));
        for (const peer of await p) if (!cancelled) opts.onPeer(sha256, peer, 'dns');
      }));
    };

    try {
      const queue = [...new Set(list)];
      const workers = Array.from({ length: Math.min(cfg.concurrency ?? 64, queue.length) }, async () => {
        for (let h = queue.shift(); h !== undefined && !cancelled; h = queue.shift()) await one(h);
      });
      await Promise.all(workers);
    } finally {
      clearTimeout(cap);
      opts.signal?.removeEventListener('abort', cancel);
    }
  };
}

/** The single-hash Browse shape (fetch of one file, the daemon's loopback lookup) over the zone. */
export function zoneBrowse(cfg: ZoneLookupConfig): Browse {
  const many = zoneBrowseMany(cfg);
  return (sha256: string, opts: BrowseOptions = {}): AsyncIterable<Peer> => ({
    [Symbol.asyncIterator]() {
      if (opts.kind && opts.kind !== 'item') {
        return (async function* () { /* claims are mDNS only */ })();
      }
      const queue: Peer[] = [];
      let done = false;
      let wake: (() => void) | undefined;
      const round = many([sha256], { ...opts, onPeer: (_h, p) => { queue.push(p); wake?.(); } })
        .catch(() => undefined)
        .finally(() => { done = true; wake?.(); });
      return (async function* () {
        for (;;) {
          const p = queue.shift();
          if (p) { yield p; continue; }
          if (done) break;
          await new Promise<void>((r) => { wake = r; });
          wake = undefined;
        }
        await round;
      })();
    },
  });
}
