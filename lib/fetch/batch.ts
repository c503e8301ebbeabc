/**
 * The fetch engine (FetchBatchLike of batch-api.ts). A single `passim fetch NAME` is a batch of one;
 * `passim fetch --from`, the apt method and the wrappers add many entries.
 *
 * Per batch, once: the local daemon is probed (status + items), its control connection carries
 * every peers question, herd claim and publish, and two kinds of kept-alive HTTPS connections
 * serve every download: PeerConnections (peer-request.ts, with peerPool) for peers and one undici
 * Agent for the CDN, each keeping its connections to a host alive for the whole batch.
 *
 * Per round (the entries added within `gatherMs` of each other — apt adds them one by one): the
 * daemon is asked which peers it has heard announce the hashes (POST /peers; an old daemon without
 * the route is "no cache"); only the hashes it did not know go to the finders (mDNS by default: one
 * query with many questions; plus any extra finder such as a DNS zone), all in one round. A file
 * starts downloading as soon as a peer for it is known — it does not wait for the round to end.
 *
 * Per file, as a single fetch always did: the sources in order (local daemon, peers, herd wait,
 * each URL), each through verifiedDownload into a temp file beside the target, the first that
 * verifies renamed into place; then published to the local daemon. Downloads are bounded per host:
 * `connectionsPerPeer` (default 2 = the daemon's MaxUploadsPerPeer, which answers 503 beyond it)
 * and `connectionsPerCdnHost` (default 8: hides a mirror's per-request latency for small files
 * while staying a polite client — curl --parallel opens up to 50, browsers 6). Publishes run
 * `publishConcurrency` (default 4) at a time on the control socket. Two entries with the same hash
 * are fetched once; the second is copied from the first.
 *
 * Herd suppression (herd.ts) runs per file, but only for a file that may need the CDN (no local
 * copy, no peer known from the daemon) and its claim lookups share the batch's mDNS session, so
 * they cost no wait of their own: their window runs alongside the discovery round.
 */
import { copyFile, rename, unlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { basename as pathBasename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { Agent } from 'undici';
import type { ControlClient } from '../control/client.js';
import { MAX_PEERS_HASHES } from '../control/api.js';
import { ChecksumMismatchError, NotFoundError, PassimError, UsageError } from '../core/errors.js';
import { validateBasename } from '../core/basename.js';
import { resolvePaths } from '../core/paths.js';
import { normaliseSha256 } from '../core/sha256.js';
import { withTimeout } from '../core/with-timeout.js';
import type { Browse, BrowseMany, Peer } from '../discovery/types.js';
import type { MdnsSession } from '../discovery/browse-many.js';
import type { BatchEntry, FetchBatchLike } from './batch-api.js';
import { resolveCdnCa } from './cdn-ca.js';
import { Herd, type ClaimChannel } from './herd.js';
import { HostSlots, hostKey } from './host-slots.js';
import { CDN_LIMITS, PEER_LIMITS, withLimits, type SourceLimits } from './limits.js';
import { resolveOutput, type OutputTarget } from './output-path.js';
import { PeerConnections } from './peer-request.js';
import { DEFAULT_DISCOVERY_MS, type FetchProgress, type FetchResult } from './result.js';
import { daemonFor, localSource, orderedSources, PeerQueue, peerUrl, probeDaemon, probeLocalDaemon, type DaemonView, type Source } from './sources.js';
import { SourceError, verifiedDownload } from './verified-download.js';
import { WORKER_MIN_SIZE } from '../core/hash-writer.js';

export interface BatchOptions {
  /** directory for entries without `output` (default the current directory) */
  outputDir?: string;
  /** discovery window: ms without a further answer (default 400) */
  timeoutMs?: number;
  /** look for peers (default true) */
  peers?: boolean;
  /** use the entries' URLs (default true) */
  useCdn?: boolean;
  /** publish verified files to the local daemon, if one answers (default true) */
  publish?: boolean;
  /** try the local daemon as a source (default true) */
  local?: boolean;
  maxAge?: number;
  shareLimit?: number;
  /** the publishing command line, for the daemon's audit log */
  cmdline?: string;
  /** control socket of the local daemon (default: PASSIM_SOCKET / the usual path) */
  socketPath?: string;
  /** how long the local daemon may take to answer status/items/peers (default 2000 ms) */
  localTimeoutMs?: number;
  /** how long one publish may take: this plus 100 ms per MiB (default 60000 ms) */
  publishTimeoutMs?: number;
  /**
   * Where peers are looked for, all in the same round. Default: mDNS (one session for the
   * batch) plus `extraFinders`. Given, it replaces the default entirely.
   */
  finders?: BrowseMany[];
  /** finders added to the default mDNS one (e.g. a wide-area DNS-SD zone) */
  extraFinders?: BrowseMany[];
  /** a single-hash browser (tests): used as the only finder, one browse per hash */
  browse?: Browse;
  /** herd suppression (default true; needs peers on) */
  herd?: boolean;
  herdWaitMs?: number;
  herdPollMs?: number;
  /** browser for other hosts' claims; default the batch's mDNS session, none when `browse`/`finders` are injected */
  claimBrowse?: Browse;
  /** extra CA for the URLs (tests); default the PEM file in env PASSIM_CDN_CA */
  cdnCa?: string | Buffer;
  peerLimits?: Partial<SourceLimits>;
  cdnLimits?: Partial<SourceLimits>;
  /**
   * keep peer connections alive across downloads (peer-request.ts's PeerConnections), instead of
   * one TLS connection per download: for batches of many files, where a handshake per file costs
   * more than the file
   */
  peerPool?: boolean;
  /** downloads at once from one peer (default 2) */
  connectionsPerPeer?: number;
  /** downloads at once from one mirror/CDN host (default 8) */
  connectionsPerCdnHost?: number;
  /** publishes at once on the control socket (default 4) */
  publishConcurrency?: number;
  /** entries added within this many ms share a discovery round (default 5) */
  gatherMs?: number;
  /** mDNS interfaces (default all) */
  interfaces?: string[];
  /** where an entry with output '-' writes; default process.stdout */
  stdout?: Writable;
  /** progress of each file (the entry says which) */
  onProgress?: (ev: FetchProgress, entry: BatchEntry) => void;
  signal?: AbortSignal;
}

interface Job {
  entry: BatchEntry;
  sha256: string;
  name: string;
  out: OutputTarget;
  t0: number;
  promise: Promise<FetchResult>;
  resolve: (r: FetchResult) => void;
  reject: (e: unknown) => void;
  /** the job fetching the same hash earlier in this batch */
  leader?: Job;
}

interface Round {
  /** per hash: the peers found (from the daemon's cache, then the finders) */
  queues: Map<string, PeerQueue>;
  /** hashes the daemon's cache had peers for */
  cached: Set<string>;
  /** the daemon hears nobody else on the LAN: no mDNS lookup, no claims window */
  alone: boolean;
  finderError?: unknown;
}

/** Control calls never hold a batch: a daemon that does not answer in time has nothing for us. */
const CONTROL_TIMEOUT_MS = 2000;
/**
 * A downloaded file at most this big is published from memory (the bytes just verified) rather
 * than read back from disk; at most KEEP_BUDGET bytes are held so for publishes still queued.
 */
const KEEP_MAX = 256 * 1024;
const KEEP_BUDGET = 16 * 1024 * 1024;
/**
 * Downloads whose last byte is in but which are still being written and fsynced, with their host
 * slot already given to the next file: at most this many (each may hold up to the same-thread
 * writer's 4 MiB queue), and only bodies the same-thread writer takes (under WORKER_MIN_SIZE).
 */
const FLUSHING_MAX = 8;

export class FetchBatch implements FetchBatchLike {
  readonly #o: BatchOptions;
  readonly #socketPath: string;
  readonly #peerLimits: SourceLimits;
  readonly #cdnLimits: SourceLimits;
  readonly #cdnCa: string | Buffer | undefined;
  readonly #perPeer: number;
  readonly #perCdnHost: number;
  /** undici's pool for the CDN, loaded at first use: a fetch from peers never loads undici */
  #cdnAgent?: Promise<Agent>;
  /** kept-alive peer connections (peerPool) */
  readonly #peerConns: PeerConnections | undefined;
  readonly #peerSlots: HostSlots;
  readonly #cdnSlots: HostSlots;
  readonly #publishSlots: HostSlots;
  /** peers picked by a file whose download has not yet asked for a slot (PeerQueue.next) */
  readonly #picked = new Map<string, number>();
  readonly #ac = new AbortController();
  readonly #signal: AbortSignal;
  #daemon?: Promise<DaemonView | undefined>;
  #control?: ControlClient;
  #claimsReady?: Promise<void>;
  #daemonGone = false;
  #session?: Promise<MdnsSession>;
  #finders?: Promise<BrowseMany[]>;
  #gather: Array<{ job: Job; resolve: (r: Round) => void; reject: (e: unknown) => void }> = [];
  #gatherTimer?: NodeJS.Timeout;
  #gatherStart?: number;
  readonly #jobs = new Set<Promise<unknown>>();
  readonly #rounds = new Set<Promise<unknown>>();
  readonly #leaders = new Map<string, Job>();
  readonly #outputs = new Set<string>();
  /** bytes of downloaded files held in memory until they are published (KEEP_BUDGET) */
  #kept = 0;
  /** downloads being flushed after giving up their slot (FLUSHING_MAX) */
  #flushing = 0;
  #closed = false;

  constructor(opts: BatchOptions = {}) {
    this.#o = opts;
    this.#socketPath = opts.socketPath ?? resolvePaths().socketPath;
    this.#peerLimits = withLimits(PEER_LIMITS, opts.peerLimits);
    this.#cdnLimits = withLimits(CDN_LIMITS, opts.cdnLimits);
    this.#perPeer = opts.connectionsPerPeer ?? 2;
    this.#perCdnHost = opts.connectionsPerCdnHost ?? 8;
    this.#cdnCa = resolveCdnCa(opts.cdnCa);
    this.#peerSlots = new HostSlots(this.#perPeer);
    this.#cdnSlots = new HostSlots(this.#perCdnHost);
    this.#publishSlots = new HostSlots(opts.publishConcurrency ?? 4);
    this.#peerConns = opts.peerPool ? new PeerConnections() : undefined;
    this.#signal = opts.signal ? AbortSignal.any([opts.signal, this.#ac.signal]) : this.#ac.signal;
    // every queued and running file listens to the batch's signal: hundreds of listeners are the
    // design, not a leak (Node warns on stderr past 10)
    setMaxListeners(0, this.#signal);
  }

  /** The sha256 for `name` from a checksum file (SHA256SUMS …), over the batch's verified CDN pool. */
  async checksum(url: string, name: string): Promise<string> {
    const [{ fetchChecksum }, cdn] = await Promise.all([import('./checksum-file.js'), this.#cdnPool()]);
    return fetchChecksum(url, name, { dispatcher: cdn, signal: this.#signal });
  }

  #cdnPool(): Promise<Agent> {
    this.#cdnAgent ??= import('./dispatchers.js').then((d) => d.cdnAgent(this.#cdnLimits, this.#cdnCa, this.#perCdnHost));
    return this.#cdnAgent;
  }

  warm(): void {
    void this.#localDaemon();
  }

  add(entry: BatchEntry): Promise<FetchResult> {
    let job: Job;
    try {
      job = this.#newJob(entry);
    } catch (err) {
      return Promise.reject(err);
    }
    // the first entry for a hash fetches it, in the round being gathered; a later one copies it
    const leader = this.#leaders.get(job.sha256);
    let round: Promise<Round> | undefined;
    if (leader) job.leader = leader;
    else {
      this.#leaders.set(job.sha256, job);
      round = this.#join(job);
    }
    const run = this.#prepare(job, round);
    this.#jobs.add(run);
    void run.finally(() => this.#jobs.delete(run));
    return job.promise;
  }

  #newJob(entry: BatchEntry): Job {
    if (this.#closed) throw new PassimError('the fetch batch is closed');
    const name = validateBasename(entry.name);
    const sha256 = normaliseSha256(entry.sha256);
    for (const u of entry.urls) {
      let p: URL;
      try {
        p = new URL(u);
      } catch {
        throw new UsageError(`not a URL: ${u}`);
      }
      if (p.protocol !== 'https:' && p.protocol !== 'http:') throw new UsageError(`not an http(s) URL: ${u}`);
    }
    let resolve!: (r: FetchResult) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<FetchResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {}); // the caller gets it; an unawaited failure is no crash
    return { entry, sha256, name, out: { dir: '' }, t0: performance.now(), promise, resolve, reject };
  }

  /** Resolves the output, then fetches in its round (or copies what the leader fetched). */
  async #prepare(job: Job, round: Promise<Round> | undefined): Promise<void> {
    round?.catch(() => {}); // an output error below must not leave it unhandled
    try {
      const output = job.entry.output ?? (this.#o.outputDir !== undefined ? join(this.#o.outputDir, job.name) : undefined);
      job.out = await resolveOutput(output, job.name);
      if (job.out.final) {
        if (this.#outputs.has(job.out.final)) throw new UsageError(`two entries write ${job.out.final}`);
        this.#outputs.add(job.out.final);
      }
      if (job.leader) job.resolve(await this.#follow(job, job.leader));
      else job.resolve(await this.#fetch(job, await round!));
    } catch (err) {
      job.reject(err);
    }
  }

  /**
   * Entries added close together share a round: the round starts `gatherMs` after the last entry
   * added (apt sends its requests one by one), at most 10 × gatherMs after the first.
   */
  #join(job: Job): Promise<Round> {
    return new Promise<Round>((resolve, reject) => {
      this.#gather.push({ job, resolve, reject });
      const gather = this.#o.gatherMs ?? 5;
      const now = performance.now();
      this.#gatherStart ??= now;
      if (this.#gatherTimer) clearTimeout(this.#gatherTimer);
      const wait = Math.max(0, Math.min(gather, this.#gatherStart + 10 * gather - now));
      this.#gatherTimer = setTimeout(() => this.#startRound(), wait);
    });
  }

  #startRound(): void {
    this.#gatherTimer = undefined;
    this.#gatherStart = undefined;
    const waiting = this.#gather.splice(0);
    const r = this.#round(waiting.map((w) => w.job)).then(
      (round) => {
        for (const w of waiting) w.resolve(round);
      },
      (err) => {
        for (const w of waiting) w.reject(err);
      },
    );
    this.#rounds.add(r);
    void r.finally(() => this.#rounds.delete(r));
  }

  /** The local daemon, probed once per batch. */
  #localDaemon(): Promise<DaemonView | undefined> {
    this.#daemon ??= this.#o.local === false ? Promise.resolve(undefined) : probeDaemon(this.#socketPath, this.#o.localTimeoutMs);
    return this.#daemon;
  }

  async #controlClient(): Promise<ControlClient> {
    if (!this.#control) {
      const { ControlClient } = await import('../control/client.js');
      this.#control ??= new ControlClient(this.#socketPath);
    }
    return this.#control;
  }

  /** A Browse on the batch's mDNS session, which it opens at its first use. */
  readonly #sessionBrowse: Browse = (sha256, opts) => {
    const session = () => this.#mdns();
    return (async function* () {
      yield* (await session()).browse(sha256, opts);
    })();
  };

  async #mdns(): Promise<MdnsSession> {
    this.#session ??= import('../discovery/browse-many.js').then((m) => new m.MdnsSession({ interfaces: this.#o.interfaces }));
    return this.#session;
  }

  /** The finders of a round; alone on the LAN (the daemon says), mDNS has nobody to ask. */
  #finderList(alone: boolean): Promise<BrowseMany[]> {
    if (alone && !this.#o.finders && !this.#o.browse) return Promise.resolve(this.#o.extraFinders ?? []);
    this.#finders ??= (async () => {
      if (this.#o.finders) return this.#o.finders;
      if (this.#o.browse) return [finderFromBrowse(this.#o.browse)];
      const { sessionFinder } = await import('../discovery/browse-many.js');
      return [sessionFinder(await this.#mdns()), ...(this.#o.extraFinders ?? [])];
    })();
    return this.#finders;
  }

  async #round(jobs: Job[]): Promise<Round> {
    const round: Round = { queues: new Map(), cached: new Set(), alone: false };
    const daemon = await this.#localDaemon();
    if (this.#o.peers === false) return round;
    const hashes = [...new Set(jobs.filter((j) => !daemon?.items.has(j.sha256)).map((j) => j.sha256))];
    if (!hashes.length) return round;
    for (const h of hashes) round.queues.set(h, new PeerQueue());
    const self = daemon?.instance.toLowerCase();
    const usable = (p: Peer) => !self || p.instance.toLowerCase() !== self;

    // 1. what the daemon has heard on the wire
    if (daemon) {
      try {
        const c = await this.#controlClient();
        for (let i = 0; i < hashes.length; i += MAX_PEERS_HASHES) {
          const chunk = hashes.slice(i, i + MAX_PEERS_HASHES);
          const reply = await withTimeout(c.peers(chunk), this.#o.localTimeoutMs ?? CONTROL_TIMEOUT_MS, 'the daemon did not answer in time');
          round.alone = reply.alone === true;
          for (const h of chunk) {
            const list = reply.peers[h];
            if (!Array.isArray(list)) continue;
            for (const p of list) if (usable(p) && round.queues.get(h)!.push(p)) round.cached.add(h);
          }
        }
      } catch {
        /* no cache: every hash goes to the finders */
      }
    }
    for (const h of round.cached) round.queues.get(h)!.end();

    // 2. one round of every finder for the rest; files start as their peers arrive
    const unknown = hashes.filter((h) => !round.cached.has(h));
    if (unknown.length) {
      // these may need a herd, which bids through the daemon: load what claims need now, not when
      // the window is running (a batch the LAN holds whole never loads it)
      if (daemon && this.#o.herd !== false) this.#claimsReady ??= this.#controlClient().then((c) => c.prepareClaims()).catch(() => {});
      // and may go to their mirror: its pool loads meanwhile
      const rest = new Set(unknown);
      if (this.#o.useCdn !== false && jobs.some((j) => j.entry.urls.length && rest.has(j.sha256))) void this.#cdnPool().catch(() => {});
      const finders = await this.#finderList(round.alone);
      const opts = {
        timeoutMs: this.#o.timeoutMs ?? DEFAULT_DISCOVERY_MS,
        excludeInstances: daemon ? [daemon.instance] : undefined,
        signal: this.#signal,
        onPeer: (h: string, p: Peer) => {
          if (usable(p)) round.queues.get(h)?.push(p);
        },
      };
      const running = Promise.all(finders.map((f) => f(unknown, opts).catch((err) => {
        if (!this.#signal.aborted) round.finderError ??= err;
      }))).finally(() => {
        for (const h of unknown) round.queues.get(h)!.end();
      });
      this.#rounds.add(running);
      void running.finally(() => this.#rounds.delete(running));
    }
    return round;
  }

  #emit(job: Job, ev: FetchProgress): void {
    try {
      this.#o.onProgress?.(ev, job.entry);
    } catch {
      /* a progress display never breaks a download */
    }
  }

  async #fetch(job: Job, round: Round): Promise<FetchResult> {
    const { sha256, name, out } = job;
    const o = this.#o;
    const emit = (ev: FetchProgress) => this.#emit(job, ev);
    const daemon = await this.#localDaemon();
    const local = daemon && daemonFor(daemon, sha256);
    const urls = o.useCdn === false ? [] : job.entry.urls;
    const peers = round.queues.get(sha256);
    let herd: Herd | undefined;
    let tmpPath: string | undefined;
    /** bytes of this file counted in #kept */
    let held = 0;
    try {
      if (o.herd !== false && o.peers !== false && !local?.item && !round.cached.has(sha256)) herd = await this.#herd(job, daemon, urls.length > 0, round.alone);
      herd?.start();
      const skipped: FetchResult['skipped'] = [];
      let mismatches = 0;
      let tried = 0;
      const triedUrls = new Set<string>();
      const key = (p: Peer) => hostKey(peerUrl(p.address, p.port, name, sha256));
      const spread = {
        load: (p: Peer) => this.#peerSlots.load(key(p)) + (this.#picked.get(key(p)) ?? 0),
        took: (p: Peer) => {
          mine.push(key(p));
          this.#picked.set(key(p), (this.#picked.get(key(p)) ?? 0) + 1);
        },
      };
      /** picks of this file not yet turned into a slot request */
      const mine: string[] = [];
      for await (const src of orderedSources({ sha256, name, local, peers, spread, cdn: urls, herd, tried: triedUrls })) {
        if (this.#signal.aborted) throw new PassimError('fetch aborted');
        tried++;
        triedUrls.add(src.url);
        emit({ type: 'try', source: src.kind, url: src.url, peer: src.peer });
        const isCdn = src.kind === 'cdn';
        if (isCdn) herd?.progress();
        try {
          const slots = isCdn ? this.#cdnSlots : this.#peerSlots;
          const dispatcher = isCdn ? await this.#cdnPool() : 'peer';
          let flushing = false;
          const running = slots.run(hostKey(src.url), (release) => verifiedDownload({
            url: src.url,
            dispatcher,
            peerConnections: this.#peerConns,
            expectedSha256: sha256,
            expectedSize: src.expectedSize,
            dir: out.dir,
            name: out.final ? pathBasename(out.final) : name,
            limits: isCdn ? this.#cdnLimits : this.#peerLimits,
            redirects: isCdn ? 'no-downgrade' : 'same-origin',
            requireContentLength: !isCdn,
            fsync: out.final !== undefined,
            keepUpTo: o.publish !== false && src.kind !== 'local' ? KEEP_MAX : undefined,
            // the host's part is done with the last byte (a passim peer frees its upload slot when
            // its last write completes, before we can read it): the next file may start while this
            // one is written and fsynced — a few at a time (FLUSHING_MAX), so downloads never run
            // far ahead of a slow disk
            onReceived: (n) => {
              if (n >= WORKER_MIN_SIZE || this.#flushing >= FLUSHING_MAX) return;
              flushing = true;
              this.#flushing++;
              release();
            },
            signal: this.#signal,
            onProgress: (received, total) => {
              if (isCdn) herd?.progress();
              emit({ type: 'bytes', source: src.kind, received, total });
            },
          }), this.#signal);
          // the slot is taken (or waited for) now: the pick no longer needs counting apart
          const at = mine.indexOf(hostKey(src.url));
          if (at >= 0) this.#unpick(mine.splice(at, 1)[0]!);
          const r = await running.catch((err: unknown) => {
            throw err instanceof SourceError ? err : new SourceError('aborted', 'aborted', { cause: err });
          }).finally(() => {
            if (flushing) this.#flushing--;
          });
          tmpPath = r.tmpPath;
          let bytes = r.bytes;
          if (bytes && this.#kept + bytes.length > KEEP_BUDGET) bytes = undefined; // read back from disk instead
          if (bytes) this.#kept += bytes.length;
          held = bytes?.length ?? 0;
          herd?.verified(); // publishing may take a while: our claim must not look stalled
          emit({ type: 'verified', source: src.kind, size: r.size });
          let path: string;
          if (out.final) {
            await rename(r.tmpPath, out.final);
            tmpPath = undefined;
            path = out.final;
          } else {
            const stdout = o.stdout ?? process.stdout;
            await pipeline(createReadStream(r.tmpPath, { highWaterMark: 1024 * 1024 }), stdout, { end: o.stdout !== undefined });
            path = '-';
          }
          const ms = Math.round(performance.now() - job.t0); // the fetch, not the publish after it
          const published = o.publish !== false && src.kind !== 'local'
            ? await this.#publish(bytes ?? out.final ?? r.tmpPath, r.size, name, sha256, emit)
            : false;
          return { path, sha256, size: r.size, source: src.kind, peer: src.kind === 'cdn' ? undefined : src.peer, url: r.url, ms, published, skipped, waitedMs: herd?.waitedMs ?? 0 };
        } catch (err) {
          if (!(err instanceof SourceError)) throw err;
          if (err.kind === 'fatal') throw new PassimError(err.message, { cause: err });
          if (err.kind === 'aborted' && this.#signal.aborted) throw new PassimError('fetch aborted');
          if (err.kind === 'mismatch') mismatches++;
          skipped.push({ source: src.kind, url: src.url, reason: err.message });
          emit({ type: 'skip', source: src.kind, url: src.url, peer: src.peer, reason: err.message, kind: err.kind });
        }
      }
      // every source failed
      const what = `${name} (sha256 ${sha256.slice(0, 12)}…)`;
      const tries = skipped.map((s) => `${describe(s)}: ${s.reason}`);
      if (o.peers !== false && peers && peers.found === 0) tries.push('no peer found');
      if (o.peers !== false && round.finderError) tries.push(`peer discovery failed: ${errText(round.finderError)}`);
      if (tried === 0 && o.peers === false && urls.length === 0) tries.push('no sources to try (no peers, no CDN URL)');
      if (mismatches > 0) throw new ChecksumMismatchError(sha256, '', `no source sent the right bytes for ${what} (${mismatches} sent wrong bytes): ${tries.join('; ')}`);
      throw new NotFoundError(`could not fetch ${what}: ${tries.join('; ') || 'nothing tried'}`);
    } finally {
      this.#kept -= held;
      // after the publish above: waiters see the item announced before our claim goes
      await herd?.close();
      if (tmpPath) await unlink(tmpPath).catch(() => {});
    }
  }

  #unpick(key: string): void {
    const n = (this.#picked.get(key) ?? 0) - 1;
    if (n > 0) this.#picked.set(key, n);
    else this.#picked.delete(key);
  }

  /** A second entry for a hash already being fetched: a copy of the first's file. */
  async #follow(job: Job, leader: Job): Promise<FetchResult> {
    const r = await leader.promise;
    const final = job.out.final!;
    const tmp = `${final}.passim-copy-${process.pid}.tmp`;
    try {
      await copyFile(r.path, tmp);
      await rename(tmp, final);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw new PassimError(`cannot copy ${r.path} to ${final}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    return { ...r, path: final, ms: Math.round(performance.now() - job.t0), published: false, skipped: [] };
  }

  async #herd(job: Job, daemon: DaemonView | undefined, hasCdn: boolean, alone: boolean): Promise<Herd | undefined> {
    const o = this.#o;
    const injected = o.browse !== undefined || o.finders !== undefined;
    // the batch's mDNS session, opened only when the herd first browses (alone, it may never)
    const claimBrowse = o.claimBrowse ?? (injected ? undefined : this.#sessionBrowse);
    if (!claimBrowse) return undefined;
    const { sha256, name } = job;
    await this.#claimsReady;
    const socketPath = this.#socketPath;
    const localTimeout = o.localTimeoutMs;
    const channel = async (): Promise<ClaimChannel> => {
      // claims share the batch's control connection: no destroy/close here (the batch does that)
      const c = await this.#controlClient();
      return { claim: (...a) => c.claim(...a), renewClaim: (...a) => c.renewClaim(...a), releaseClaim: (id) => c.releaseClaim(id) };
    };
    return new Herd({
      sha256,
      name,
      browse: claimBrowse,
      daemon: daemon?.instance ? { instance: daemon.instance, channel } : undefined,
      canBid: o.publish !== false && hasCdn,
      windowMs: o.timeoutMs ?? DEFAULT_DISCOVERY_MS,
      waitMs: o.herdWaitMs ?? 60_000,
      pollMs: o.herdPollMs,
      alone,
      localSource: daemon
        ? async () => {
          const d = await probeLocalDaemon(socketPath, sha256, localTimeout);
          return d && localSource(d, sha256);
        }
        : undefined,
      signal: this.#signal,
      onEvent: (event) => this.#emit(job, { type: 'herd', event }),
    });
  }

  /** Sends a verified file (its path or its bytes) to the local daemon; no daemon or already held is not an error. */
  async #publish(source: string | Buffer, size: number, name: string, sha256: string, emit: (ev: FetchProgress) => void): Promise<boolean> {
    if (this.#daemonGone) return false;
    const o = this.#o;
    return this.#publishSlots.run('daemon', async () => {
      if (this.#daemonGone) return false;
      try {
        const c = await this.#controlClient();
        const ms = (o.publishTimeoutMs ?? 60_000) + size / (10 * 1024);
        await withTimeout(
          c.publish(source, { name, sha256, maxAge: o.maxAge, shareLimit: o.shareLimit, cmdline: o.cmdline }),
          ms,
          `no answer from the daemon in ${Math.round(ms / 1000)} s`,
        );
        emit({ type: 'published' });
        return true;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'PASSIM_DAEMON_UNREACHABLE') {
          this.#daemonGone = true;
          return false;
        }
        if (code === 'PASSIM_ITEM_EXISTS') return true;
        emit({ type: 'publish-failed', reason: errText(err) });
        return false;
      }
    });
  }

  /** Waits for every queued file and publish, then stops discovery and drops every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#gatherTimer) {
      clearTimeout(this.#gatherTimer);
      this.#startRound();
    }
    while (this.#jobs.size) await Promise.allSettled([...this.#jobs]);
    this.#ac.abort();
    while (this.#rounds.size) await Promise.allSettled([...this.#rounds]);
    const session = await this.#session?.catch(() => undefined);
    await session?.close();
    await this.#control?.destroy().catch(() => {});
    this.#peerConns?.close();
    await (await this.#cdnAgent?.catch(() => undefined))?.destroy().catch(() => {});
  }
}

function describe(s: { source: Source['kind']; url: string }): string {
  if (s.source === 'cdn') return `cdn ${s.url}`;
  if (s.source === 'local') return 'local daemon';
  try {
    return `peer ${new URL(s.url).host}`;
  } catch {
    return 'peer';
  }
}

function errText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** A single-hash Browse as a BrowseMany: one browse per hash, all at once. */
export function finderFromBrowse(browse: Browse): BrowseMany {
  return async (hashes, opts) => {
    let failure: unknown;
    await Promise.all(hashes.map(async (h) => {
      try {
        for await (const p of browse(h, { timeoutMs: opts.timeoutMs, excludeInstances: opts.excludeInstances, signal: opts.signal })) {
          opts.onPeer(h, p, 'mdns');
        }
      } catch (err) {
        failure ??= err;
      }
    }));
    if (failure) throw failure;
  };
}
