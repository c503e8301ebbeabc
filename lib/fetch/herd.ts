/**
 * Herd suppression: when many hosts on a LAN `passim fetch` the same file at the same moment, one
 * of them goes to the CDN and the others take the file from it, instead of all hitting the CDN.
 *
 * ## Wire (additive; upstream passimd never queries these names, so it is unaffected)
 * Beside the item subtype `_<60 hex>._sub._cache._tcp.local`, a daemon advertises, for a hash one
 * of its local fetch clients has claimed, a PTR to its own instance under
 *   `_b<60 hex>._sub._cache._tcp.local`  — a *bid*: "I am about to fetch it from outside the LAN",
 *   `_f<60 hex>._sub._cache._tcp.local`  — *fetching*: "I won, and am downloading it now",
 * (62-byte labels, TTL 120, goodbyes when withdrawn; lib/discovery/names.ts, responder.addClaim).
 * Clients claim through their daemon's control socket (`POST /claims`, lib/control/claims.ts): a
 * claim is a lease the client renews every lease/3 ms *only while its download makes progress*,
 * and it is tied to the control connection, so a client that is killed loses its claim at once and
 * one whose CDN download stalls loses it within one lease (default 5 s). A claim on the LAN thus
 * means "someone is really getting this right now".
 *
 * ## Client (this file; fetch.ts calls it between the peers and the CDN)
 * 1. At the start, a fetch with a local daemon (and publishing on, and a CDN to go to) places a
 *    bid, and browses `_b…` and `_f…` in parallel with the usual item browse — same window, so a
 *    fetch nobody else is making costs no extra time.
 * 2. If no peer had the item: someone else's `_f` seen → wait. Else the winner among the bids seen
 *    (ours included) is the lowest instance name (unique on the LAN: mDNS probing renames
 *    duplicates); the winner turns its bid into `_f` and goes to the CDN, the others withdraw their
 *    bids and wait. Two bidders whose windows overlap see each other (a bid is multicast-announced
 *    when placed and the browser listens for announcements; a later starter queries and gets the
 *    earlier bid or its `_f`), so they pick the same winner; a later starter sees the `_f` and
 *    waits however its name compares. A host whose daemon already holds a claim on the hash
 *    (another local fetch) waits for it. A fetch without a daemon cannot bid: it waits when it sees
 *    a claim, else goes to the CDN as before.
 * 3. A waiter keeps a browse of the item subtype open (it hears the winner's announcement at once,
 *    and re-asks every second) and tries each new peer as it appears — the winner, and then every
 *    waiter that got it and published it, so a winner reaching its share-limit is no dead end.
 *    Every `pollMs` it also checks the local daemon and re-browses the claims: when no claim is
 *    left and no peer has the item (the winner died, stalled or failed), it bids again (at most
 *    `maxElections` times) — one of the waiters becomes the new winner. Without a daemon, or after
 *    that, or once `waitMs` (`--herd-wait`, default 60 s) has passed, it goes to the CDN itself.
 * So the CDN sees one request per burst (two when bids cross in the few milliseconds between a
 * window ending and a claim being announced, or when an mDNS packet is lost), and a waiter is
 * never held longer than the claim stays alive, nor than `--herd-wait`. `--no-herd` turns it off.
 */
import { withTimeout } from '../core/with-timeout.js';
import type { Browse, Peer } from '../discovery/types.js';
import type { ClaimKind } from '../discovery/names.js';
import { peerUrl, type Source } from './sources.js';

export type { ClaimKind };

/** What the herd needs of the control client (ControlClient satisfies it). */
export interface ClaimChannel {
  claim(sha256: string, kind: ClaimKind, ttlMs: number): Promise<{ id: string; others: number }>;
  renewClaim(id: string, ttlMs: number, kind?: ClaimKind): Promise<{ id: string; others: number }>;
  releaseClaim(id: string): Promise<unknown>;
  destroy?(): Promise<void>;
  close?(): Promise<void>;
}

export type HerdEvent =
  | { type: 'claim'; kind: ClaimKind }
  | { type: 'won'; bidders: number }
  | { type: 'wait'; claimers: string[] }
  | { type: 'stalled' }
  | { type: 'give-up'; reason: string };

export interface HerdOptions {
  sha256: string;
  name: string;
  /** browser that honours `kind` (the real mDNS browser) */
  browse: Browse;
  /** the local daemon: its mDNS instance and a claim channel to it; undefined: cannot bid */
  daemon?: { instance: string; channel: () => Promise<ClaimChannel> };
  /** may this fetch bid (it will publish what it gets, and has a CDN to go to) */
  canBid: boolean;
  /** the discovery window (fetch --timeout) */
  windowMs: number;
  /** longest wait for another host's fetch (--herd-wait) */
  waitMs: number;
  /** claim lease; default clamp(waitMs / 6, 1 s, 5 s) */
  leaseMs?: number;
  /** how often a waiter re-checks the claims (default 1000 ms) */
  pollMs?: number;
  /** how often a waiter may bid again after the claims vanished (default 5; --herd-wait bounds it too) */
  maxElections?: number;
  /**
   * our daemon hears no other instance on the LAN: nobody else can be bidding or fetching, so no
   * claims window — the bid is still placed, and another local fetch's claim still makes us wait
   */
  alone?: boolean;
  /** the local daemon's copy, if it has one now (another local fetch finished) */
  localSource?: () => Promise<Source | undefined>;
  signal?: AbortSignal;
  onEvent?: (ev: HerdEvent) => void;
}

/** Shortest browse window for claims: bids must have time to cross. */
const MIN_CLAIM_WINDOW_MS = 300;
/** Longest claims window: this many discovery windows, and at least MAX_WINDOW_MS. */
const MAX_WINDOW_FACTOR = 10;
const MAX_WINDOW_MS = 5000;

/**
 * The tie-break among simultaneous bidders: the lowest instance name (case-insensitive, as DNS
 * compares names; then byte order). Every bidder computes it from the same set, so all agree.
 */
export function pickWinner(instances: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const i of instances) {
    if (best === undefined || compareInstances(i, best) < 0) best = i;
  }
  return best;
}

export function compareInstances(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a.toLowerCase()), Buffer.from(b.toLowerCase())) || Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** What a fetch does once no peer had the file: go to the CDN (as winner or alone), or wait. */
export type Decision = 'win' | 'go' | 'wait';

/**
 * The decision rule (pure, for tests): `fetching` and `bids` are the instances seen claiming the
 * hash (ours among the bids when we bid); `self` our daemon's instance when we hold a bid;
 * `localOthers` claims on the hash our daemon had before ours.
 */
export function decide(opts: { self?: string; fetching: string[]; bids: string[]; localOthers?: number }): Decision {
  if (opts.fetching.length) return 'wait';
  if (opts.self === undefined) return opts.bids.length ? 'wait' : 'go';
  if ((opts.localOthers ?? 0) > 0) return 'wait';
  return pickWinner([...opts.bids, opts.self]) === opts.self ? 'win' : 'wait';
}

/** Control calls never hold a fetch: a daemon that does not answer in time has no claim for us. */
const CONTROL_TIMEOUT_MS = 2000;

/** A control-socket call that must answer within CONTROL_TIMEOUT_MS. */
function within<T>(p: Promise<T>): Promise<T> {
  return withTimeout(p, CONTROL_TIMEOUT_MS, 'the daemon did not answer in time');
}

export class Herd {
  readonly #o: HerdOptions;
  readonly #lease: number;
  readonly #ac = new AbortController();
  readonly #signal: AbortSignal;
  #channel?: ClaimChannel;
  #claim?: { id: string; kind: ClaimKind; others: number };
  #claiming?: Promise<void>;
  /** turning our bid into a fetching claim (#win) */
  #committing?: Promise<void>;
  #renewTimer?: NodeJS.Timeout;
  #lastProgress = 0;
  #verified = false;
  /** our own daemon's instance was seen claiming (another local fetch): check its store while waiting */
  #localClaimer = false;
  #preBids?: Promise<string[]>;
  #preFetching?: Promise<string[]>;
  #waitStart?: number;
  #waitEnd?: number;
  #closed = false;
  /** peers the waiter found, not yet handed out */
  readonly #pending: Peer[] = [];
  readonly #seen = new Set<string>();
  #wake?: () => void;

  constructor(opts: HerdOptions) {
    this.#o = opts;
    this.#lease = opts.leaseMs ?? Math.min(5000, Math.max(1000, Math.round(opts.waitMs / 6)));
    this.#signal = opts.signal ? AbortSignal.any([opts.signal, this.#ac.signal]) : this.#ac.signal;
  }

  /** ms spent waiting for another host's fetch (0 when this fetch never waited). */
  get waitedMs(): number {
    if (this.#waitStart === undefined) return 0;
    return Math.round((this.#waitEnd ?? performance.now()) - this.#waitStart);
  }

  /** Bids (when it may) and starts browsing the claims; call with the peer browse. */
  start(): void {
    if (this.#o.canBid && this.#o.daemon) this.#claiming = this.#placeBid();
    [this.#preBids, this.#preFetching] = this.#o.alone
      ? [Promise.resolve([]), Promise.resolve([])]
      : this.#claimsWindow(Math.max(this.#o.windowMs, MIN_CLAIM_WINDOW_MS));
  }

  /** The download this fetch makes moved on (keeps our claim alive). */
  progress(): void {
    this.#lastProgress = performance.now();
  }

  /** The file is verified and about to be published: keep the claim until close(), whatever the time. */
  verified(): void {
    this.#verified = true;
  }

  /**
   * Once the peers found at the start are used up: returns at once when this fetch should go to
   * the CDN (it won, or nobody else is on it), else waits, yielding the peers (and the local
   * daemon) that get the file meanwhile; returns when it is time to go to the CDN after all.
   * `tried` holds the URLs already tried, so none is tried twice.
   */
  async *sources(tried: Set<string>): AsyncGenerator<Source> {
    const [bids, fetching] = await Promise.all([this.#preBids ?? [], this.#preFetching ?? []]);
    await this.#claiming;
    const d = this.#decide(bids, fetching);
    const self = this.#o.daemon?.instance;
    this.#noteLocal(fetching, this.#claim ? [] : bids);
    if (this.#claim?.others) this.#localClaimer = true;
    if (d === 'win') {
      this.#win(bids.length);
      return;
    }
    if (d === 'go') return;
    await this.#withdraw();
    this.#waitStart = performance.now();
    // whom we wait for: whoever is fetching, else the bidder that wins
    const winner = pickWinner(self && this.#o.canBid ? [...bids, self] : bids);
    this.#o.onEvent?.({ type: 'wait', claimers: fetching.length ? fetching : winner ? [winner] : [] });
    try {
      yield* this.#wait(tried);
    } finally {
      this.#waitEnd ??= performance.now();
    }
  }

  /** Hands a source out; the wait ends there unless it fails and we come back. */
  async *#hand(src: Source): AsyncGenerator<Source> {
    this.#waitEnd = performance.now();
    yield src;
    this.#waitEnd = undefined;
  }

  /**
   * After the CDN failed too (e.g. ours stalled and our claim lapsed, so another host took over):
   * one more look for a peer that has it by now.
   */
  async *lateSources(tried: Set<string>): AsyncGenerator<Source> {
    if (this.#signal.aborted) return;
    for (const p of await this.#peers(Math.max(this.#o.windowMs, MIN_CLAIM_WINDOW_MS))) this.#offer(p);
    for (let s = this.#takePeer(tried); s; s = this.#takePeer(tried)) yield s;
  }

  async *#wait(tried: Set<string>): AsyncGenerator<Source> {
    const o = this.#o;
    const deadline = performance.now() + o.waitMs;
    const pollMs = o.pollMs ?? 1000;
    const window = Math.max(o.windowMs, MIN_CLAIM_WINDOW_MS);
    let elections = 0;
    this.#watchItem(o.waitMs);
    let nextCheck = performance.now() + pollMs;
    for (;;) {
      if (this.#signal.aborted) return;
      const peer = this.#takePeer(tried);
      if (peer) {
        yield* this.#hand(peer);
        continue;
      }
      const now = performance.now();
      if (now >= deadline) {
        o.onEvent?.({ type: 'give-up', reason: `no copy on the LAN after ${o.waitMs} ms (--herd-wait)` });
        return;
      }
      if (now < nextCheck) {
        await this.#idle(Math.min(nextCheck, deadline) - now);
        continue;
      }
      const local = this.#localClaimer ? await o.localSource?.().catch(() => undefined) : undefined;
      if (local && !tried.has(local.url)) {
        yield* this.#hand(local);
        continue;
      }
      const [bids, fetching] = await Promise.all([this.#instances('bid', window), this.#instances('fetching', window)]);
      this.#noteLocal(fetching, bids);
      nextCheck = performance.now() + pollMs;
      if (bids.length || fetching.length || this.#pending.length) continue;
      // nobody is on it and nobody has it: the claimer died, stalled or failed
      if (!o.canBid || !o.daemon || elections >= (o.maxElections ?? 5)) {
        o.onEvent?.({ type: 'give-up', reason: 'the host fetching it stopped' });
        return;
      }
      elections++;
      await this.#placeBid();
      if (!this.#claim) {
        o.onEvent?.({ type: 'give-up', reason: 'the host fetching it stopped' });
        return; // our daemon would not take a claim: go ourselves
      }
      const [b2, f2, items] = await Promise.all([...this.#claimsWindow(window), this.#peers(window)]);
      for (const p of items) this.#offer(p);
      if (this.#pending.length) {
        await this.#withdraw();
        continue;
      }
      const d = this.#decide(b2, f2);
      if (d === 'win' || d === 'go') {
        if (d === 'win') this.#win(b2.length);
        return;
      }
      await this.#withdraw();
      nextCheck = performance.now() + pollMs;
    }
  }

  /** Claims by our own daemon's instance that are not ours: another local fetch of the same file. */
  #noteLocal(fetching: string[], bids: string[]): void {
    const self = this.#o.daemon?.instance.toLowerCase();
    if (self && [...fetching, ...bids].some((i) => i.toLowerCase() === self)) this.#localClaimer = true;
  }

  #decide(bids: string[], fetching: string[]): Decision {
    const self = this.#claim && this.#o.daemon ? this.#o.daemon.instance : undefined;
    // our own instance under `_f` while we only bid is another local fetch: it counts
    return decide({ self, bids, fetching, localOthers: this.#claim?.others });
  }

  async #placeBid(): Promise<void> {
    const d = this.#o.daemon;
    if (!d || this.#claim || this.#closed) return;
    try {
      const channel = (this.#channel ??= await d.channel());
      const placing = channel.claim(this.#o.sha256, 'bid', this.#lease);
      const r = await within(placing).catch((err: unknown) => {
        // too slow (a loaded daemon): should the claim still be made, it is nobody's — release it
        // at once, or it would stand on the LAN as a bid until its lease lapsed, and this very
        // fetch (seeing its own daemon bid) would wait for it
        placing.then((late) => channel.releaseClaim(late.id), () => {}).catch(() => {});
        throw err;
      });
      if (this.#closed) {
        await this.#channel.releaseClaim(r.id).catch(() => {});
        return;
      }
      this.#claim = { id: r.id, kind: 'bid', others: r.others };
      this.#lastProgress = performance.now();
      this.#scheduleRenew();
      this.#o.onEvent?.({ type: 'claim', kind: 'bid' });
    } catch {
      // no daemon, an old one without claims, or one not advertising: this fetch cannot bid
      this.#claim = undefined;
    }
  }

  /**
   * We won: the download starts at once while our bid turns into a fetching claim (the others
   * already wait for us: they saw our bid and picked the same winner).
   */
  #win(bidders: number): void {
    this.#committing = this.#commit(bidders);
  }

  async #commit(bidders: number): Promise<void> {
    const c = this.#claim;
    this.#o.onEvent?.({ type: 'won', bidders });
    if (!c || !this.#channel) return;
    try {
      await within(this.#channel.renewClaim(c.id, this.#lease, 'fetching'));
      c.kind = 'fetching';
      this.#lastProgress = performance.now();
      this.#o.onEvent?.({ type: 'claim', kind: 'fetching' });
    } catch {
      this.#claim = undefined; // lapsed meanwhile: fetch anyway, unadvertised
    }
  }

  async #withdraw(): Promise<void> {
    await this.#committing; // never throws; a release must not overtake the commit
    const c = this.#claim;
    this.#claim = undefined;
    if (this.#renewTimer) clearTimeout(this.#renewTimer);
    this.#renewTimer = undefined;
    // (a release that does not get through is no matter: closing the connection releases too)
    if (c && this.#channel) await within(this.#channel.releaseClaim(c.id)).catch(() => {});
  }

  /** Renews the lease every lease/3 while the download moves; a stalled one lets the claim go. */
  #scheduleRenew(): void {
    if (this.#renewTimer) clearTimeout(this.#renewTimer);
    this.#renewTimer = setTimeout(() => {
      this.#renewTimer = undefined;
      const c = this.#claim;
      if (!c || !this.#channel || this.#closed) return;
      // a bid is renewed while we decide; a fetch only while its download moves
      if (c.kind === 'fetching' && !this.#verified && performance.now() - this.#lastProgress >= this.#lease) {
        this.#o.onEvent?.({ type: 'stalled' });
        void this.#withdraw();
        return;
      }
      this.#channel.renewClaim(c.id, this.#lease).then(
        () => this.#scheduleRenew(),
        () => {
          if (this.#claim === c) this.#claim = undefined; // lapsed: nothing to renew
        },
      );
    }, Math.max(100, Math.floor(this.#lease / 3)));
    this.#renewTimer.unref?.();
  }

  /**
   * The bids and the fetching claims seen in one window, both browses open for the same time and
   * re-asking every second (besides hearing announcements), so a bidder that commits while we
   * still collect bids is seen. The window ends `windowMs` after the last new bidder — but, when
   * we bid ourselves, not before our own bid has come back to us and as long again has passed:
   * on a loaded LAN (twenty hosts starting node on two cores) answers take seconds, and a fixed
   * 500 ms window would see nobody. Should our own bid's echo never come (a lost packet), the
   * window ends twice as long after our daemon took the bid as the bid took to be taken (at least
   * two windows). At most `MAX_WINDOW_FACTOR` × windowMs (≥ 5 s). A fetching claim seen ends it at
   * once: whatever the bids, we wait.
   */
  #claimsWindow(windowMs: number): [Promise<string[]>, Promise<string[]>] {
    const maxMs = Math.max(MAX_WINDOW_MS, MAX_WINDOW_FACTOR * windowMs);
    const done = new AbortController();
    const t0 = performance.now();
    let lastNews = t0;
    let selfAt: number | undefined;
    let ackAt: number | undefined;
    let self: string | undefined | null = null; // null: our bid is still being placed
    void (async () => {
      await this.#claiming;
      self = this.#claim && this.#o.daemon ? this.#o.daemon.instance.toLowerCase() : undefined;
      ackAt = performance.now();
    })();
    const bids = this.#instances('bid', maxMs, done.signal, (inst) => {
      const now = performance.now();
      lastNews = now;
      if (selfAt === undefined && self && inst.toLowerCase() === self) selfAt = now;
    });
    const check = setInterval(() => {
      const now = performance.now();
      const quiet = now - lastNews >= windowMs;
      let over = now - t0 >= maxMs || this.#signal.aborted;
      if (!over && self !== null && quiet) {
        if (self === undefined) over = true;
        else if (selfAt !== undefined) over = now >= selfAt + Math.max(windowMs, 2 * (selfAt - t0));
        // our daemon took the bid but its echo has not come back (a lost packet): the others' bids
        // had as long to reach us as for a slow echo — no waiting for ours until the longest window
        else if (ackAt !== undefined) over = now >= ackAt + Math.max(2 * windowMs, 2 * (ackAt - t0));
      }
      if (over) {
        clearInterval(check);
        done.abort();
      }
    }, 25);
    // someone is fetching it already: that settles it (we wait), no need to collect bids
    const fetching = this.#instances('fetching', maxMs, done.signal, () => {
      clearInterval(check);
      done.abort();
    });
    return [bids, fetching];
  }

  /** Instances advertising a claim of this kind within one browse window. */
  async #instances(kind: ClaimKind, windowMs: number, until?: AbortSignal, onNew?: (instance: string) => void): Promise<string[]> {
    const out = new Set<string>();
    const signal = until ? AbortSignal.any([this.#signal, until]) : this.#signal;
    const queryScheduleMs = [0, 100, 300];
    for (let t = 1000; t < windowMs; t += 1000) queryScheduleMs.push(t);
    try {
      const opts = { kind, timeoutMs: windowMs, maxMs: windowMs, queryScheduleMs, signal };
      for await (const p of this.#o.browse(this.#o.sha256, opts)) {
        if (!out.has(p.instance)) onNew?.(p.instance);
        out.add(p.instance);
      }
    } catch {
      /* discovery failing only means: no claims seen */
    }
    return [...out];
  }

  async #peers(windowMs: number): Promise<Peer[]> {
    const out: Peer[] = [];
    try {
      for await (const p of this.#o.browse(this.#o.sha256, { timeoutMs: windowMs, signal: this.#signal, excludeInstances: this.#exclude() })) out.push(p);
    } catch {
      /* none */
    }
    return out;
  }

  #exclude(): string[] | undefined {
    return this.#o.daemon?.instance ? [this.#o.daemon.instance] : undefined;
  }

  /** Keeps a browse of the item open while waiting: new holders are offered as they appear. */
  #watchItem(ms: number): void {
    const schedule = [0, 100, 300];
    for (let t = 1000; t < ms; t += 1000) schedule.push(t);
    void (async () => {
      try {
        const opts = { timeoutMs: ms, maxMs: ms, queryScheduleMs: schedule, signal: this.#signal, excludeInstances: this.#exclude() };
        for await (const p of this.#o.browse(this.#o.sha256, opts)) this.#offer(p);
      } catch {
        /* the periodic claim checks still run */
      }
    })();
  }

  #offer(p: Peer): void {
    if (!p || typeof p.address !== 'string' || p.address.includes('%') || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) return;
    const key = `${p.address}|${p.port}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.#pending.push(p);
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #takePeer(tried: Set<string>): Source | undefined {
    while (this.#pending.length) {
      const p = this.#pending.shift()!;
      const url = peerUrl(p.address, p.port, this.#o.name, this.#o.sha256);
      if (!tried.has(url)) return { kind: 'peer', url, peer: p.address };
    }
    return undefined;
  }

  /** Sleeps until a peer is offered, ms pass, or the fetch is aborted. */
  #idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, Math.max(0, ms));
      const signal = this.#signal;
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      this.#wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Releases any claim (after the file was published, so waiters see the item first) and stops browsing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ac.abort();
    await this.#claiming?.catch(() => {});
    await this.#withdraw();
    const ch = this.#channel;
    this.#channel = undefined;
    if (ch) await (ch.destroy?.() ?? ch.close?.())?.catch(() => {});
  }
}
