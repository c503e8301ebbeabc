/**
 * Registers this daemon in a DNS zone with RFC 2136 updates signed with TSIG: the same service,
 * instance and per-item subtype records the mDNS responder advertises, under `<domain>` instead
 * of `.local`. The daemon feeds it from the same store events as the responder (add / remove /
 * setHashes); changes made in the same tick go out together, many records per message, over TCP
 * when a message is larger than a UDP datagram should be.
 *
 * - The first message claims the instance name with a prerequisite (no SRV there yet); a name
 *   taken by another host gets the next alternative name, as mDNS does.
 * - The instance's TXT carries the time of its last refresh (every `refreshMs`), so lookups can
 *   skip a host that stopped refreshing; every item PTR is re-sent every `itemRefreshMs`. Each
 *   message carries the RFC 9664 update lease (servers that ignore it still apply the update).
 * - Removal deletes only our own PTR from shared names (class NONE). stop() removes everything.
 * - A previous run's instance (kept in `stateFile`) is removed at start, and its PTRs for the
 *   items still held are replaced by ours, so a crash does not leave dangling records behind.
 * - A wrong key, a refused update or an unreachable server is one log line, then retries with
 *   backoff (1 s doubling to 5 min); nothing here ever throws into the daemon.
 */
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import type { Logger } from '../../core/logger.js';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { subtypeKey, nextInstanceName } from '../names.js';
import { sign, verify, tsigErrorName, type TsigKey } from './tsig.js';
import { encodeUpdate, opLength, readHeader, rcodeName, type Prerequisite, type UpdateOp } from './update-message.js';
import { exchange, fmt, TcpSession, MAX_UDP, type ServerAddress, type TrafficCounter } from './transport.js';
import {
  instanceName, instanceOps, instanceRemovalOps, itemAddOp, itemDeleteOp, normaliseDomain, WIDE_AREA_TTL,
} from './records.js';

export interface RegistrarOptions {
  domain: string;
  /** where updates go; default the primary named in the zone's SOA (MNAME), port 53 */
  server?: ServerAddress;
  key: TsigKey;
  /** the mDNS instance name, e.g. "Passim-1A2B" */
  instance: string;
  /** host label in the zone (records.ts hostLabelFor) */
  hostLabel: string;
  /** HTTPS port for SRV */
  port: number;
  /** routable addresses for A/AAAA, asked again at each refresh */
  addresses: () => string[];
  /** remembers this run's instance so the next run removes it (crash leftovers) */
  stateFile?: string;
  logger: Logger;
  ttl?: number;
  /** instance records (TXT time, addresses) re-sent this often; default 60 s */
  refreshMs?: number;
  /** every item PTR re-sent this often (update lease renewal); default 1 h */
  itemRefreshMs?: number;
  /** per message; default 2000 ms */
  timeoutMs?: number;
  /** largest update message; default 60,000 bytes (TCP) */
  maxMessageBytes?: number;
}

/** 'lookup-only': a domain without a key file (the daemon looks up, never registers) */
export type RegistrarPhase = 'starting' | 'registered' | 'failing' | 'stopped' | 'lookup-only';

export interface WideAreaStatus {
  domain: string;
  server: string;
  instance: string;
  host: string;
  state: RegistrarPhase;
  /** ISO time of the last update the server acknowledged */
  lastUpdate?: string;
  lastError?: string;
  /** records this host holds in the zone (items + instance records) */
  records: number;
  items: number;
  /** item changes not yet acknowledged */
  pending: number;
  bytesSent: number;
  bytesReceived: number;
}

class UpdateFailed extends Error {
  constructor(message: string, readonly rcode?: number) { super(message); }
}

const RCODE_YXRRSET = 7;
const INSTANCE_RECORDS = 4; // service PTR, SRV, TXT, host address(es) counted as one set + each address

export class Registrar extends EventEmitter<{ acked: [at: number, ops: number]; failed: [Error] }> {
  readonly domain: string;
  private readonly ttl: number;
  private readonly refreshMs: number;
  private readonly itemRefreshMs: number;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private instance: string;
  private readonly desired = new Set<string>();
  private readonly registered = new Set<string>();
  /** items whose PTR must be sent again although registered (lease renewal) */
  private readonly resend = new Set<string>();
  private instanceDone = false;
  private claimed = false;
  private instanceDue = true;
  private previous?: { instance: string; hostLabel: string };
  private previousCleaned = false;
  private server?: ServerAddress;
  private phase: RegistrarPhase = 'starting';
  private lastUpdate?: number;
  private lastError?: string;
  private readonly traffic: TrafficCounter = { sent: 0, received: 0 };
  private running?: Promise<void>;
  private scheduled?: NodeJS.Immediate;
  private retryTimer?: NodeJS.Timeout;
  private refreshTimer?: NodeJS.Timeout;
  private itemTimer?: NodeJS.Timeout;
  private failures = 0;
  private stopped = false;
  private hostLabel: string;
  private addressesNow: string[] = [];
  private idleWaiters: Array<() => void> = [];
  private key: TsigKey;

  constructor(private readonly opts: RegistrarOptions) {
    super();
    this.domain = normaliseDomain(opts.domain);
    this.instance = opts.instance;
    this.hostLabel = opts.hostLabel;
    this.ttl = Math.min(opts.ttl ?? WIDE_AREA_TTL, WIDE_AREA_TTL);
    this.refreshMs = opts.refreshMs ?? 60_000;
    this.itemRefreshMs = opts.itemRefreshMs ?? 3_600_000;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.maxBytes = opts.maxMessageBytes ?? 60_000;
    this.server = opts.server;
    this.key = opts.key;
  }

  /**
   * A new secret for the next messages (DnsKeyFile rewritten in place, then SIGHUP); a registration
   * that was failing for the old key is retried at once.
   */
  setKey(key: TsigKey): void {
    const same = key.name === this.key.name && key.secret.equals(this.key.secret);
    this.key = key;
    if (same || this.stopped) return;
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
    this.instanceDue = true;
    this.kick();
  }

  get instanceName(): string {
    return this.instance;
  }

  /** Reads the previous run's instance and starts registering (in the background). */
  async start(): Promise<void> {
    if (this.opts.stateFile) {
      try {
        const prev = JSON.parse(await readFile(this.opts.stateFile, 'utf8')) as { domain?: string; instance?: string; hostLabel?: string };
        if (prev.domain === this.domain && typeof prev.instance === 'string' && typeof prev.hostLabel === 'string' &&
            (prev.instance !== this.instance || prev.hostLabel !== this.hostLabel)) {
          this.previous = { instance: prev.instance, hostLabel: prev.hostLabel };
        }
      } catch {
        // no previous run, or an unreadable file: nothing to clean
      }
    }
    this.refreshTimer = setInterval(() => { this.instanceDue = true; this.kick(); }, this.refreshMs).unref();
    this.itemTimer = setInterval(() => { for (const k of this.registered) this.resend.add(k); this.kick(); }, this.itemRefreshMs).unref();
    this.kick();
  }

  add(sha256: string): void {
    this.desired.add(subtypeKey(sha256));
    this.kick();
  }

  remove(sha256: string): void {
    this.desired.delete(subtypeKey(sha256));
    this.kick();
  }

  setHashes(hashes: Iterable<string>): void {
    this.desired.clear();
    for (const h of hashes) this.desired.add(subtypeKey(h));
    this.kick();
  }

  status(): WideAreaStatus {
    return {
      domain: this.domain,
      server: this.server ? fmt(this.server) : this.opts.server ? fmt(this.opts.server) : '(SOA primary, not resolved yet)',
      instance: this.instance,
      host: `${this.hostLabel}.${this.domain}`,
      state: this.phase,
      lastUpdate: this.lastUpdate ? new Date(this.lastUpdate).toISOString() : undefined,
      lastError: this.lastError,
      records: this.registered.size + (this.instanceDone ? INSTANCE_RECORDS - 1 + this.addressesNow.length : 0),
      items: this.registered.size,
      pending: this.pendingCount(),
      bytesSent: this.traffic.sent,
      bytesReceived: this.traffic.received,
    };
  }

  private pendingCount(): number {
    let n = this.resend.size;
    for (const k of this.desired) if (!this.registered.has(k)) n++;
    for (const k of this.registered) if (!this.desired.has(k)) n++;
    return n;
  }

  private hasWork(): boolean {
    return this.instanceDue || (this.previous !== undefined && !this.previousCleaned) || this.pendingCount() > 0;
  }

  /** Resolves once everything asked for so far is acknowledged (tests, bench). */
  whenIdle(): Promise<void> {
    if (!this.hasWork() && !this.running && !this.scheduled) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Runs the pump after the current tick (so a burst of changes is one batch), unless backing off. */
  private kick(): void {
    if (this.stopped || this.scheduled || this.retryTimer) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      if (this.running) return; // the running pump loops until nothing is left
      this.running = this.pump().finally(() => {
        this.running = undefined;
        if (!this.stopped && this.hasWork() && !this.retryTimer) this.kick();
        else if (!this.hasWork()) for (const w of this.idleWaiters.splice(0)) w();
      });
    });
  }

  private async pump(): Promise<void> {
    let tcp: TcpSession | undefined;
    try {
      const server = await this.resolveServer();
      tcp = new TcpSession(server, { timeoutMs: this.timeoutMs, traffic: this.traffic });
      while (!this.stopped && this.hasWork()) {
        if (this.previous && !this.previousCleaned) {
          await this.send(server, tcp, instanceRemovalOps(this.domain, this.previous.instance, this.previous.hostLabel));
          this.previousCleaned = true;
          // its item PTRs go with our first batch of adds (replaceOps), keep `previous` until then
        }
        if (this.instanceDue) {
          this.instanceDue = false;
          try {
            await this.sendInstance(server, tcp);
          } catch (err) {
            this.instanceDue = true;
            throw err;
          }
        }
        await this.sendItems(server, tcp);
      }
      if (this.failures > 0) this.opts.logger.info(`wide-area: updates to ${fmt(server)} work again`);
      this.failures = 0;
      this.lastError = undefined;
      if (!this.stopped) this.phase = 'registered';
    } catch (err) {
      this.onFailure(err as Error);
    } finally {
      tcp?.close();
    }
  }

  private onFailure(err: Error): void {
    const msg = err.message;
    if (msg !== this.lastError) this.opts.logger.warn(`wide-area: ${msg}; mDNS is unaffected; retrying with backoff`);
    this.lastError = msg;
    if (this.stopped) return;
    this.phase = 'failing';
    this.failures++;
    if (!this.opts.server) this.server = undefined; // the primary may have moved: ask the SOA again
    const delay = Math.min(300_000, 1000 * 2 ** Math.min(this.failures - 1, 9)) * (0.75 + Math.random() * 0.5);
    this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.kick(); }, delay).unref();
    this.emit('failed', err);
  }

  private async resolveServer(): Promise<ServerAddress> {
    if (this.server) return this.server;
    const r = new Resolver({ timeout: this.timeoutMs, tries: 2 });
    let soa;
    try {
      soa = await r.resolveSoa(this.domain);
    } catch (err) {
      throw new Error(`cannot find the primary server of ${this.domain} (SOA lookup: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); set DnsServer=`);
    }
    let addrs: string[] = [];
    try {
      addrs = await r.resolve4(soa.nsname);
    } catch {
      try { addrs = await r.resolve6(soa.nsname); } catch { /* below */ }
    }
    if (!addrs[0]) throw new Error(`the SOA of ${this.domain} names ${soa.nsname}, which has no address; set DnsServer=`);
    this.server = { address: addrs[0], port: 53 };
    return this.server;
  }

  private async sendInstance(server: ServerAddress, tcp: TcpSession): Promise<void> {
    this.addressesNow = this.opts.addresses();
    const ops = () => instanceOps({
      domain: this.domain, instance: this.instance, hostLabel: this.hostLabel, port: this.opts.port,
      addresses: this.addressesNow, refreshed: Math.floor(Date.now() / 1000),
    }, this.ttl);
    if (!this.claimed) {
      // claim the name: nobody else's SRV may be there; a taken name gets the next alternative
      for (let i = 0; i < 20; i++) {
        const prereq: Prerequisite[] = [{ name: instanceName(this.instance, this.domain), type: 'SRV', present: false }];
        try {
          await this.send(server, tcp, ops(), prereq);
          this.claimed = true;
          break;
        } catch (err) {
          if (!(err instanceof UpdateFailed) || err.rcode !== RCODE_YXRRSET) throw err;
          const taken = this.instance;
          this.instance = nextInstanceName(this.instance);
          this.opts.logger.info(`wide-area: instance name ${taken} is taken in ${this.domain}; using ${this.instance}`);
          this.registered.clear();
        }
      }
      if (!this.claimed) throw new Error(`wide-area: no free instance name in ${this.domain}`);
      await this.saveState();
    } else {
      await this.send(server, tcp, ops());
    }
    this.instanceDone = true;
  }

  private async saveState(): Promise<void> {
    if (!this.opts.stateFile) return;
    try {
      await writeFileAtomic(this.opts.stateFile, JSON.stringify({ domain: this.domain, instance: this.instance, hostLabel: this.hostLabel }) + '\n', 0o600);
    } catch (err) {
      this.opts.logger.warn(`wide-area: cannot save ${this.opts.stateFile}: ${(err as Error).message}`);
    }
  }

  /** Sends adds and removals in messages under maxBytes; marks each message's items once acked. */
  private async sendItems(server: ServerAddress, tcp: TcpSession): Promise<void> {
    const adds: string[] = [];
    const dels: string[] = [];
    for (const k of this.desired) if (!this.registered.has(k) || this.resend.has(k)) adds.push(k);
    for (const k of this.registered) if (!this.desired.has(k)) dels.push(k);
    for (const k of this.resend) if (!this.desired.has(k)) this.resend.delete(k);
    const prev = this.previous;
    let batch: UpdateOp[] = [];
    let batchAdds: string[] = [];
    let batchDels: string[] = [];
    let size = 64;
    const flush = async () => {
      if (!batch.length) return;
      await this.send(server, tcp, batch);
      for (const k of batchAdds) { this.registered.add(k); this.resend.delete(k); }
      for (const k of batchDels) this.registered.delete(k);
      batch = []; batchAdds = []; batchDels = []; size = 64;
    };
    const push = async (ops: UpdateOp[], key: string, add: boolean) => {
      const n = ops.reduce((s, o) => s + opLength(o), 0);
      if (size + n > this.maxBytes) await flush();
      batch.push(...ops);
      size += n;
      (add ? batchAdds : batchDels).push(key);
    };
    for (const k of dels) await push([itemDeleteOp(k, this.domain, this.instance)], k, false);
    for (const k of adds) {
      const ops = [itemAddOp(k, this.domain, this.instance, this.ttl)];
      if (prev) ops.unshift(itemDeleteOp(k, this.domain, prev.instance));
      await push(ops, k, true);
    }
    await flush();
    if (prev && this.previousCleaned) this.previous = undefined;
  }

  /** Signs, sends and checks one update; throws UpdateFailed with a one-line reason. */
  private async send(server: ServerAddress, tcp: TcpSession, updates: UpdateOp[], prerequisites?: Prerequisite[]): Promise<void> {
    const id = randomInt(0, 0x10000);
    const lease = Math.round((updates.some((u) => u.type === 'SRV') ? 3 * this.refreshMs : 2 * this.itemRefreshMs) / 1000);
    const raw = encodeUpdate({ id, zone: this.domain, prerequisites, updates, lease });
    const signed = sign(raw, this.key);
    let reply: Buffer;
    try {
      reply = await exchange(server, signed.message, { timeoutMs: this.timeoutMs, traffic: this.traffic, tcp: signed.message.length > MAX_UDP ? tcp : undefined });
    } catch (err) {
      throw new UpdateFailed(`no answer from DNS server ${fmt(server)}: ${(err as Error).message}`);
    }
    const h = readHeader(reply);
    const v = verify(reply, this.key, { requestMac: signed.mac });
    if (v.ok && v.error !== 0) {
      throw new UpdateFailed(`DNS server ${fmt(server)} rejected the key "${this.key.name}" (${rcodeName(h.rcode)}, ${tsigErrorName(v.error)}): ` +
        'check that DnsKeyFile holds the key the zone allows', h.rcode);
    }
    if (h.rcode === 0 && !v.ok) throw new UpdateFailed(`the answer from ${fmt(server)} failed TSIG verification (${v.reason})`, h.rcode);
    if (h.rcode === RCODE_YXRRSET && prerequisites?.length) throw new UpdateFailed('name taken', h.rcode);
    if (h.rcode === 5) {
      throw new UpdateFailed(`DNS server ${fmt(server)} refused the update of ${this.domain} (REFUSED): the zone's update policy must allow key "${this.key.name}" ` +
        `to change _cache._tcp.${this.domain} and host names`, h.rcode);
    }
    if (h.rcode === 9) throw new UpdateFailed(`DNS server ${fmt(server)} is not authoritative for ${this.domain} or refused the key (NOTAUTH)`, h.rcode);
    if (h.rcode === 10) throw new UpdateFailed(`${this.domain} is not a zone on ${fmt(server)} (NOTZONE): Domain= must name the zone itself`, h.rcode);
    if (h.rcode !== 0) throw new UpdateFailed(`DNS server ${fmt(server)} answered ${rcodeName(h.rcode)} to an update of ${this.domain}`, h.rcode);
    this.lastUpdate = Date.now();
    this.emit('acked', this.lastUpdate, updates.length);
  }

  /**
   * Stops refreshing and removes everything this host registered (instance first, so lookups stop
   * finding it at once, then its item PTRs), within `deadlineMs`. Never throws.
   */
  async stop(deadlineMs = 5000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.refreshTimer);
    clearInterval(this.itemTimer);
    clearTimeout(this.retryTimer);
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const work = (async () => {
      await this.running?.catch(() => undefined);
      if (!this.claimed || !this.server) return;
      const tcp = new TcpSession(this.server, { timeoutMs: this.timeoutMs, traffic: this.traffic });
      try {
        await this.send(this.server, tcp, instanceRemovalOps(this.domain, this.instance, this.hostLabel));
        this.instanceDone = false;
        this.desired.clear();
        this.resend.clear();
        this.previous = undefined;
        await this.sendItems(this.server, tcp);
      } catch (err) {
        this.opts.logger.warn(`wide-area: removing our records from ${this.domain}: ${(err as Error).message}`);
      } finally {
        tcp.close();
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([work, new Promise<void>((r) => { timer = setTimeout(r, deadlineMs); })]);
    clearTimeout(timer);
    this.phase = 'stopped';
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
