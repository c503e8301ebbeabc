/**
 * In-progress claims held by local fetch clients (herd suppression, lib/fetch/herd.ts), kept by the
 * daemon and advertised through its mDNS responder as `_b<60 hex>` (bid) / `_f<60 hex>` (fetching)
 * subtypes (lib/discovery/names.ts).
 *
 * A claim is a lease: it lapses `ttlMs` after it was created or last renewed, and the client renews
 * it only while its download makes progress — so a claim on the LAN means "someone is really
 * getting this right now". It is also tied to the control connection it was last renewed over: when
 * that connection closes (the client exited or was killed) the claim goes at once. A hash is
 * advertised with a kind while at least one live claim of that kind holds it; the last one going
 * sends the goodbye.
 */
import { PassimError } from '../core/errors.js';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ClaimKind } from '../discovery/names.js';
import { silentLogger, type Logger } from '../core/logger.js';

export interface ClaimInfo {
  id: string;
  sha256: string;
  kind: ClaimKind;
  ttlMs: number;
  /** live claims on the same hash made earlier through this daemon (another local fetch) */
  others: number;
}

export interface ClaimTableOptions {
  /** start advertising a claim (responder.addClaim) */
  advertise(sha256: string, kind: ClaimKind): void;
  /** stop advertising it (responder.removeClaim: goodbye) */
  withdraw(sha256: string, kind: ClaimKind): void;
  /** whether claims can be advertised at all now (not metered, not localhost-only) */
  enabled(): boolean;
  /** most live claims (default 256) */
  maxClaims?: number;
  logger?: Logger;
}

/** Shortest and longest lease a client may ask for, ms. */
export const CLAIM_TTL_MIN_MS = 200;
export const CLAIM_TTL_MAX_MS = 60_000;

interface Claim {
  id: string;
  sha256: string;
  kind: ClaimKind;
  ttlMs: number;
  created: number;
  seq: number;
  timer: NodeJS.Timeout;
  socket?: Socket;
  onClose?: () => void;
}

/** Claims are refused while the daemon does not advertise (metered, localhost-only): HTTP 409. */
export class ClaimsDisabledError extends PassimError {
  override readonly code = 'PASSIM_USAGE' as 'PASSIM_ERROR';
  override readonly httpStatus = 409;
}

/** The claim table is full: HTTP 503. */
export class TooManyClaimsError extends PassimError {
  override readonly code = 'PASSIM_USAGE' as 'PASSIM_ERROR';
  override readonly httpStatus = 503;
}

export class ClaimTable {
  readonly #claims = new Map<string, Claim>();
  /** hash|kind currently advertised */
  readonly #advertised = new Set<string>();
  readonly #opts: ClaimTableOptions;
  readonly #log: Logger;
  #seq = 0;

  constructor(opts: ClaimTableOptions) {
    this.#opts = opts;
    this.#log = opts.logger ?? silentLogger;
  }

  get size(): number {
    return this.#claims.size;
  }

  /** A new claim; throws ClaimsDisabledError when not advertising, TooManyClaimsError when full. */
  create(sha256: string, kind: ClaimKind, ttlMs: number, socket?: Socket): ClaimInfo {
    if (!this.#opts.enabled()) throw new ClaimsDisabledError('this daemon is not advertising (metered network or localhost-only): it cannot claim a fetch');
    if (this.#claims.size >= (this.#opts.maxClaims ?? 256)) throw new TooManyClaimsError('too many fetches in progress');
    const id = randomBytes(8).toString('hex');
    const c: Claim = { id, sha256, kind, ttlMs, created: Date.now(), seq: this.#seq++, timer: this.#lease(id, ttlMs) };
    const others = [...this.#claims.values()].filter((o) => o.sha256 === sha256).length;
    this.#claims.set(id, c);
    this.#bind(c, socket);
    this.#refresh(sha256);
    this.#log.debug(`claim ${id}: ${kind} ${sha256.slice(0, 12)}… for ${ttlMs} ms`);
    return { id, sha256, kind, ttlMs, others };
  }

  /** Renews a claim (and may change its kind); undefined when it has lapsed or never was. */
  renew(id: string, ttlMs: number, kind?: ClaimKind, socket?: Socket): ClaimInfo | undefined {
    const c = this.#claims.get(id);
    if (!c) return undefined;
    if (!this.#opts.enabled()) {
      this.release(id);
      throw new ClaimsDisabledError('this daemon is no longer advertising: claim dropped');
    }
    clearTimeout(c.timer);
    c.ttlMs = ttlMs;
    c.timer = this.#lease(id, ttlMs);
    this.#bind(c, socket);
    if (kind && kind !== c.kind) {
      c.kind = kind;
      this.#refresh(c.sha256);
    }
    const others = [...this.#claims.values()].filter((o) => o.sha256 === c.sha256 && o.seq < c.seq).length;
    return { id, sha256: c.sha256, kind: c.kind, ttlMs, others };
  }

  release(id: string): boolean {
    const c = this.#claims.get(id);
    if (!c) return false;
    this.#claims.delete(id);
    clearTimeout(c.timer);
    this.#unbind(c);
    this.#refresh(c.sha256);
    return true;
  }

  /** Drops every claim (metered network, shutdown). */
  clear(): void {
    for (const id of [...this.#claims.keys()]) this.release(id);
  }

  #lease(id: string, ttlMs: number): NodeJS.Timeout {
    const t = setTimeout(() => {
      if (this.#claims.has(id)) {
        this.#log.debug(`claim ${id} lapsed (no renewal in ${ttlMs} ms)`);
        this.release(id);
      }
    }, ttlMs);
    t.unref();
    return t;
  }

  /** Ties the claim to the connection of its last request: the client going away releases it. */
  #bind(c: Claim, socket?: Socket): void {
    if (!socket || socket === c.socket) return;
    this.#unbind(c);
    if (socket.destroyed) {
      queueMicrotask(() => this.release(c.id));
      return;
    }
    c.socket = socket;
    c.onClose = () => {
      if (this.#claims.get(c.id) === c && c.socket === socket) {
        this.#log.debug(`claim ${c.id}: client connection closed`);
        this.release(c.id);
      }
    };
    socket.once('close', c.onClose);
  }

  #unbind(c: Claim): void {
    if (c.socket && c.onClose) c.socket.off('close', c.onClose);
    c.socket = undefined;
    c.onClose = undefined;
  }

  /** Advertises exactly the kinds some live claim on this hash has. */
  #refresh(sha256: string): void {
    const want = new Set<ClaimKind>();
    for (const c of this.#claims.values()) if (c.sha256 === sha256) want.add(c.kind);
    for (const kind of ['bid', 'fetching'] as const) {
      const key = `${sha256}|${kind}`;
      const on = this.#advertised.has(key);
      try {
        if (want.has(kind) && !on) {
          this.#advertised.add(key);
          this.#opts.advertise(sha256, kind);
        } else if (!want.has(kind) && on) {
          this.#advertised.delete(key);
          this.#opts.withdraw(sha256, kind);
        }
      } catch (err) {
        this.#log.warn(`claim ${kind} ${sha256.slice(0, 12)}…: ${(err as Error).message}`);
      }
    }
  }
}
