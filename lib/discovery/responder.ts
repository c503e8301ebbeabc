/**
 * The mDNS responder: advertises `<instance>._cache._tcp.local` and one subtype PTR per hash,
 * in the record format Avahi uses for upstream passimd (see records.ts), on every selected
 * interface (one socket each, sharing UDP 5353 with Avahi).
 *
 * Lifecycle (RFC 6762): probe (§8.1, 3 queries 250 ms apart, QM) → on conflict rename
 * (`Passim-1A2B #2`, host `h-2`) and probe again; simultaneous probes tie-broken (§8.2) →
 * announce twice, 1 s apart (§8.3) → answer queries → goodbyes (TTL 0) on remove and stop (§10.1).
 *
 * Answers: multicast for QM questions (shared-record answers delayed 20–120 ms, §6; the same
 * record is multicast at most once a second, §6.2, or every 250 ms to defend against a probe);
 * unicast to the sender for QU questions (§5.4); legacy unicast (source port ≠ 5353, §6.7):
 * unicast, question and id echoed, TTL ≤ 10, no cache-flush bits. Known answers listed by the
 * querier with ≥ half our TTL are suppressed (§7.1). PTR answers carry SRV/TXT/A as additional
 * records (RFC 6763 §12). Unicast replies (QU, legacy) are rate-limited per source address (token
 * bucket, default burst 50, 25/s). A response from someone else carrying one of our records with
 * less than half its TTL (a goodbye, e.g. spoofed) makes us multicast ours again (§6.6, §10.1),
 * at most every 250 ms per record; one with other data for our unique names → probe again (§9).
 *
 * Many subtypes: answered from a Map; announcements carry the base records plus at most
 * `maxAnnouncedSubtypes` (default 100) newly added subtypes per second (a token bucket, so items
 * added one by one — a static dir being hashed — cost no more than one big batch; of a burst, up
 * to a second's worth are announced, waiting for their tokens if need be), packed ~10 per
 * message (< 1400 bytes); the rest are only answered when asked. The first announcement puts first
 * the subtypes someone asked for while we probed (a restart under a querying peer's feet), so they
 * need not ask again. Goodbyes are sent for subtypes that may
 * be in someone's cache (announced, or answered by multicast/QU within their TTL).
 *
 * In-progress claims (herd suppression, lib/fetch/herd.ts): `addClaim(hash, 'bid'|'fetching')`
 * advertises one more subtype PTR, `_b<60 hex>` or `_f<60 hex>` (names.ts), announced, answered and
 * said goodbye to exactly like an item's subtype but with TTL 120. They live in their own table,
 * so `setHashes()` (the store's items) never touches them. Upstream never queries these names.
 */
import { hostname } from 'node:os';
import { randomInt } from 'node:crypto';
import type { RemoteInfo } from 'node:dgram';
import type { AdvertiserLike, ResponderOptions } from './types.js';
import { PassimError, UsageError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import {
  advertisedKeyOf, claimKey, claimKindOfKey, hostFqdn, instanceFqdn, nameKey, nextHostName, nextInstanceName,
  randomInstanceName, sanitiseHostName, subtypeKey, subtypeNameFromKey, type ClaimKind,
} from './names.js';
import { ifIndex, isOnLink, LinkWatcher, linkKey, ownAddresses, subnetsOf, type LinkAddress } from './interfaces.js';
import { defaultSocketFactory, type Destination, type MdnsSocket, type MdnsSocketFactory } from './mdns-socket.js';
import { MDNS_PORT, packResponses, type Message, type OutMessage } from './packets.js';
import { recordKey, servicePtr, servicesMetaPtr, srv, subtypeTtl, txt, withTtl, type RR } from './records.js';
import { additionalsFor, addressRecords, answerQuery, type Zone } from './answers.js';
import { conflictingNames, tiebreak } from './conflict.js';

export interface ResponderConfig extends ResponderOptions {
  logger?: Logger;
  /** most newly added subtypes announced per second; the rest are only answered on query (default 100) */
  maxAnnouncedSubtypes?: number;
  /** how often to look for interfaces appearing/going, ms (default 3000) */
  pollIntervalMs?: number;
  /** random delay for multicast answers holding shared records, ms (RFC 6762 §6: [20, 120]) */
  sharedAnswerDelayMs?: [number, number];
  /** receive our own multicast (default true: several passims on one host see each other) */
  loopback?: boolean;
  /** put SRV/TXT/A in the additional section of PTR answers (default true; false answers like Avahi) */
  additionalRecords?: boolean;
  /** unicast replies (QU and legacy queries) per source address: burst, then per second (default 50, 25/s) */
  unicastRateLimit?: { burst: number; perSecond: number };
  /** creates the per-interface sockets (tests: in-process fakes) */
  socketFactory?: MdnsSocketFactory;
  /**
   * every response heard on a link (from an on-link address and port 5353), whoever sent it:
   * the daemon's peer cache learns from these (lib/discovery/peer-cache.ts)
   */
  onResponse?: (msg: Message, from: { address: string; link: LinkAddress }) => void;
}

type State = 'idle' | 'probing' | 'running' | 'stopped';

interface LinkState {
  link: LinkAddress;
  sock: MdnsSocket;
  subnets: ReturnType<typeof subnetsOf>;
  /** the interface's kernel index, for IPv6 sources that name it by number */
  index: number | undefined;
  /** recordKey → last time multicast (ms) */
  lastMulticast: Map<string, number>;
  /** our records seen in someone's response with a too-low TTL (goodbye), to multicast again */
  rescue: Map<string, RR>;
  rescueTimer?: NodeJS.Timeout;
}

/** start({ announceAfter }): open once that promise settles (error: it rejected) */
interface ProbeGate {
  open: boolean;
  error?: unknown;
  /** called as it opens */
  onOpen?: () => void;
}

interface ProbeRound {
  conflicts: Set<string>;
  lost: boolean;
  wake?: () => void;
}

const PROBE_INTERVAL_MS = 250;
/** queries kept for the sockets to open (the peer cache's first ones) */
const MAX_UNSENT_QUERIES = 16;
const ANNOUNCE_INTERVAL_MS = 1000;
const LEGACY_TTL_MAX = 10;
const BATCH_DELAY_MS = 10;
/** fastest a record is multicast again to defend it (RFC 6762 §6: probe defence, 250 ms) */
const DEFEND_INTERVAL_MS = 250;
/** delay before multicasting a rescued record, so a burst of spoofed goodbyes costs one send */
const RESCUE_DELAY_MS = 20;
/** sources remembered by the unicast rate limiter before it forgets idle ones */
const UNICAST_SOURCES_MAX = 4096;
/** subtypes remembered from queries heard while probing (a restart during a busy batch asks for many) */
const ASKED_WHILE_PROBING_MAX = 1024;

export class Responder implements AdvertiserLike {
  #claimed = '';
  #instance: string;
  #host: string;
  readonly #port: number;
  readonly #cfg: ResponderConfig;
  readonly #log: Logger;
  /** subtype keys (first 60 hex) we advertise */
  readonly #subtypes = new Set<string>();
  /** claim keys (`b`/`f` + first 60 hex) we advertise */
  readonly #claims = new Set<string>();
  readonly #links = new Map<string, LinkState>();
  /** queries asked for before any socket was open */
  readonly #unsent: Array<{ questions: Array<{ name: string; type: string }>; iface?: string }> = [];
  #state: State = 'idle';
  readonly #ac = new AbortController();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #pendingAnnounce = new Set<string>();
  readonly #pendingGoodbye = new Set<string>();
  #flushTimer: NodeJS.Timeout | undefined;
  /** subtype key → time (ms) until which someone may hold our PTR in a cache */
  readonly #mayBeCached = new Map<string, number>();
  #probe: ProbeRound | undefined;
  #reprobing = false;
  readonly #watcher: LinkWatcher;
  #ownAddrs = ownAddresses();
  #starting: Promise<void> | undefined;
  /** source address → unicast reply tokens (QU / legacy answers), refilled over time */
  readonly #unicastBudget = new Map<string, { tokens: number; at: number }>();
  #stopping: Promise<void> | undefined;
  /** subtypes that may still be announced this second (refilled at maxAnnouncedSubtypes per second) */
  #announceBudget = { tokens: 0, at: 0 };
  /** subtype and claim keys someone asked for while we probed: first in the claiming announcement */
  readonly #askedWhileProbing = new Set<string>();

  constructor(opts: ResponderConfig) {
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw new UsageError(`invalid port for mDNS: ${opts.port}`);
    this.#cfg = opts;
    this.#port = opts.port;
    this.#log = opts.logger ?? silentLogger;
    this.#instance = opts.instanceName ?? randomInstanceName();
    if (Buffer.byteLength(this.#instance) > 63 || this.#instance.includes('.') || !this.#instance) {
      throw new UsageError(`invalid mDNS instance name: ${JSON.stringify(this.#instance)}`);
    }
    this.#host = sanitiseHostName(opts.hostName ?? hostname());
    this.#watcher = new LinkWatcher(
      { interfaces: opts.interfaces, ipv6: opts.ipv6 },
      (added, removed) => void this.#onLinksChanged(added, removed),
      opts.pollIntervalMs ?? 3000,
    );
  }

  /** The claimed instance name ('' until start() has probed it). */
  get instanceName(): string {
    return this.#claimed;
  }

  /** The host name currently used for SRV target and A records (may be renamed on conflict). */
  get hostName(): string {
    return this.#host;
  }

  get state(): State {
    return this.#state;
  }

  /**
   * Opens the sockets, probes and announces. Resolves once the names are claimed. With
   * `announceAfter`, probing starts at once but the names are not claimed (nothing announced or
   * answered) before that promise resolves: until then a probe goes out every 250 ms, so a
   * conflict or a simultaneous probe is still seen and settled as in any probe (the daemon starts
   * probing before its HTTPS server listens: the ~1 s of probing overlaps its start-up). When it
   * rejects, start() rejects with its error and nothing is announced. A second call returns the
   * first call's promise.
   */
  start(opts: { announceAfter?: Promise<unknown> } = {}): Promise<void> {
    if (this.#state === 'stopped') return Promise.reject(new PassimError('mDNS responder already stopped'));
    this.#starting ??= (async () => {
      let gate: ProbeGate | undefined;
      if (opts.announceAfter) {
        const g: ProbeGate = { open: false };
        gate = g;
        const open = (error?: unknown) => { g.open = true; g.error = error; g.onOpen?.(); };
        opts.announceAfter.then(() => open(), (err: unknown) => open(err ?? new PassimError('mDNS: start aborted')));
      }
      const links = this.#watcher.start();
      await Promise.all(links.map((l) => this.#openLink(l)));
      for (const q of this.#unsent.splice(0)) this.query(q.questions, q.iface);
      if (this.#links.size === 0) this.#log.warn('mDNS: no usable network interface yet; will advertise once one appears');
      else this.#log.debug(`mDNS: probing ${this.#instance} on ${this.#links.size} link(s)`);
      this.#state = 'probing';
      try {
        await this.#probeLoop(gate);
      } catch (err) {
        if (this.#ac.signal.aborted) return;
        throw err;
      }
      if (gate?.error !== undefined) throw gate.error;
      this.#onClaimed();
    })();
    return this.#starting;
  }

  setHashes(hashes: Iterable<string>): void {
    const next = new Set<string>();
    for (const h of hashes) next.add(subtypeKey(h));
    for (const k of [...this.#subtypes]) if (!next.has(k)) this.#removeKey(k);
    for (const k of next) this.#addKey(k);
  }

  add(hash: string): void {
    this.#addKey(subtypeKey(hash));
  }

  remove(hash: string): void {
    this.#removeKey(subtypeKey(hash));
  }

  /** Advertises an in-progress claim for a hash (`_b…` bid or `_f…` fetching subtype). */
  addClaim(hash: string, kind: ClaimKind): void {
    this.#addKey(claimKey(hash, kind));
  }

  /** Withdraws a claim (goodbye if it may be in someone's cache). */
  removeClaim(hash: string, kind: ClaimKind): void {
    this.#removeKey(claimKey(hash, kind));
  }

  /**
   * Sends a multicast query (QM) from port 5353 on the links of interface `iface` (every link when
   * undefined or not open): answers come by multicast, so every cache on the link learns them.
   * Used by the peer cache to resolve SRV and addresses it lacks. Never throws.
   */
  query(questions: Array<{ name: string; type: string }>, iface?: string): void {
    if (this.#state === 'stopped' || !questions.length) return;
    // asked before the sockets are open (the peer cache starts with the daemon): sent once they are
    if (!this.#links.size) {
      if (this.#unsent.length < MAX_UNSENT_QUERIES) this.#unsent.push({ questions, iface });
      return;
    }
    const all = [...this.#links.values()];
    const on = all.filter((ls) => ls.link.name === iface);
    for (const ls of on.length ? on : all) void ls.sock.send({ response: false, questions });
  }

  /** Whether a hash is currently advertised. */
  has(hash: string): boolean {
    return this.#subtypes.has(subtypeKey(hash));
  }

  get size(): number {
    return this.#subtypes.size;
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const wasRunning = this.#state === 'running';
      this.#state = 'stopped';
      this.#ac.abort();
      this.#watcher.stop();
      if (this.#flushTimer) clearTimeout(this.#flushTimer);
      for (const t of this.#timers) clearTimeout(t);
      this.#timers.clear();
      if (wasRunning) {
        const now = Date.now();
        const cached = [...this.#mayBeCached].filter(([, until]) => until > now).map(([k]) => k);
        await this.#sendGoodbyes((ls) => [...this.#baseRecords(ls), ...cached.map((k) => this.#subtypePtr(k))]);
      }
      await Promise.all([...this.#links.values()].map((ls) => ls.sock.close()));
      this.#links.clear();
    })();
    return this.#stopping;
  }

  // ---------------------------------------------------------------- table changes

  /** The table a key lives in: claims (`b`/`f` + 60 hex) or items (60 hex). */
  #tableOf(k: string): Set<string> {
    return claimKindOfKey(k) ? this.#claims : this.#subtypes;
  }

  #has(k: string): boolean {
    return this.#tableOf(k).has(k);
  }

  #addKey(k: string): void {
    const table = this.#tableOf(k);
    if (table.has(k)) return;
    table.add(k);
    this.#pendingGoodbye.delete(k);
    if (this.#state === 'running') {
      this.#pendingAnnounce.add(k);
      this.#scheduleFlush();
    }
  }

  #removeKey(k: string): void {
    if (!this.#tableOf(k).delete(k)) return;
    this.#pendingAnnounce.delete(k);
    if (this.#state === 'running' && (this.#mayBeCached.get(k) ?? 0) > Date.now()) {
      this.#pendingGoodbye.add(k);
      this.#scheduleFlush();
    }
  }

  #scheduleFlush(ms = BATCH_DELAY_MS): void {
    if (this.#flushTimer) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flushPending();
    }, ms);
  }

  #flushPending(): void {
    if (this.#state !== 'running') return;
    const bye = [...this.#pendingGoodbye];
    this.#pendingGoodbye.clear();
    const max = this.#cfg.maxAnnouncedSubtypes ?? 100;
    // claims (herd suppression) are few and urgent: always announced; item subtypes within the budget
    const claims: string[] = [];
    const fresh: string[] = [];
    for (const k of this.#pendingAnnounce) (claimKindOfKey(k) ? claims : fresh).push(k);
    this.#pendingAnnounce.clear();
    if (bye.length) {
      for (const k of bye) this.#mayBeCached.delete(k);
      void this.#sendGoodbyes(() => bye.map((k) => this.#subtypePtr(k)));
    }
    const now = Date.now();
    const b = this.#announceBudget;
    b.tokens = Math.min(max, b.tokens + ((now - b.at) / 1000) * max);
    b.at = now;
    const n = Math.min(fresh.length, Math.floor(b.tokens));
    b.tokens -= n;
    const announce = [...claims, ...fresh.slice(0, n)];
    // of the new items, up to a second's worth are announced: what the budget cannot take now waits
    // for its tokens (a burst of publishes right after the names were claimed is all announced);
    // the rest of a bigger burst (10,000 hashes set at once) are answered on query
    const waiting = fresh.slice(n, max);
    for (const k of waiting) this.#pendingAnnounce.add(k);
    if (waiting.length) this.#scheduleFlush(Math.max(BATCH_DELAY_MS, Math.ceil(1000 / max)));
    const dropped = fresh.length - n - waiting.length;
    if (dropped > 0) this.#log.debug(`mDNS: ${fresh.length} new items, announcing ${n} now and ${waiting.length} within a second; the rest are answered on query`);
    if (announce.length) this.#announce(() => announce.filter((k) => this.#has(k)).map((k) => this.#subtypePtr(k)));
  }

  // ---------------------------------------------------------------- records

  #addressesOf(iface: string): string[] {
    const out: string[] = [];
    for (const ls of this.#links.values()) if (ls.link.name === iface) out.push(ls.link.address);
    return out;
  }

  #additionals(zone: Zone): (rr: RR) => RR[] {
    return this.#cfg.additionalRecords === false ? () => [] : (rr) => additionalsFor(zone, rr);
  }

  #zone(ls: LinkState): Zone {
    return {
      instance: this.#instance,
      host: this.#host,
      port: this.#port,
      addresses: this.#addressesOf(ls.link.name),
      hasSubtype: (k) => this.#has(k),
    };
  }

  #subtypePtr(k: string, instance = this.#instance): RR {
    return { name: subtypeNameFromKey(k), type: 'PTR', ttl: subtypeTtl(k), data: instanceFqdn(instance) };
  }

  #uniqueRecords(ls: LinkState): RR[] {
    const z = this.#zone(ls);
    return [srv(this.#instance, this.#host, this.#port), txt(this.#instance), ...addressRecords(z)];
  }

  #baseRecords(ls: LinkState): RR[] {
    return [servicesMetaPtr(), servicePtr(this.#instance), ...this.#uniqueRecords(ls)];
  }

  // ---------------------------------------------------------------- links

  async #openLink(l: LinkAddress): Promise<LinkState | undefined> {
    if (this.#state === 'stopped') return undefined;
    const sock: MdnsSocket = (this.#cfg.socketFactory ?? defaultSocketFactory)({ link: l, logger: this.#log, loopback: this.#cfg.loopback ?? true });
    try {
      await sock.open();
    } catch (err) {
      this.#log.warn(`mDNS: cannot listen on ${l.name} (${l.address}): ${(err as Error).message}`);
      await sock.close();
      return undefined;
    }
    if ((this.#state as State) === 'stopped') {
      await sock.close();
      return undefined;
    }
    const ls: LinkState = { link: l, sock, subnets: subnetsOf(l.name), index: ifIndex(l.name), lastMulticast: new Map(), rescue: new Map() };
    sock.on('message', (msg, rinfo) => this.#onMessage(ls, msg, rinfo));
    this.#links.set(linkKey(l), ls);
    this.#log.debug(`mDNS: listening on ${l.name} ${l.address}`);
    return ls;
  }

  async #onLinksChanged(added: LinkAddress[], removed: LinkAddress[]): Promise<void> {
    try {
      this.#ownAddrs = ownAddresses();
      for (const l of removed) {
        const ls = this.#links.get(linkKey(l));
        if (!ls) continue;
        this.#links.delete(linkKey(l));
        this.#log.info(`mDNS: interface ${l.name} lost ${l.address}`);
        await ls.sock.close();
      }
      const opened: LinkState[] = [];
      for (const l of added) {
        const ls = await this.#openLink(l);
        if (ls) {
          this.#log.info(`mDNS: interface ${l.name} has ${l.address}`);
          opened.push(ls);
        }
      }
      for (const ls of this.#links.values()) ls.subnets = subnetsOf(ls.link.name);
      if (this.#state === 'running' && (opened.length || removed.length)) {
        // new addresses: re-announce the base records (A with cache-flush replaces stale ones)
        const names = new Set([...opened, ...removed].map((x) => ('link' in x ? x.link.name : x.name)));
        const affected = [...this.#links.values()].filter((ls) => names.has(ls.link.name));
        this.#announce((ls) => this.#baseRecords(ls), affected);
      }
    } catch (err) {
      this.#log.warn(`mDNS: interface change: ${(err as Error).message}`);
    }
  }

  // ---------------------------------------------------------------- probing

  /** Sleeps ms (cut short by a probe conflict when probing); rejects when stopped. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const signal = this.#ac.signal;
      if (signal.aborted) return reject(new PassimError('stopped'));
      const done = () => {
        clearTimeout(t);
        this.#timers.delete(t);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        clearTimeout(t);
        reject(new PassimError('stopped'));
      };
      const t = setTimeout(done, ms);
      this.#timers.add(t);
      if (this.#probe) this.#probe.wake = done;
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Probes until the names are ours (renaming on conflict). With a `gate`, probing goes on (one
   * probe per 250 ms after the usual three and the 250 ms after them) until it opens, and the
   * names are claimed as it opens: three probes went unanswered already, and someone probing for
   * the same names meanwhile saw the later ones (and is answered by us from then on).
   */
  async #probeLoop(gate?: ProbeGate): Promise<void> {
    let attempts = 0;
    for (;;) {
      attempts++;
      if (attempts > 15) await this.#sleep(5000); // RFC 6762 §8.1: many conflicts → slow down
      const round: ProbeRound = { conflicts: new Set(), lost: false };
      this.#probe = round;
      await this.#sleep(randomInt(0, PROBE_INTERVAL_MS));
      for (let i = 0; (i < 3 || (gate && !gate.open)) && !round.conflicts.size && !round.lost; i++) {
        await this.#sendProbes();
        if (gate && i >= 3) {
          // only an extra probe's wait ends as the gate opens
          if (gate.open) break;
          gate.onOpen = () => round.wake?.();
        }
        try {
          await this.#sleep(PROBE_INTERVAL_MS);
        } finally {
          if (gate) gate.onOpen = undefined;
        }
      }
      this.#probe = undefined;
      if (round.conflicts.size) {
        if (round.conflicts.has(nameKey(instanceFqdn(this.#instance)))) {
          const next = nextInstanceName(this.#instance);
          this.#log.info(`mDNS: service name "${this.#instance}" is taken on the network, using "${next}"`);
          this.#instance = next;
        }
        if (round.conflicts.has(nameKey(hostFqdn(this.#host)))) {
          const next = nextHostName(this.#host);
          this.#log.info(`mDNS: host name "${this.#host}.local" is taken on the network, using "${next}.local"`);
          this.#host = next;
        }
        continue;
      }
      if (round.lost) {
        await this.#sleep(1000); // RFC 6762 §8.2: the loser defers one second, then probes again
        continue;
      }
      return;
    }
  }

  async #sendProbes(): Promise<void> {
    await Promise.all([...this.#links.values()].map((ls) => ls.sock.send({
      response: false,
      questions: [
        { name: instanceFqdn(this.#instance), type: 'ANY' },
        { name: hostFqdn(this.#host), type: 'ANY' },
      ],
      authorities: this.#uniqueRecords(ls),
    })));
  }

  #onClaimed(): void {
    if (this.#state === 'stopped') return;
    this.#state = 'running';
    this.#claimed = this.#instance;
    this.#log.info(`mDNS: advertising ${this.#instance}.${'_cache._tcp.local'} (host ${this.#host}.local, port ${this.#port}, ${this.#subtypes.size} items)`);
    const max = this.#cfg.maxAnnouncedSubtypes ?? 100;
    // what peers asked for while we probed (a restart under their feet) comes first: their next
    // question may be a while off
    const asked = [...this.#askedWhileProbing].filter((k) => this.#has(k));
    this.#askedWhileProbing.clear();
    const items = new Set(asked.filter((k) => !claimKindOfKey(k)).slice(0, max));
    for (const k of this.#subtypes) {
      if (items.size >= max) break;
      items.add(k);
    }
    const subs = [...new Set([...this.#claims, ...asked.filter((k) => claimKindOfKey(k))]), ...items];
    this.#announceBudget = { tokens: 0, at: Date.now() }; // this announcement spends this second's budget
    this.#pendingAnnounce.clear();
    this.#announce((ls) => [...this.#baseRecords(ls), ...subs.filter((k) => this.#has(k)).map((k) => this.#subtypePtr(k))]);
  }

  /** Keeps the subtype and claim keys a query asks for (at most ASKED_WHILE_PROBING_MAX). */
  #noteAsked(msg: Message): void {
    for (const q of msg.questions) {
      if (this.#askedWhileProbing.size >= ASKED_WHILE_PROBING_MAX) return;
      if (q.type !== 'PTR' && q.type !== 'ANY') continue;
      const k = advertisedKeyOf(q.name);
      if (k) this.#askedWhileProbing.add(k);
    }
  }

  /** A conflict after the names were claimed (RFC 6762 §9): probe again (and rename if it persists). */
  async #reprobe(): Promise<void> {
    if (this.#reprobing || this.#state !== 'running') return;
    this.#reprobing = true;
    const oldInstance = this.#instance;
    this.#state = 'probing';
    try {
      await this.#probeLoop();
      if (this.#instance !== oldInstance) {
        // our PTRs to the old name must go; SRV/TXT of that name now belong to the other host
        const now = Date.now();
        const cached = [...this.#mayBeCached].filter(([, u]) => u > now).map(([k]) => k);
        this.#state = 'running';
        await this.#sendGoodbyes(() => [servicePtr(oldInstance), ...cached.map((k) => this.#subtypePtr(k, oldInstance))]);
      }
      this.#onClaimed();
    } catch {
      // stopped while probing
    } finally {
      this.#reprobing = false;
    }
  }

  // ---------------------------------------------------------------- receiving

  #onMessage(ls: LinkState, msg: Message, rinfo: RemoteInfo): void {
    try {
      if (this.#state === 'stopped' || this.#state === 'idle') return;
      const src = rinfo.address.split('%')[0]!.toLowerCase();
      if (!isOnLink(rinfo.address, ls.link.name, ls.subnets, ls.index) && !this.#ownAddrs.has(src)) return;
      if (msg.response) {
        if (rinfo.port === MDNS_PORT && this.#cfg.onResponse) {
          try {
            this.#cfg.onResponse(msg, { address: rinfo.address, link: ls.link });
          } catch (err) {
            this.#log.debug(`mDNS: response listener: ${(err as Error).message}`);
          }
        }
        this.#onResponse(ls, msg);
      } else this.#onQuery(ls, msg, rinfo);
    } catch (err) {
      this.#log.debug(`mDNS: ignoring packet from ${rinfo.address}: ${(err as Error).message}`);
    }
  }

  #onResponse(ls: LinkState, msg: Message): void {
    const theirs = [...msg.answers, ...msg.additionals];
    if (!theirs.length) return;
    if (this.#state === 'running') this.#rescue(ls, theirs);
    const clash = conflictingNames(this.#uniqueRecords(ls), theirs, this.#ownAddrs);
    if (!clash.size) return;
    if (this.#state === 'probing' && this.#probe) {
      for (const n of clash) this.#probe.conflicts.add(n);
      this.#probe.wake?.();
    } else if (this.#state === 'running') {
      this.#log.info(`mDNS: another host answers for ${[...clash].join(', ')}; probing again`);
      void this.#reprobe();
    }
  }

  /**
   * Someone multicast one of our own records with less than half its TTL — a goodbye (TTL 0), by
   * a host shutting down wrongly or by a spoofer: multicast ours again before caches drop it
   * (RFC 6762 §6.6, §10.1: the cooperating responder "rescues" the record within one second).
   * Rate-limited like a probe defence: at most once per 250 ms per record.
   */
  #rescue(ls: LinkState, theirs: RR[]): void {
    const instanceKey = nameKey(instanceFqdn(this.#instance));
    let base: Map<string, RR> | undefined;
    for (const rr of theirs) {
      let own: RR | undefined;
      if (rr.type === 'PTR') {
        const k = advertisedKeyOf(rr.name);
        if (k !== undefined) {
          if (this.#has(k) && nameKey(rr.data) === instanceKey) own = this.#subtypePtr(k);
        }
      }
      if (!own) {
        base ??= new Map(this.#baseRecords(ls).map((r) => [recordKey(r), r]));
        own = base.get(recordKey(rr));
      }
      if (!own || rr.ttl >= own.ttl / 2) continue;
      ls.rescue.set(recordKey(own), own);
    }
    if (!ls.rescue.size || ls.rescueTimer) return;
    const now = Date.now();
    let wait = RESCUE_DELAY_MS;
    for (const k of ls.rescue.keys()) wait = Math.max(wait, (ls.lastMulticast.get(k) ?? -Infinity) + DEFEND_INTERVAL_MS - now);
    const t = setTimeout(() => {
      this.#timers.delete(t);
      ls.rescueTimer = undefined;
      const recs = [...ls.rescue.values()];
      ls.rescue.clear();
      if (this.#state !== 'running' || !this.#links.has(linkKey(ls.link))) return;
      this.#log.debug(`mDNS: re-announcing ${recs.length} record(s) someone said goodbye to`);
      this.#multicastAnswers(ls, recs, DEFEND_INTERVAL_MS);
    }, wait);
    ls.rescueTimer = t;
    this.#timers.add(t);
  }

  /**
   * Token bucket per source address for unicast replies (QU and legacy queries): a flood of
   * queries from one address is not answered with a flood of unicast replies.
   */
  #allowUnicast(source: string): boolean {
    const { burst, perSecond } = this.#cfg.unicastRateLimit ?? { burst: 50, perSecond: 25 };
    const now = Date.now();
    let b = this.#unicastBudget.get(source);
    if (!b) {
      if (this.#unicastBudget.size >= UNICAST_SOURCES_MAX) {
        for (const [k, v] of this.#unicastBudget) if (v.tokens + ((now - v.at) / 1000) * perSecond >= burst) this.#unicastBudget.delete(k);
        if (this.#unicastBudget.size >= UNICAST_SOURCES_MAX) this.#unicastBudget.clear();
      }
      b = { tokens: burst, at: now };
      this.#unicastBudget.set(source, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  #onQuery(ls: LinkState, msg: Message, rinfo: RemoteInfo): void {
    if (this.#state === 'probing' && this.#probe && msg.authorities.length) {
      const ours = this.#uniqueRecords(ls);
      for (const name of [nameKey(instanceFqdn(this.#instance)), nameKey(hostFqdn(this.#host))]) {
        const theirs = msg.authorities.filter((r) => nameKey(r.name) === name);
        if (!theirs.length) continue;
        if (tiebreak(ours.filter((r) => nameKey(r.name) === name), theirs) < 0) {
          this.#probe.lost = true;
          this.#probe.wake?.();
        }
      }
    }
    if (this.#state === 'probing') this.#noteAsked(msg);
    if (this.#state !== 'running' || !msg.questions.length) return;
    const zone = this.#zone(ls);
    const legacy = rinfo.port !== MDNS_PORT;
    const to: Destination = { address: rinfo.address, port: rinfo.port };
    const { unicast, multicast } = answerQuery(zone, msg.questions, legacy ? [] : msg.answers);
    if (legacy) {
      const all = [...unicast, ...multicast];
      if (!all.length) return;
      if (!this.#allowUnicast(to.address)) return;
      const clip = (rr: RR): RR => ({ ...rr, ttl: Math.min(rr.ttl, LEGACY_TTL_MAX), flush: false }) as RR;
      // echo the question(s) each message answers (all of them rarely fit in one message)
      const questionFor = (rr: RR) => {
        const q = msg.questions.find((x) => nameKey(x.name) === nameKey(rr.name) && (x.type === rr.type || x.type === 'ANY'));
        return q && { name: q.name, type: q.type };
      };
      const extra = this.#additionals(zone);
      for (const m of packResponses(all.map(clip), (rr) => extra(rr).map(clip), { id: msg.id, questionFor })) {
        void ls.sock.send(m, to);
      }
      return;
    }
    if (unicast.length && this.#allowUnicast(to.address)) {
      for (const m of packResponses(unicast, this.#additionals(zone))) {
        this.#noteCached(m);
        void ls.sock.send(m, to);
      }
    }
    if (multicast.length) {
      const probe = msg.authorities.length > 0;
      const shared = multicast.some((rr) => rr.type === 'PTR');
      const [lo, hi] = this.#cfg.sharedAnswerDelayMs ?? [20, 120];
      const delay = probe || !shared ? 0 : randomInt(lo, Math.max(lo + 1, hi + 1));
      const go = () => this.#multicastAnswers(ls, multicast, probe ? 250 : 1000);
      if (delay === 0) go();
      else {
        const t = setTimeout(() => {
          this.#timers.delete(t);
          if (this.#state === 'running') go();
        }, delay);
        this.#timers.add(t);
      }
    }
  }

  #noteCached(m: OutMessage): void {
    const now = Date.now();
    for (const rr of m.answers ?? []) {
      if (rr.type !== 'PTR' || rr.ttl === 0) continue;
      const k = advertisedKeyOf(rr.name);
      if (k) this.#mayBeCached.set(k, Math.max(this.#mayBeCached.get(k) ?? 0, now + subtypeTtl(k) * 1000));
    }
  }

  /** Multicasts answers, skipping records multicast on this link less than minIntervalMs ago (§6.2). */
  #multicastAnswers(ls: LinkState, answers: RR[], minIntervalMs: number): void {
    const now = Date.now();
    const fresh = answers.filter((rr) => now - (ls.lastMulticast.get(recordKey(rr)) ?? -Infinity) >= minIntervalMs);
    if (!fresh.length) return;
    const zone = this.#zone(ls);
    for (const m of packResponses(fresh, this.#additionals(zone))) this.#sendMulticast(ls, m);
  }

  #sendMulticast(ls: LinkState, m: OutMessage): Promise<void> {
    const now = Date.now();
    for (const rr of [...(m.answers ?? []), ...(m.additionals ?? [])]) ls.lastMulticast.set(recordKey(rr), now);
    this.#noteCached(m);
    return ls.sock.send(m);
  }

  // ---------------------------------------------------------------- announcing

  /** Announces now and once more a second later; `build` is re-evaluated at each send. */
  #announce(build: (ls: LinkState) => RR[], links?: LinkState[]): void {
    const once = (repeat: boolean) => {
      if (this.#state !== 'running') return;
      const now = Date.now();
      for (const ls of links ?? this.#links.values()) {
        if (!this.#links.has(linkKey(ls.link))) continue;
        let recs = build(ls);
        // the repeat skips records an answer multicast moments ago (≥ 1 s after the first
        // announcement, so it already was the second one): no duplicates within milliseconds (§6)
        if (repeat) recs = recs.filter((rr) => now - (ls.lastMulticast.get(recordKey(rr)) ?? -Infinity) >= ANNOUNCE_INTERVAL_MS / 2);
        if (!recs.length) continue;
        const msgs = packResponses(recs, () => []);
        for (const m of msgs) void this.#sendMulticast(ls, m);
        this.#log.debug(`mDNS: ${repeat ? 'repeated' : 'sent'} an announcement of ${recs.length} records in ${msgs.length} packets on ${ls.link.name}`);
      }
    };
    once(false);
    const t = setTimeout(() => {
      this.#timers.delete(t);
      once(true);
    }, ANNOUNCE_INTERVAL_MS);
    this.#timers.add(t);
  }

  #sendGoodbyes(build: (ls: LinkState) => RR[]): Promise<void> {
    const sends: Promise<void>[] = [];
    for (const ls of this.#links.values()) {
      const recs = build(ls).map((rr) => withTtl(rr, 0));
      for (const m of packResponses(recs, () => [])) sends.push(ls.sock.send(m));
    }
    return Promise.all(sends).then(() => undefined);
  }
}
