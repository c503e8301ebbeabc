/**
 * The daemon's cache of peers: what it hears on mDNS (every announcement, answer and goodbye on
 * its links), kept as the records came — subtype PTR `_<60 hex>._sub._cache._tcp.local` →
 * instance, instance → SRV (port, target), target → A/AAAA — each with its own TTL, so "who has
 * H?" is answered from memory, with no query and no wait.
 *
 * Rules (RFC 6762):
 * - a record lives `ttl` seconds from when it was last received;
 * - a goodbye (TTL 0, §10.1) makes the record dying: never returned again, deleted after 1 s
 *   unless the owner sends it again within that second (a rescue);
 * - a record with the cache-flush bit (§10.2) dooms the other records of its name and type
 *   received more than 1 s before (dying, deleted 1 s later): a new address replaces the old;
 * - our own instance is ignored; responses not from port 5353 are ignored (§6, by the caller);
 *   addresses a peer cannot be (browser.ts usablePeerAddress) are never kept.
 *
 * What is missing is asked for: an instance whose PTR is known but not its SRV, or a target
 * without an address (Avahi sends no additional records, NOTES.md), is queried for by the owner
 * of the sockets (`takeQueries`), and so are SRV and addresses of live instances at 80 % of their
 * TTL (§5.2), so a peer that went away without a goodbye drops out within one SRV/A TTL (120 s).
 * Each name is asked at most once per second, backing off to once a minute while unanswered,
 * and at most QUERY_BURST questions (then QUERY_PER_SECOND a second) are sent in all.
 *
 * Bounds (PEER_CACHE_LIMITS; at all of them at once the cache holds about 9 MiB of heap, measured):
 * - 8192 (hash, instance) pairs in all, at most 2048 from one source address; past the global
 *   bound the pair refreshed longest ago goes (a Map in refresh order: eviction is O(1)), past a
 *   source's bound that source's new pairs are dropped, so one flooding host can neither take more
 *   than a quarter of the cache nor push out what other hosts announced;
 * - 256 instances in all, at most 32 first heard from one source address (as browser.ts); past
 *   the global bound the oldest instance goes with its pairs;
 * - SRV only for known instances (≤ 4 each), A/AAAA only for targets of their SRVs (≤ 16 each);
 * - peers fed by another source (a wide-area DNS zone, `via: 'dns'`): 4096 (hash, peer) entries,
 *   the oldest going first.
 * Expired records go at the first sweep after the earliest expiry (sweeps run every 5 s when
 * started) and are never returned before; questions are looked at every second.
 *
 * Who else is on the LAN: the service PTRs (`_cache._tcp.local` → instance, RFC 6763 §4.1) heard
 * in announcements and answers — asked for when the cache starts (at 0, 1 and 3 s) — plus every
 * instance heard holding a hash. `alone()` is true once the cache has listened ALONE_AFTER_MS
 * without hearing any other live instance: then no peer can hold a file and none can be fetching
 * one, and a client may go straight to its mirror (batch.ts) and a loopback lookup answer 404 at
 * once. At most maxInstances service PTRs are kept (past it, "not alone").
 */
import type { Peer, PeerVia } from './types.js';
import type { LinkAddress } from './interfaces.js';
import type { Message, Question } from './packets.js';
import type { RR } from './records.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { instanceOf, nameKey, SERVICE, subtypeKey, subtypeKeyOf } from './names.js';
import { usablePeerAddress } from './browser.js';

export interface PeerCacheLimits {
  /** (hash, instance) pairs in all */
  maxPairs: number;
  /** (hash, instance) pairs learnt from one source address */
  maxPairsPerSource: number;
  maxInstances: number;
  /** instances first heard from one source address */
  maxInstancesPerSource: number;
  maxSrvPerInstance: number;
  maxAddressesPerHost: number;
  /** peers fed directly (`put`, e.g. from a DNS zone) */
  maxDirect: number;
}

export const PEER_CACHE_LIMITS: PeerCacheLimits = {
  maxPairs: 8192,
  maxPairsPerSource: 2048,
  maxInstances: 256,
  maxInstancesPerSource: 32,
  maxSrvPerInstance: 4,
  maxAddressesPerHost: 16,
  maxDirect: 4096,
};

/** Where a packet came from: the sender's address and the link it arrived on. */
export interface HeardFrom {
  address: string;
  link?: LinkAddress;
}

/** A peer known for a hash, and how it was learnt. */
export interface CachedPeer extends Peer {
  via: PeerVia;
}

/** Questions for one link (undefined: every link). */
export interface CacheQuery {
  link?: string;
  questions: Question[];
}

export interface PeerCacheOptions {
  /** ms clock (tests inject one); default Date.now */
  now?: () => number;
  /** our own instance label(s): never cached */
  isOwnInstance?: (instance: string) => boolean;
  /** keep AAAA records (default false: IPv4 only, as the daemon without IPv6=true) */
  ipv6?: boolean;
  limits?: Partial<PeerCacheLimits>;
  logger?: Logger;
}

interface Rec {
  /** ms time after which the record is gone */
  expires: number;
  /** ms time it was last received (cache-flush compares against it) */
  seen: number;
  /** its TTL in ms as last received (refresh queries at 80 %) */
  ttlMs: number;
  /** said goodbye or flushed: never returned, deleted at `expires` */
  dying: boolean;
}

interface Pair extends Rec {
  key: string;
  inst: string;
  source: string;
}

interface Instance {
  /** the label, e.g. "Passim-1A2B" */
  label: string;
  fqdn: string;
  /** interface it was heard on (queries go there; fe80:: addresses get it as zone) */
  link?: string;
  source: string;
  pairs: number;
  srv: Map<string, Rec & { port: number; target: string }>;
}

interface Addr extends Rec {
  address: string;
  link?: string;
}

interface Direct {
  key: string;
  peer: Peer;
  via: PeerVia;
  expires: number;
}

interface Asked {
  at: number;
  tries: number;
}

const GOODBYE_GRACE_MS = 1000;
const FLUSH_AGE_MS = 1000;
const REFRESH_AT = 0.8;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;
const QUERY_BURST = 32;
const QUERY_PER_SECOND = 16;
const SWEEP_EVERY_MS = 5000;
/** how often unanswered questions are looked at again (RETRY_MIN_MS decides whether they go) */
const QUERY_TICK_MS = 1000;
const QUESTIONS_PER_MESSAGE = 12;
/** listening this long (from start) without hearing another instance makes the cache alone */
export const ALONE_AFTER_MS = 2500;
/** when the service PTR is asked for after start (ms) */
const SERVICE_QUERIES_MS = [0, 1000, 3000];

const live = (r: Rec, now: number) => !r.dying && r.expires > now;
const SERVICE_KEY = nameKey(SERVICE);

export class PeerCache {
  readonly #now: () => number;
  readonly #limits: PeerCacheLimits;
  readonly #isOwn: (instance: string) => boolean;
  readonly #ipv6: boolean;
  readonly #log: Logger;
  /** "key instKey" → pair, in refresh order (first = refreshed longest ago) */
  readonly #pairs = new Map<string, Pair>();
  /** key (60 hex) → instance keys */
  readonly #byHash = new Map<string, Set<string>>();
  readonly #pairsPerSource = new Map<string, number>();
  /** instance fqdn key → instance, in creation order */
  readonly #instances = new Map<string, Instance>();
  readonly #instancesPerSource = new Map<string, number>();
  /** host name key → address → record */
  readonly #hosts = new Map<string, Map<string, Addr>>();
  /** "key|address|port" → entry, in insertion order */
  readonly #direct = new Map<string, Direct>();
  readonly #directByHash = new Map<string, Set<string>>();
  /** "name|type" → when last asked, and how often in a row without an answer */
  readonly #asked = new Map<string, Asked>();
  #tokens = QUERY_BURST;
  #tokensAt = 0;
  #capLogged = false;
  /** no record expires before this (ms): a sweep before it has nothing to do */
  #nextExpiry = Infinity;
  #sweepTimer: NodeJS.Timeout | undefined;
  #soonTimer: NodeJS.Timeout | undefined;
  #send: ((q: CacheQuery) => void) | undefined;
  /** waiters for a hash to get a live peer (lookups in flight) */
  readonly #waiters = new Map<string, Set<() => void>>();
  /** instance key → its service PTR: the other instances on the LAN */
  readonly #services = new Map<string, Rec>();
  /** when start() was called (0: not started) */
  #startedAt = 0;
  readonly #serviceTimers = new Set<NodeJS.Timeout>();

  constructor(opts: PeerCacheOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#limits = { ...PEER_CACHE_LIMITS, ...opts.limits };
    this.#isOwn = opts.isOwnInstance ?? (() => false);
    this.#ipv6 = opts.ipv6 ?? false;
    this.#log = opts.logger ?? silentLogger;
    this.#tokensAt = this.#now();
  }

  /**
   * Starts the timers: a sweep every 5 s, and queries for what is missing (sent through `send`,
   * which owns the sockets: the responder's, on port 5353, so answers come by multicast and
   * every cache on the link learns from them).
   */
  start(send: (q: CacheQuery) => void): void {
    this.#send = send;
    if (!this.#startedAt) {
      this.#startedAt = this.#now();
      for (const at of SERVICE_QUERIES_MS) {
        const t = setTimeout(() => {
          this.#serviceTimers.delete(t);
          this.#send?.({ questions: [{ name: SERVICE, type: 'PTR' }] });
        }, at);
        t.unref();
        this.#serviceTimers.add(t);
      }
    }
    let ticks = 0;
    this.#sweepTimer ??= setInterval(() => {
      if (++ticks % (SWEEP_EVERY_MS / QUERY_TICK_MS) === 0) this.sweep();
      this.#flushQueries();
    }, QUERY_TICK_MS);
    this.#sweepTimer.unref();
    this.#querySoon();
  }

  stop(): void {
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    if (this.#soonTimer) clearTimeout(this.#soonTimer);
    for (const t of this.#serviceTimers) clearTimeout(t);
    this.#serviceTimers.clear();
    this.#sweepTimer = this.#soonTimer = undefined;
    this.#send = undefined;
  }

  // ---------------------------------------------------------------- learning

  /** Takes in one mDNS response (answers and additionals; the caller checked it came from port 5353). */
  ingest(msg: Message, from: HeardFrom): void {
    if (!msg.response) return;
    const recs: RR[] = msg.answers.length && msg.additionals.length ? [...msg.answers, ...msg.additionals] : msg.answers.length ? msg.answers : msg.additionals;
    if (!recs.length) return;
    const now = this.#now();
    const source = from.address.split('%')[0]!.toLowerCase();
    for (const rr of recs) this.#noteExpiry(rr.ttl > 0 && !rr.flush ? now + rr.ttl * 1000 : now + GOODBYE_GRACE_MS);
    const fromLoopback = source.startsWith('127.') || source === '::1' || source.startsWith('::ffff:127.');
    let grew = false;
    // PTRs first: the SRV and addresses in the same message then apply to new instances
    for (const rr of recs) {
      if (rr.type !== 'PTR') continue;
      if (nameKey(rr.name) === SERVICE_KEY) {
        this.#service(rr.data, rr.ttl, now);
        continue;
      }
      const key = subtypeKeyOf(rr.name);
      if (key === undefined) continue;
      const label = instanceOf(rr.data);
      if (!label || this.#isOwn(label)) continue;
      if (this.#pair(key, label, rr.data, rr.ttl, source, from.link?.name, now)) grew = true;
    }
    for (const rr of recs) {
      if (rr.type !== 'SRV') continue;
      const inst = this.#instances.get(nameKey(rr.name));
      if (!inst) continue;
      if (rr.data.port < 1 || rr.data.port > 65535) continue;
      const target = nameKey(rr.data.target);
      const rk = `${rr.data.port} ${target}`;
      if (setRecord(inst.srv, rk, rr, now, this.#limits.maxSrvPerInstance, () => ({ port: rr.data.port, target }))) grew = true;
      if (rr.ttl > 0) this.#answered(`${nameKey(rr.name)}|SRV`);
    }
    let targets: Set<string> | undefined;
    for (const rr of recs) {
      if (rr.type !== 'A' && rr.type !== 'AAAA') continue;
      if (rr.type === 'AAAA' && !this.#ipv6) continue;
      const host = nameKey(rr.name);
      targets ??= this.#targets();
      if (!targets.has(host)) continue;
      const address = rr.data.toLowerCase();
      if (rr.ttl > 0 && !usablePeerAddress(address, from.link, fromLoopback)) continue;
      let m = this.#hosts.get(host);
      if (!m) this.#hosts.set(host, (m = new Map()));
      const link = from.link?.name;
      if (setRecord(m, address, rr, now, this.#limits.maxAddressesPerHost, () => ({ address, link }))) grew = true;
      if (rr.ttl > 0) this.#answered(`${host}|${rr.type}`);
    }
    if (grew) {
      this.#wake();
      this.#querySoon();
    }
  }

  /** One service PTR: another instance on the LAN (or its goodbye). */
  #service(fqdn: string, ttl: number, now: number): void {
    const label = instanceOf(fqdn);
    if (!label || this.#isOwn(label)) return;
    const ik = nameKey(fqdn);
    const had = this.#services.get(ik);
    if (ttl === 0) {
      if (had && !had.dying) Object.assign(had, { dying: true, expires: Math.min(had.expires, now + GOODBYE_GRACE_MS) });
      return;
    }
    if (!had && this.#services.size >= this.#limits.maxInstances) return;
    this.#services.set(ik, { expires: now + ttl * 1000, seen: now, ttlMs: ttl * 1000, dying: false });
  }

  /**
   * No other instance heard on the LAN, after listening ALONE_AFTER_MS since start (and no peer
   * fed from elsewhere): nobody can hold or be fetching a file but us.
   */
  alone(): boolean {
    const now = this.#now();
    if (!this.#startedAt || now - this.#startedAt < ALONE_AFTER_MS) return false;
    for (const r of this.#services.values()) if (live(r, now)) return false;
    for (const p of this.#pairs.values()) if (live(p, now)) return false;
    for (const d of this.#direct.values()) if (d.expires > now) return false;
    return true;
  }

  /** One subtype PTR: stores, refreshes or says goodbye to a (hash, instance) pair. True when new. */
  #pair(key: string, label: string, fqdn: string, ttl: number, source: string, link: string | undefined, now: number): boolean {
    const ik = nameKey(fqdn);
    const pk = `${key} ${ik}`;
    const had = this.#pairs.get(pk);
    if (ttl === 0) {
      if (had && !had.dying) {
        had.dying = true;
        had.expires = Math.min(had.expires, now + GOODBYE_GRACE_MS);
      }
      return false;
    }
    if (had) {
      // refreshed: to the end of the eviction order
      this.#pairs.delete(pk);
      this.#pairs.set(pk, had);
      const revived = had.dying;
      Object.assign(had, { expires: now + ttl * 1000, seen: now, ttlMs: ttl * 1000, dying: false });
      return revived;
    }
    if ((this.#pairsPerSource.get(source) ?? 0) >= this.#limits.maxPairsPerSource) return this.#capped(`${source} announced more than ${this.#limits.maxPairsPerSource} items`);
    let inst = this.#instances.get(ik);
    if (!inst) {
      if ((this.#instancesPerSource.get(source) ?? 0) >= this.#limits.maxInstancesPerSource) return this.#capped(`more than ${this.#limits.maxInstancesPerSource} instances from ${source}`);
      if (this.#instances.size >= this.#limits.maxInstances) this.#dropInstance(this.#instances.keys().next().value!);
      inst = { label, fqdn: fqdn.replace(/\.$/, ''), link, source, pairs: 0, srv: new Map() };
      this.#instances.set(ik, inst);
      bump(this.#instancesPerSource, source, 1);
    }
    if (this.#pairs.size >= this.#limits.maxPairs) this.#dropPair(this.#pairs.keys().next().value!);
    this.#pairs.set(pk, { key, inst: ik, source, expires: now + ttl * 1000, seen: now, ttlMs: ttl * 1000, dying: false });
    bump(this.#pairsPerSource, source, 1);
    inst.pairs++;
    let s = this.#byHash.get(key);
    if (!s) this.#byHash.set(key, (s = new Set()));
    s.add(ik);
    return true;
  }

  #capped(why: string): false {
    if (!this.#capLogged) this.#log.debug(`peer cache: ${why}; ignoring the rest`);
    this.#capLogged = true;
    return false;
  }

  #dropPair(pk: string): void {
    const p = this.#pairs.get(pk);
    if (!p) return;
    this.#pairs.delete(pk);
    bump(this.#pairsPerSource, p.source, -1);
    const s = this.#byHash.get(p.key);
    s?.delete(p.inst);
    if (s && !s.size) this.#byHash.delete(p.key);
    const inst = this.#instances.get(p.inst);
    if (inst && --inst.pairs <= 0) this.#dropInstance(p.inst);
  }

  #dropInstance(ik: string): void {
    const inst = this.#instances.get(ik);
    if (!inst) return;
    if (inst.pairs > 0) {
      for (const [pk, p] of this.#pairs) if (p.inst === ik) this.#dropPair(pk);
      if (!this.#instances.has(ik)) return; // the last pair dropped it
    }
    this.#instances.delete(ik);
    bump(this.#instancesPerSource, inst.source, -1);
    // its hosts' addresses go too, unless another instance points at them
    for (const s of inst.srv.values()) {
      if (![...this.#instances.values()].some((o) => [...o.srv.values()].some((x) => x.target === s.target))) this.#hosts.delete(s.target);
    }
  }

  #noteExpiry(at: number): void {
    if (at < this.#nextExpiry) this.#nextExpiry = at;
  }

  /** SRV targets of known instances (only their addresses are kept). */
  #targets(): Set<string> {
    const t = new Set<string>();
    for (const inst of this.#instances.values()) for (const s of inst.srv.values()) if (!s.dying) t.add(s.target);
    return t;
  }

  /**
   * Feeds a peer learnt elsewhere — a wide-area DNS-SD zone (RFC 6763 §11), or anything else
   * that finds peers — with its own TTL (seconds; 0 removes it). Bounded by `maxDirect`.
   */
  put(sha256: string, peer: Peer, ttl: number, via: PeerVia = 'dns'): void {
    const key = subtypeKey(sha256);
    const id = `${key}|${peer.address.toLowerCase()}|${peer.port}`;
    const old = this.#direct.get(id);
    if (old) this.#dropDirect(id);
    if (ttl <= 0 || this.#isOwn(peer.instance)) return;
    if (this.#direct.size >= this.#limits.maxDirect) this.#dropDirect(this.#direct.keys().next().value!);
    this.#direct.set(id, { key, peer: { ...peer }, via, expires: this.#now() + ttl * 1000 });
    this.#noteExpiry(this.#now() + ttl * 1000);
    let s = this.#directByHash.get(key);
    if (!s) this.#directByHash.set(key, (s = new Set()));
    s.add(id);
    this.#wake();
  }

  #dropDirect(id: string): void {
    const d = this.#direct.get(id);
    if (!d) return;
    this.#direct.delete(id);
    const s = this.#directByHash.get(d.key);
    s?.delete(id);
    if (s && !s.size) this.#directByHash.delete(d.key);
  }

  // ---------------------------------------------------------------- answering

  /**
   * Live peers for a hash (64 hex; its first 60 hex are what the wire carries, so a full hash
   * matches by that prefix). Never our own instance; each address of each instance once.
   */
  lookup(sha256: string): CachedPeer[] {
    return this.#lookupKey(subtypeKey(sha256), this.#now());
  }

  #lookupKey(key: string, now: number): CachedPeer[] {
    const out: CachedPeer[] = [];
    const seen = new Set<string>();
    for (const ik of this.#byHash.get(key) ?? []) {
      const pair = this.#pairs.get(`${key} ${ik}`);
      const inst = this.#instances.get(ik);
      if (!pair || !inst || !live(pair, now) || this.#isOwn(inst.label)) continue;
      for (const srv of inst.srv.values()) {
        if (!live(srv, now)) continue;
        for (const a of this.#hosts.get(srv.target)?.values() ?? []) {
          if (!live(a, now)) continue;
          const address = a.address.startsWith('fe80:') && a.link ? `${a.address}%${a.link}` : a.address;
          const id = `${address}|${srv.port}`;
          if (seen.has(id)) continue;
          seen.add(id);
          out.push({ address, port: srv.port, instance: inst.label, host: srv.target, via: 'mdns' });
        }
      }
    }
    for (const id of this.#directByHash.get(key) ?? []) {
      const d = this.#direct.get(id);
      if (!d || d.expires <= now) continue;
      const pid = `${d.peer.address.toLowerCase()}|${d.peer.port}`;
      if (seen.has(pid)) continue;
      seen.add(pid);
      out.push({ ...d.peer, via: d.via });
    }
    return out;
  }

  /**
   * Resolves once `sha256` has a live peer (true), or false when the signal aborts. A lookup
   * waiting for a browse uses it so a peer heard meanwhile by any socket ends the wait.
   */
  waitFor(sha256: string, signal: AbortSignal): Promise<boolean> {
    const key = subtypeKey(sha256);
    if (this.lookup(sha256).length) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let set = this.#waiters.get(key);
      if (!set) this.#waiters.set(key, (set = new Set()));
      const done = (found: boolean) => {
        set!.delete(check);
        if (!set!.size) this.#waiters.delete(key);
        signal.removeEventListener('abort', onAbort);
        resolve(found);
      };
      const check = () => { if (this.lookup(sha256).length) done(true); };
      const onAbort = () => done(false);
      set.add(check);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #wake(): void {
    if (!this.#waiters.size) return;
    for (const set of [...this.#waiters.values()]) for (const w of [...set]) w();
  }

  /**
   * Counts for status (cheap: no lookups): hashes and (hash, peer) records held — including dead
   * ones not swept yet (≤ 5 s) —, instances, and live addresses.
   */
  stats(): { hashes: number; instances: number; addresses: number; records: number } {
    const now = this.#now();
    let hashes = this.#byHash.size;
    for (const key of this.#directByHash.keys()) if (!this.#byHash.has(key)) hashes++;
    let addresses = 0;
    for (const m of this.#hosts.values()) for (const a of m.values()) if (live(a, now)) addresses++;
    return { hashes, instances: this.#instances.size, addresses, records: this.#pairs.size + this.#direct.size };
  }

  // ---------------------------------------------------------------- upkeep

  /**
   * Deletes what has expired (and hosts no instance points at any more). Cheap until the earliest
   * expiry: a scan then finds the next one.
   */
  sweep(): void {
    const now = this.#now();
    for (const [k, a] of this.#asked) if (now - a.at > RETRY_MAX_MS * 2) this.#asked.delete(k);
    if (now < this.#nextExpiry) return;
    let next = Infinity;
    const keep = (r: { expires: number }) => {
      if (r.expires <= now) return false;
      if (r.expires < next) next = r.expires;
      return true;
    };
    for (const [pk, p] of this.#pairs) if (!keep(p)) this.#dropPair(pk);
    for (const inst of this.#instances.values()) for (const [k, s] of inst.srv) if (!keep(s)) inst.srv.delete(k);
    const targets = this.#targets();
    for (const [host, m] of this.#hosts) {
      if (!targets.has(host)) {
        this.#hosts.delete(host);
        continue;
      }
      for (const [k, a] of m) if (!keep(a)) m.delete(k);
      if (!m.size) this.#hosts.delete(host);
    }
    for (const [id, d] of this.#direct) if (!keep(d)) this.#dropDirect(id);
    for (const [ik, r] of this.#services) if (!keep(r)) this.#services.delete(ik);
    this.#nextExpiry = next;
  }

  #answered(qk: string): void {
    this.#asked.delete(qk);
  }

  /** Whether a record set needs asking for: none live, or the freshest past 80 % of its TTL. */
  #stale(recs: Iterable<Rec>, now: number): boolean {
    let best: Rec | undefined;
    for (const r of recs) if (live(r, now) && (!best || r.expires > best.expires)) best = r;
    return !best || now >= best.seen + best.ttlMs * REFRESH_AT;
  }

  /**
   * Questions for what live instances lack (SRV, addresses) or will soon lose (at 80 % of TTL),
   * rate-limited per name (1 s, doubling to 60 s while unanswered) and in all (a token bucket).
   * The caller sends them; tests call it directly with an injected clock.
   */
  takeQueries(): CacheQuery[] {
    const now = this.#now();
    this.#tokens = Math.min(QUERY_BURST, this.#tokens + ((now - this.#tokensAt) / 1000) * QUERY_PER_SECOND);
    this.#tokensAt = now;
    const byLink = new Map<string | undefined, Question[]>();
    const ask = (link: string | undefined, name: string, type: string) => {
      const qk = `${nameKey(name)}|${type}`;
      const a = this.#asked.get(qk);
      if (a && now - a.at < Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (a.tries - 1))) return;
      if (this.#tokens < 1) return;
      this.#tokens -= 1;
      this.#asked.set(qk, { at: now, tries: (a?.tries ?? 0) + 1 });
      let qs = byLink.get(link);
      if (!qs) byLink.set(link, (qs = []));
      if (!qs.some((q) => nameKey(q.name) === nameKey(name) && q.type === type)) qs.push({ name, type });
    };
    // an instance with pairs (live, or dead and not swept yet: ≤ 5 s of needless questions)
    for (const inst of this.#instances.values()) {
      if (inst.pairs <= 0) continue;
      if (this.#stale(inst.srv.values(), now)) ask(inst.link, inst.fqdn, 'SRV');
      for (const s of inst.srv.values()) {
        if (!live(s, now)) continue;
        const addrs = this.#hosts.get(s.target)?.values() ?? [];
        if (this.#stale(addrs, now)) {
          ask(inst.link, s.target, 'A');
          if (this.#ipv6) ask(inst.link, s.target, 'AAAA');
        }
      }
    }
    const out: CacheQuery[] = [];
    for (const [link, qs] of byLink) {
      for (let i = 0; i < qs.length; i += QUESTIONS_PER_MESSAGE) out.push({ link, questions: qs.slice(i, i + QUESTIONS_PER_MESSAGE) });
    }
    return out;
  }

  #querySoon(): void {
    if (!this.#send || this.#soonTimer) return;
    // a short delay lets the rest of a burst (several packets) arrive before asking
    this.#soonTimer = setTimeout(() => {
      this.#soonTimer = undefined;
      this.#flushQueries();
    }, 20);
    this.#soonTimer.unref();
  }

  #flushQueries(): void {
    const send = this.#send;
    if (!send) return;
    for (const q of this.takeQueries()) {
      try {
        send(q);
      } catch (err) {
        this.#log.debug(`peer cache: cannot send a query: ${(err as Error).message}`);
      }
    }
  }
}

function bump(m: Map<string, number>, k: string, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}

/**
 * One record of a unique RRset (SRV of an instance, A/AAAA of a host): goodbye → dying in 1 s;
 * cache-flush → the others received over a second ago die in 1 s; else stored or refreshed
 * (at most `max` in the set: a full set takes no new record). True when a new live record came.
 */
function setRecord<T extends Rec>(m: Map<string, T>, rk: string, rr: RR, now: number, max: number, make: () => Omit<T, keyof Rec>): boolean {
  const had = m.get(rk);
  if (rr.ttl === 0) {
    if (had && !had.dying) {
      had.dying = true;
      had.expires = Math.min(had.expires, now + GOODBYE_GRACE_MS);
    }
    return false;
  }
  if (rr.flush) {
    for (const [k, r] of m) {
      if (k !== rk && r.seen < now - FLUSH_AGE_MS && !r.dying) {
        r.dying = true;
        r.expires = Math.min(r.expires, now + FLUSH_AGE_MS);
      }
    }
  }
  const fresh = { expires: now + rr.ttl * 1000, seen: now, ttlMs: rr.ttl * 1000, dying: false };
  if (had) {
    const revived = had.dying || had.expires <= now;
    Object.assign(had, fresh);
    return revived;
  }
  if (m.size >= max) {
    // room only by dropping a dead one
    const dead = [...m].find(([, r]) => r.dying || r.expires <= now);
    if (!dead) return false;
    m.delete(dead[0]);
  }
  m.set(rk, { ...make(), ...fresh } as T);
  return true;
}
