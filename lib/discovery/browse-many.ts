/**
 * mDNS lookups for many subtypes at once, on one set of sockets (the batch fetch's discovery).
 *
 * An `MdnsSession` opens, per interface, one one-shot query socket (ephemeral port, RFC 6762 §5.1:
 * responders answer it by unicast) and, when it can, a listener on 5353 (announcements and
 * multicast answers). Every lookup made through the session shares them:
 * - questions asked within `coalesceMs` of each other go out together, three per query (RFC 6762
 *   allows many questions per query, but Avahi's answer to a one-shot query must fit 512 bytes:
 *   ONE_SHOT_QUESTIONS) — a batch of 100 hashes is 34 small packets, not 100 × 3 lookups;
 * - an instance is resolved once (SRV+TXT, then A/AAAA of its target, retried when unanswered)
 *   and its address serves every hash it holds.
 *
 * `round(names, …)` is one lookup: it sends the PTR questions at 0, ~100 and ~300 ms and ends
 * `timeoutMs` after the last new answer (at most `maxMs`, default 10 × timeoutMs) or when the signal
 * aborts. `browseMany` is a session of one round (the BrowseMany of types.ts); `browse` gives a
 * Browse (one hash, any `kind`) on the session, for the herd's claim lookups.
 *
 * The same defences as the single-hash browser (browser.ts): responses not from port 5353 are
 * ignored; at most `maxInstances` instances are tracked per session and `maxInstancesPerSource`
 * learnt from one address; addresses are kept only for the SRV targets of tracked instances
 * (≤ 16 each) and filtered by usablePeerAddress. Membership (which instance holds which subtype)
 * is per lookup, learnt from PTRs seen during it — a later lookup never trusts an old answer —
 * while SRV and addresses are shared.
 */
import type { BrowseMany, BrowseManyOptions, BrowseOptions, Peer } from './types.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { claimSubtypeName, instanceOf, nameKey, subtypeName } from './names.js';
import { listLinks } from './interfaces.js';
import { defaultSocketFactory, type MdnsSocket, type MdnsSocketFactory } from './mdns-socket.js';
import { MAX_MESSAGE_BYTES, MDNS_PORT, encodeMessage, type Message, type Question } from './packets.js';
import type { RR } from './records.js';
import { applyAddressRecords, applySrvRecords } from './peer-records.js';
import { isLoopbackSource, usablePeerAddress } from './browser.js';

export interface MdnsSessionOptions {
  interfaces?: string[];
  ipv6?: boolean;
  logger?: Logger;
  /** also listen on UDP 5353 for multicast answers and announcements (default true) */
  listenMulticast?: boolean;
  /** questions asked within this many ms share a packet (default 2) */
  coalesceMs?: number;
  /** most instances tracked per session (default 256) */
  maxInstances?: number;
  /** most instances learnt from one answering address (default 32) */
  maxInstancesPerSource?: number;
  socketFactory?: MdnsSocketFactory;
}

export interface RoundOptions {
  /** ms without a new answer that ends the round (default 500) */
  timeoutMs?: number;
  /** hard end of the round (default 10 × timeoutMs) */
  maxMs?: number;
  /** when to (re)send the PTR questions, ms after the start (default [0, 100, 300]) */
  queryScheduleMs?: number[];
  excludeInstances?: string[];
  signal?: AbortSignal;
  /** one call per (subtype name, peer address) */
  onPeer: (name: string, peer: Peer) => void;
}

interface LinkState {
  link: import('./interfaces.js').LinkAddress;
  query: MdnsSocket;
  listen?: MdnsSocket;
}

interface Instance {
  instance: string;
  fqdn: string;
  link: LinkState;
  srv?: { port: number; target: string };
  srvQueries: number;
  srvAskedAt: number;
  addrQueries: number;
  addrAskedAt: number;
}

interface Lookup {
  /** subtype key → the name as asked */
  names: Map<string, string>;
  exclude: Set<string>;
  /** subtype key → instance keys seen holding it during this lookup */
  members: Map<string, Set<string>>;
  /** `${subKey}|${instKey}|${address}` already reported */
  reported: Set<string>;
  onPeer: (name: string, peer: Peer) => void;
  news: () => void;
}

const RESOLVE_RETRY_MS = 150;
const RESOLVE_TRIES = 3;
const HEADER_BYTES = 12;

function questionBytes(q: Question): number {
  // name: one length byte per label + its bytes + the root byte; then type and class
  return q.name.replace(/\.$/, '').split('.').reduce((n, l) => n + 1 + Buffer.byteLength(l), 1) + 4;
}

/**
 * Questions per one-shot query. A responder answers a query from a port other than 5353 as a
 * legacy unicast one (RFC 6762 §6.7): Avahi — upstream passimd's responder — builds that answer
 * in 512 bytes, echoing every question first (~70 bytes each) and adding the instance's SRV, TXT,
 * A and AAAA, and drops whatever does not fit ("not fitting in legacy unicast packet"). With more
 * than three subtype questions in a query it answers nothing at all; three leave room for its
 * PTRs and the instance's records.
 */
export const ONE_SHOT_QUESTIONS = 3;

/**
 * Splits questions into queries of at most `max` bytes and `maxQuestions` questions each (a
 * question never splits).
 */
export function packQuestions(questions: Question[], max = MAX_MESSAGE_BYTES, maxQuestions = Infinity): Question[][] {
  const out: Question[][] = [];
  let cur: Question[] = [];
  let size = HEADER_BYTES;
  for (const q of questions) {
    const b = questionBytes(q);
    if (cur.length && (size + b > max || cur.length >= maxQuestions)) {
      out.push(cur);
      cur = [];
      size = HEADER_BYTES;
    }
    cur.push(q);
    size += b;
  }
  if (cur.length) out.push(cur);
  return out;
}

export class MdnsSession {
  readonly #o: MdnsSessionOptions;
  readonly #log: Logger;
  #links: LinkState[] = [];
  #opening?: Promise<void>;
  #closed = false;
  readonly #instances = new Map<string, Instance>();
  readonly #perSource = new Map<string, number>();
  /** host name → address → link it was learnt on */
  readonly #addresses = new Map<string, Map<string, LinkState>>();
  readonly #lookups = new Set<Lookup>();
  /** questions waiting to go out: per link (undefined = every link) */
  readonly #outbox = new Map<LinkState | undefined, Map<string, Question>>();
  #flushTimer?: NodeJS.Timeout;
  #tick?: NodeJS.Timeout;
  #capLogged = false;
  /** queries sent (tests and bench: how many packets a round cost) */
  packetsSent = 0;

  constructor(opts: MdnsSessionOptions = {}) {
    this.#o = opts;
    this.#log = opts.logger ?? silentLogger;
  }

  /** Opens the sockets (once); a host with no usable interface gives a session that finds nothing. */
  open(): Promise<void> {
    this.#opening ??= this.#open();
    return this.#opening;
  }

  async #open(): Promise<void> {
    const newSocket = this.#o.socketFactory ?? defaultSocketFactory;
    for (const link of listLinks({ interfaces: this.#o.interfaces, ipv6: this.#o.ipv6 ?? false })) {
      if (this.#closed) return;
      const query = newSocket({ link, port: 0, logger: this.#log });
      try {
        await query.open();
      } catch (err) {
        this.#log.debug(`mDNS: cannot use ${link.name} (${link.address}): ${(err as Error).message}`);
        await query.close();
        continue;
      }
      const ls: LinkState = { link, query };
      query.on('message', (msg, rinfo) => this.#ingest(ls, msg, rinfo.address, rinfo.port));
      if (this.#o.listenMulticast !== false) {
        const listen = newSocket({ link, logger: this.#log });
        try {
          await listen.open();
          listen.on('message', (msg, rinfo) => this.#ingest(ls, msg, rinfo.address, rinfo.port));
          ls.listen = listen;
        } catch (err) {
          this.#log.debug(`mDNS: not listening on 5353 on ${link.name}: ${(err as Error).message}`);
          await listen.close();
        }
      }
      this.#links.push(ls);
    }
    if (!this.#links.length) this.#log.debug('mDNS: no usable network interface');
  }

  /** One lookup of many subtype names; resolves when it is over. */
  async round(names: string[], opts: RoundOptions): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 500;
    const maxMs = opts.maxMs ?? timeoutMs * 10;
    if (opts.signal?.aborted || this.#closed || !names.length) return;
    await this.open();
    if (opts.signal?.aborted || this.#closed || !this.#links.length) return;
    const timers = new Set<NodeJS.Timeout>();
    let finish!: () => void;
    const over = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const later = (ms: number, fn: () => void) => {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      timers.add(t);
      return t;
    };
    let idle: NodeJS.Timeout | undefined;
    const news = () => {
      if (idle) {
        clearTimeout(idle);
        timers.delete(idle);
      }
      idle = later(timeoutMs, finish);
    };
    const lookup: Lookup = {
      names: new Map(names.map((n) => [nameKey(n), n])),
      exclude: new Set((opts.excludeInstances ?? []).map((s) => s.toLowerCase())),
      members: new Map(),
      reported: new Set(),
      onPeer: opts.onPeer,
      news,
    };
    this.#lookups.add(lookup);
    opts.signal?.addEventListener('abort', finish, { once: true });
    const ask = () => this.#ask(names.map((name) => ({ name, type: 'PTR' })));
    for (const at of opts.queryScheduleMs ?? [0, 100, 300]) {
      if (at <= 0) ask();
      else later(at, ask);
    }
    this.#startTick();
    news();
    later(maxMs, finish);
    try {
      await over;
    } finally {
      opts.signal?.removeEventListener('abort', finish);
      for (const t of timers) clearTimeout(t);
      this.#lookups.delete(lookup);
      if (!this.#lookups.size) this.#stopTick();
    }
  }

  /** A Browse on this session: peers (or claimers, with `kind`) of one hash, as they resolve. */
  browse = (sha256: string, opts: BrowseOptions & { maxMs?: number; queryScheduleMs?: number[] } = {}): AsyncIterable<Peer> => {
    const name = opts.kind === 'bid' || opts.kind === 'fetching' ? claimSubtypeName(sha256, opts.kind) : subtypeName(sha256);
    return this.#iterate(name, opts);
  };

  async *#iterate(name: string, opts: BrowseOptions & { maxMs?: number; queryScheduleMs?: number[] }): AsyncGenerator<Peer> {
    const queue: Peer[] = [];
    let ended = false;
    let wake: (() => void) | undefined;
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const ac = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
    const done = this.round([name], { ...opts, signal, onPeer: (_n, p) => { queue.push(p); poke(); } }).finally(() => {
      ended = true;
      poke();
    });
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (ended) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      ac.abort();
      await done;
    }
  }

  /** Queues questions; they go out together after coalesceMs, a few per query (ONE_SHOT_QUESTIONS). */
  #ask(questions: Question[], link?: LinkState): void {
    if (this.#closed) return;
    let box = this.#outbox.get(link);
    if (!box) this.#outbox.set(link, (box = new Map()));
    for (const q of questions) box.set(`${nameKey(q.name)}|${q.type}`, q);
    this.#flushTimer ??= setTimeout(() => this.#flush(), this.#o.coalesceMs ?? 2);
  }

  #flush(): void {
    this.#flushTimer = undefined;
    const boxes = [...this.#outbox];
    this.#outbox.clear();
    for (const [link, box] of boxes) {
      for (const ls of link ? [link] : this.#links) {
        for (const qs of packQuestions([...box.values()], MAX_MESSAGE_BYTES, ONE_SHOT_QUESTIONS)) {
          this.packetsSent++;
          void ls.query.sendRaw(encodeMessage({ response: false, questions: qs }));
        }
      }
    }
  }

  #startTick(): void {
    if (this.#tick) return;
    const tick = () => {
      const now = Date.now();
      for (const st of this.#instances.values()) this.#askResolve(st, now);
      this.#tick = setTimeout(tick, RESOLVE_RETRY_MS);
    };
    this.#tick = setTimeout(tick, RESOLVE_RETRY_MS);
  }

  #stopTick(): void {
    if (this.#tick) clearTimeout(this.#tick);
    this.#tick = undefined;
  }

  /** Does some lookup still want this instance resolved? */
  #wanted(key: string): boolean {
    for (const l of this.#lookups) for (const m of l.members.values()) if (m.has(key)) return true;
    return false;
  }

  #askResolve(st: Instance, now: number): void {
    if (!this.#wanted(nameKey(st.fqdn))) return;
    if (!st.srv) {
      if (st.srvQueries < RESOLVE_TRIES && now - st.srvAskedAt >= RESOLVE_RETRY_MS) {
        st.srvQueries++;
        st.srvAskedAt = now;
        this.#ask([{ name: st.fqdn, type: 'SRV' }, { name: st.fqdn, type: 'TXT' }], st.link);
      }
      return;
    }
    if ((this.#addresses.get(nameKey(st.srv.target))?.size ?? 0) > 0) return;
    if (st.addrQueries < RESOLVE_TRIES && now - st.addrAskedAt >= RESOLVE_RETRY_MS) {
      st.addrQueries++;
      st.addrAskedAt = now;
      const qs: Question[] = [{ name: st.srv.target, type: 'A' }];
      if (this.#o.ipv6) qs.push({ name: st.srv.target, type: 'AAAA' });
      this.#ask(qs, st.link);
    }
  }

  /** Reports every resolved (lookup, subtype, instance, address) not reported yet. */
  #report(): void {
    const ipv6 = this.#o.ipv6 ?? false;
    for (const l of this.#lookups) {
      for (const [subKey, members] of l.members) {
        for (const instKey of members) {
          const st = this.#instances.get(instKey);
          if (!st?.srv) continue;
          const addrs = this.#addresses.get(nameKey(st.srv.target));
          if (!addrs) continue;
          for (const [addr, ls] of addrs) {
            const isV6 = addr.includes(':');
            if (isV6 && !ipv6) continue;
            const address = isV6 && addr.startsWith('fe80:') ? `${addr}%${ls.link.name}` : addr;
            const k = `${subKey}|${instKey}|${address}`;
            if (l.reported.has(k)) continue;
            l.reported.add(k);
            l.news();
            try {
              l.onPeer(l.names.get(subKey)!, { address, port: st.srv.port, instance: st.instance, host: st.srv.target });
            } catch {
              /* a consumer's failure is its own */
            }
          }
        }
      }
    }
  }

  #ingest(ls: LinkState, msg: Message, source: string, sourcePort: number): void {
    // RFC 6762 §6: responses not sent from port 5353 are ignored
    if (this.#closed || !this.#lookups.size || !msg.response || sourcePort !== MDNS_PORT) return;
    source = source.split('%')[0]!.toLowerCase();
    const fromLoopback = isLoopbackSource(source);
    const recs: RR[] = [...msg.answers, ...msg.additionals];
    let changed = false;
    for (const rr of recs) {
      if (rr.type !== 'PTR') continue;
      const subKey = nameKey(rr.name);
      const inst = instanceOf(rr.data);
      if (!inst) continue;
      const key = nameKey(rr.data);
      for (const l of this.#lookups) {
        if (!l.names.has(subKey) || l.exclude.has(inst.toLowerCase())) continue;
        let m = l.members.get(subKey);
        if (rr.ttl === 0) {
          if (m?.delete(key)) changed = true;
          continue;
        }
        if (!this.#instances.has(key)) {
          const fromHere = this.#perSource.get(source) ?? 0;
          if (this.#instances.size >= (this.#o.maxInstances ?? 256) || fromHere >= (this.#o.maxInstancesPerSource ?? 32)) {
            if (!this.#capLogged) this.#log.debug(`mDNS: too many instances answered (from ${source}); ignoring the rest`);
            this.#capLogged = true;
            continue;
          }
          this.#instances.set(key, { instance: inst, fqdn: rr.data, link: ls, srvQueries: 0, srvAskedAt: -Infinity, addrQueries: 0, addrAskedAt: -Infinity });
          this.#perSource.set(source, fromHere + 1);
        }
        if (!m) l.members.set(subKey, (m = new Set()));
        if (!m.has(key)) {
          m.add(key);
          changed = true;
          l.news();
          // a new lookup wanting an unresolved instance gets fresh SRV/address tries
          const st = this.#instances.get(key)!;
          if (!st.srv) st.srvQueries = 0;
          else if (!this.#addresses.get(nameKey(st.srv.target))?.size) st.addrQueries = 0;
        }
      }
    }
    if (applySrvRecords(recs, (key) => this.#instances.get(key))) changed = true;
    if (applyAddressRecords(recs, this.#instances.values(), this.#addresses, ls, (a) => usablePeerAddress(a, ls.link, fromLoopback))) changed = true;
    if (!changed) return;
    this.#report();
    const now = Date.now();
    for (const st of this.#instances.values()) this.#askResolve(st, now);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTick();
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    await this.#opening?.catch(() => {});
    await Promise.all(this.#links.flatMap((ls) => [ls.query.close(), ls.listen?.close()]));
  }
}

/**
 * The mDNS BrowseMany: one session, one round for all the hashes (InvalidHashError up front).
 * A caller making several rounds (the batch) keeps an MdnsSession instead.
 */
export const browseMany: BrowseMany = async (hashes: string[], opts: BrowseManyOptions & MdnsSessionOptions & { maxMs?: number; queryScheduleMs?: number[] }) => {
  for (const h of hashes) subtypeName(h); // InvalidHashError before any socket opens
  const session = new MdnsSession(opts);
  try {
    await sessionFinder(session)(hashes, opts);
  } finally {
    await session.close();
  }
};

/** A BrowseMany running its rounds on a (longer-lived) session. */
export function sessionFinder(session: MdnsSession, known = new Map<string, string>()): BrowseMany {
  return async (hashes, opts) => {
    const names = hashes.map((h) => {
      const n = subtypeName(h);
      known.set(nameKey(n), h);
      return n;
    });
    const o = opts as BrowseManyOptions & { maxMs?: number; queryScheduleMs?: number[] };
    await session.round(names, {
      timeoutMs: o.timeoutMs,
      maxMs: o.maxMs,
      queryScheduleMs: o.queryScheduleMs,
      excludeInstances: o.excludeInstances,
      signal: o.signal,
      onPeer: (name, peer) => {
        const h = known.get(nameKey(name));
        if (h) o.onPeer(h, peer, 'mdns');
      },
    });
  };
}
