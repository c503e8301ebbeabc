/**
 * The composition root: builds the store, the HTTPS server, the mDNS responder and the control
 * socket from the settings, wires store events to the responder, and tears it all down in order.
 */
import { hostname } from 'node:os';
import { statePaths } from '../core/paths.js';
import type { Logger } from '../core/logger.js';
import { version } from '../core/version.js';
import type { DaemonSettings } from './options.js';
import { lockStateDir, type StateLock } from './state-lock.js';
import type { Store } from '../store/store.js';
import { Responder } from '../discovery/responder.js';
import { PeerCache } from '../discovery/peer-cache.js';
import { lookupPeer, mdnsFinder, LOOKUP_WINDOW_MS, type PeerFinder } from '../discovery/peer-lookup.js';
import { ClaimTable } from '../control/claims.js';
import type { PeersReply, StatusReply } from '../control/api.js';
import type { ItemInfo } from '../store/types.js';
import type { DaemonConfig } from '../core/config.js';
import type { WideArea } from './wide-area.js';
import { collectGarbage } from './v8-flags.js';
import type { Peer, PeerVia } from '../discovery/types.js';
import { WIDE_AREA_TTL } from '../discovery/wide-area/records.js';

type Closable = { close(): Promise<void> };

export interface DaemonHooks {
  /** force the mDNS instance name (conflict tests) */
  instanceName?: string;
  /** false: do not offer org.freedesktop.Passim on the system bus (tests) */
  dbus?: boolean;
  /** SIGHUP: how to re-read the configuration (serve: passim.conf + its command-line flags, as at
   *  start). Throws on a bad file. */
  loadConfig: () => Promise<{ config: DaemonConfig; warnings: string[] }>;
}

/** passim.conf keys applied by reload() without a restart, and the ones that need one. */
const LIVE_KEYS = [['cooldown', 'Cooldown'], ['carbonCost', 'CarbonCost'], ['maxItemSize', 'MaxItemSize'], ['metered', 'Metered']] as const;
const RESTART_KEYS = [['port', 'Port'], ['bind', 'Bind'], ['interfaces', 'Interfaces'], ['ipv6', 'IPv6'], ['path', 'Path'],
  ['localhostOnly', 'LocalhostOnly'], ['maxUploads', 'MaxUploads'], ['maxUploadsPerPeer', 'MaxUploadsPerPeer']] as const;
/** passim.conf keys of the wide-area part (Domain=): a change restarts that part. */
const WIDE_AREA_KEYS = [['domain', 'Domain'], ['dnsServer', 'DnsServer'], ['dnsKeyFile', 'DnsKeyFile']] as const;
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export class Daemon {
  private lock?: StateLock;
  private store?: Store;
  private http?: Closable & { port: number; setCooldown(seconds: number): void };
  private control?: Closable;
  private dbus?: Closable & { notify(): void };
  private responder?: Responder;
  /** the responder's start (probing, then claiming), begun before the rest of the daemon is up */
  private probing?: Promise<void>;
  /** wide-area DNS-SD (Domain=): registration fed like the responder, and zone lookups */
  private wideArea?: WideArea;
  /** local fetches' in-progress claims, advertised for herd suppression (lib/fetch/herd.ts) */
  private readonly claims: ClaimTable;
  /** peers heard on mDNS (and fed by other finders): answers POST /peers and the loopback lookup */
  readonly peerCache: PeerCache;
  /**
   * where the loopback lookup looks when the cache has no peer, all at once (peer-lookup.ts):
   * mDNS; a second source of peers (a wide-area DNS zone) adds its finder here and feeds the cache
   */
  readonly peerFinders: PeerFinder[];
  private metered: boolean;
  private stopping?: Promise<void>;
  private reloading: Promise<void> = Promise.resolve();

  constructor(private readonly settings: DaemonSettings, private readonly log: Logger, private readonly hooks: DaemonHooks) {
    this.metered = settings.config.metered;
    this.claims = new ClaimTable({
      advertise: (hash, kind) => this.responder?.addClaim(hash, kind),
      withdraw: (hash, kind) => this.responder?.removeClaim(hash, kind),
      enabled: () => this.advertising && this.responder?.state === 'running',
      logger: log,
    });
    this.peerCache = new PeerCache({
      isOwnInstance: (instance) => instance.toLowerCase() === this.instanceName.toLowerCase(),
      ipv6: settings.config.ipv6,
      logger: log,
    });
    this.peerFinders = [mdnsFinder(() => ({
      interfaces: this.settings.config.interfaces.length ? this.settings.config.interfaces : undefined,
      ipv6: this.settings.config.ipv6,
      excludeInstances: this.instanceName ? [this.instanceName] : [],
      // the responder's sockets on 5353 already feed multicast answers into the cache (and the
      // lookup waits on the cache too): no second listener per lookup while they are open
      listenMulticast: !this.responder || this.responder.state === 'idle' || this.responder.state === 'stopped',
    }), this.peerCache), (sha256, o) => this.zoneFinder(sha256, o)];
  }

  /**
   * The loopback lookup's second finder: the wide-area zone (Domain=), when there is one. What it
   * finds goes into the peer cache with the zone's TTL, so the next lookup of the hash is answered
   * at once.
   */
  private async zoneFinder(sha256: string, o: { signal: AbortSignal; onPeer: (peer: Peer, via: PeerVia) => void }): Promise<void> {
    const wa = this.wideArea;
    if (!wa) return;
    const own = [this.instanceName, wa.registrar?.instanceName].filter((n): n is string => !!n);
    await wa.find([sha256], {
      signal: o.signal,
      timeoutMs: LOOKUP_WINDOW_MS,
      excludeInstances: own,
      onPeer: (h, peer) => {
        this.peerCache.put(h, peer, WIDE_AREA_TTL, 'dns');
        o.onPeer(peer, 'dns');
      },
    });
  }

  get port(): number {
    return this.http?.port ?? this.settings.config.port;
  }

  get instanceName(): string {
    return this.responder?.instanceName ?? '';
  }

  /** Advertise only when peers can reach us and the network is not metered. */
  private get advertising(): boolean {
    return !this.settings.config.localhostOnly && !this.metered;
  }

  status(): StatusReply {
    const savings = this.store?.savings() ?? { downloadSaving: 0, carbonSaving: 0 };
    return {
      version: version(),
      // loading: starting, or the static dirs' first scan is still hashing (items come as it goes)
      status: this.metered ? 'disabled-metered' : this.store && !this.store.staticLoading ? 'running' : 'loading',
      port: this.port,
      name: this.instanceName,
      uri: `https://localhost:${this.port}/`,
      downloadSaving: savings.downloadSaving,
      carbonSaving: savings.carbonSaving,
      items: this.store?.size ?? 0,
      peerCache: (({ hashes, instances }) => ({ hashes, peers: instances }))(this.peerCache.stats()),
      wideArea: this.wideArea?.status(),
      hashing: this.store?.staticPending ?? 0,
    };
  }

  async start(): Promise<void> {
    const { paths, config } = this.settings;
    const sp = statePaths(paths.stateDir);
    try {
      this.lock = await lockStateDir(sp.lockFile);
      // mDNS first: probing is ~1 s of waiting (RFC 6762 §8.1) and the names depend on nothing
      // below, so it overlaps loading the rest of the daemon, the store and the static catalog and
      // starting HTTPS. The names are claimed (announced, answered) only once HTTPS listens. With
      // port 0 (tests) the port is known only then: the responder is made after it.
      let httpsUp!: { resolve(): void; reject(err: unknown): void };
      const announceAfter = new Promise<void>((resolve, reject) => { httpsUp = { resolve, reject }; });
      announceAfter.catch(() => undefined); // the responder may not be waiting on it
      if (config.port) this.makeResponder(config.port);
      if (this.advertising && this.responder) {
        this.probing = this.responder.start({ announceAfter });
        this.probing.catch(() => undefined); // awaited in startAdvertising; a failure meanwhile must not be unhandled
      }
      // loaded while the first probes go out
      const [{ Store }, { startHttpsServer }, { startControlServer }] = await Promise.all([
        import('../store/store.js'), import('../http/server.js'), import('../control/server.js'),
      ]);
      const store = new Store({
        stateDir: paths.stateDir,
        dataDir: config.path,
        configDir: paths.configDir,
        maxItemSize: config.maxItemSize,
        carbonCost: config.carbonCost,
        logger: this.log,
      });
      // the static dirs are hashed after this, while serving: their items appear as each hash is known
      await store.load({ staticInBackground: true });
      this.store = store;

      try {
        this.http = await startHttpsServer({
          store,
          config,
          stateDir: paths.stateDir,
          logger: this.log,
          findPeer: (hash) => this.findPeer(hash),
          indexInfo: () => ({ status: this.status().status, name: this.instanceName }),
        });
      } catch (err) {
        httpsUp.reject(err);
        throw err;
      }
      httpsUp.resolve();
      const responder = this.responder ?? this.makeResponder(this.http.port);
      // wired before anything else awaits: static items found meanwhile go straight to the responder
      // (into its table while it probes; announced, within its rate, once it runs)
      // (the wide-area registrar, once started below, follows the same events)
      store.on('added', (item: ItemInfo) => {
        if (this.advertising && !item.disabled) { this.responder?.add(item.hash); this.wideArea?.registrar?.add(item.hash); }
      });
      store.on('removed', (item: ItemInfo) => { this.responder?.remove(item.hash); this.wideArea?.registrar?.remove(item.hash); });
      // one item at a time: a share (the usual 'changed') must not rebuild the advertised set
      store.on('changed', (item: ItemInfo) => {
        if (!this.advertising) return;
        if (item.disabled) { this.responder?.remove(item.hash); this.wideArea?.registrar?.remove(item.hash); }
        else { this.responder?.add(item.hash); this.wideArea?.registrar?.add(item.hash); }
      });
      if (this.advertising) responder.setHashes(store.advertisedHashes());

      this.control = await startControlServer({
        socketPath: paths.socketPath,
        store,
        status: () => this.status(),
        setMetered: (on: boolean) => this.setMetered(on),
        claims: this.claims,
        peers: (hashes) => this.knownPeers(hashes),
        logger: this.log,
      });

      // listening (HTTPS, control socket): now the static dirs may take the CPU
      // once it is over, its transient objects go (promoted by the small young generation, they
      // would stay in RSS until V8's next full collection)
      store.startStaticScan(() => { if (store.size) collectGarbage(); });
      // timers and watchers now, while that scan runs: it syncs the watchers as it ends (started
      // after it, they would ask for a second full scan, whose garbage no collection follows)
      store.startTimers();

      if (this.hooks.dbus !== false) {
        // loaded only when wanted: dbus-next and its native fd helper cost memory and start time
        const { startDbusService } = await import('../dbus/service.js');
        this.dbus = await startDbusService({ store, status: () => this.status(), logger: this.log });
      }

      if (this.advertising) await this.startAdvertising();
      await this.startWideArea(config);
      this.log.info(`passim ${version()} serving ${store.size} items on https port ${this.http.port}` +
        `${this.advertising ? `, advertised as ${responder.instanceName}` : ' (not advertising)'}; control socket ${paths.socketPath}`);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** The mDNS responder for `port` (idle until started): it feeds the peer cache and sends its queries. */
  private makeResponder(port: number): Responder {
    const { config } = this.settings;
    const responder = new Responder({
      port,
      interfaces: config.interfaces.length ? config.interfaces : undefined,
      ipv6: config.ipv6,
      instanceName: this.hooks.instanceName,
      hostName: hostname(),
      logger: this.log,
      onResponse: (msg, from) => this.peerCache.ingest(msg, from),
    });
    this.responder = responder;
    this.peerCache.start((q) => responder.query(q.questions, q.link));
    return responder;
  }

  /** Probes (unless start() began it already) and, once the names are claimed, advertises every item. */
  private async startAdvertising(): Promise<void> {
    if (!this.responder || !this.store) return;
    await (this.probing ?? this.responder.start());
    this.responder.setHashes(this.store.advertisedHashes());
  }

  /** Builds the wide-area part from the config (nothing when Domain is empty). Throws ConfigError. */
  private async startWideArea(config: DaemonConfig): Promise<void> {
    if (!this.http || !this.store) return;
    // loaded only with a Domain: its DNS update and zone lookup code is not needed otherwise
    const wa = !config.domain ? undefined : await (await import('./wide-area.js')).WideArea.create({
      config, configPath: this.settings.configPath, stateDir: this.settings.paths.stateDir,
      instance: this.responder?.instanceName || `Passim-${this.http.port.toString(16).toUpperCase().padStart(4, '0')}`,
      port: this.http.port, logger: this.log,
    });
    this.wideArea = wa;
    if (!wa) return;
    await wa.start(this.advertising ? this.store.advertisedHashes() : []);
    this.log.info(`wide area: ${wa.domain}${wa.registrar ? `, registering as ${wa.registrar.instanceName}` : ' (lookups only: no DnsKeyFile)'}`);
  }

  async setMetered(on: boolean): Promise<void> {
    if (on === this.metered) return;
    this.metered = on;
    this.dbus?.notify();
    if (!this.responder) return;
    if (on) {
      this.log.info('metered network: no longer advertising (still serving)');
      this.claims.clear();
      this.responder.setHashes([]);
      this.wideArea?.registrar?.setHashes([]);
    } else if (this.advertising) {
      this.log.info('network no longer metered: advertising again');
      if (!this.responder.instanceName) await this.startAdvertising();
      else this.responder.setHashes(this.store?.advertisedHashes() ?? []);
      this.wideArea?.registrar?.setHashes(this.store?.advertisedHashes() ?? []);
    }
  }

  /**
   * SIGHUP: re-read the configuration and apply what can change live (Cooldown, CarbonCost,
   * MaxItemSize, Metered; static dirs are rescanned). A bad file is logged and the running
   * configuration kept; keys that need a restart are logged as warnings and not applied.
   * Concurrent calls run one after the other.
   */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.reloadNow());
    return this.reloading;
  }

  private async reloadNow(): Promise<void> {
    if (this.stopping || !this.store) return;
    const cur = this.settings.config;
    const { configPath } = this.settings;
    let next: DaemonConfig;
    try {
      const loaded = await this.hooks.loadConfig();
      for (const w of loaded.warnings) this.log.warn(w);
      next = loaded.config;
    } catch (err) {
      this.log.error(`reload: ${(err as Error).message}; keeping the running configuration`);
      return;
    }
    const changed: string[] = [];
    for (const [field, key] of LIVE_KEYS) {
      if (!same(cur[field], next[field])) changed.push(`${key}=${String(next[field])}`);
    }
    for (const [field, key] of RESTART_KEYS) {
      if (!same(cur[field], next[field])) {
        this.log.warn(`reload: ${key} changed (${JSON.stringify(cur[field] ?? null)} → ${JSON.stringify(next[field] ?? null)}); restart passim to apply it`);
      }
    }
    if (cur.cooldown !== next.cooldown) this.http?.setCooldown(next.cooldown);
    this.store.setLimits({ maxItemSize: next.maxItemSize, carbonCost: next.carbonCost });
    const meteredChanged = cur.metered !== next.metered;
    for (const [field] of LIVE_KEYS) (cur as unknown as Record<string, unknown>)[field] = next[field];
    // a metered state set over the control socket stays unless passim.conf itself changed Metered
    if (meteredChanged) await this.setMetered(next.metered);
    // a changed key restarts the wide-area part; so does any reload while it is off for an error
    if (WIDE_AREA_KEYS.some(([field]) => !same(cur[field], next[field])) || (!this.wideArea && next.domain)) {
      try {
        const trial = { ...cur, domain: next.domain, dnsServer: next.dnsServer, dnsKeyFile: next.dnsKeyFile };
        const old = this.wideArea;
        this.wideArea = undefined;
        await old?.stop();
        for (const [field] of WIDE_AREA_KEYS) (cur as unknown as Record<string, unknown>)[field] = trial[field];
        await this.startWideArea(cur);
        for (const [field, key] of WIDE_AREA_KEYS) changed.push(`${key}=${String(next[field] ?? '')}`);
      } catch (err) {
        this.log.error(`reload: wide area: ${(err as Error).message}; wide area off until fixed`);
      }
    } else if (this.wideArea && cur.dnsKeyFile) {
      // same settings: the key file may have been rewritten in place (a rotated secret)
      try {
        await this.wideArea.reloadKey(cur.dnsKeyFile);
      } catch (err) {
        this.log.error(`reload: wide area: ${(err as Error).message}; keeping the key in use`);
      }
    }
    this.dbus?.notify(); // CarbonCost changes CarbonSaving even when Metered did not change
    try {
      await this.store.rescanStatic();
    } catch (err) {
      this.log.warn(`reload: static dirs: ${(err as Error).message}`);
    }
    this.log.info(`reloaded ${configPath}: ${changed.length ? `applied ${changed.join(', ')}` : 'no live setting changed'}; static dirs rescanned`);
  }

  /**
   * POST /peers: live peers the cache knows for each hash (only hashes that have one), and whether
   * we are alone on the LAN (not with a wide-area zone: peers may be found there).
   */
  private knownPeers(hashes: string[]): PeersReply {
    const out: PeersReply['peers'] = {};
    for (const h of hashes) {
      const peers = this.peerCache.lookup(h);
      if (peers.length) out[h] = peers.map(({ address, port, instance, host }) => ({ address, port, instance, host }));
    }
    return { peers: out, alone: this.alone() };
  }

  /** Nobody else on our links (the peer cache has listened and heard no one), and no wide-area zone. */
  private alone(): boolean {
    return !this.wideArea && this.peerCache.alone();
  }

  /** The loopback lookup (302 or 404): the cache first, else the finders for ≤ LOOKUP_WINDOW_MS. */
  private async findPeer(hash: string): Promise<{ address: string; port: number } | undefined> {
    // alone on the LAN: nobody to ask, the 404 comes at once
    const peer = await lookupPeer(hash, { cache: this.peerCache, finders: this.alone() ? [] : this.peerFinders });
    return peer && { address: peer.address, port: peer.port };
  }

  /** Goodbyes first (peers stop asking), then stop serving, then flush the store. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const steps: Array<[string, (() => Promise<void>) | undefined]> = [
        ['peer cache', async () => this.peerCache.stop()],
        ['mDNS responder', this.responder && (() => this.responder!.stop())],
        ['wide-area registration', this.wideArea && (() => this.wideArea!.stop())],
        ['control socket', this.control && (() => this.control!.close())],
        ['D-Bus service', this.dbus && (() => this.dbus!.close())],
        ['https server', this.http && (() => this.http!.close())],
        ['store', this.store && (() => this.store!.close())],
        ['state lock', this.lock && (() => this.lock!.release())],
      ];
      for (const [what, step] of steps) {
        if (!step) continue;
        try {
          await step();
        } catch (err) {
          this.log.warn(`stopping ${what}: ${(err as Error).message}`);
        }
      }
    })();
    return this.stopping;
  }
}
