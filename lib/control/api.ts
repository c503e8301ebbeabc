/**
 * The control socket protocol: HTTP/1.1 + JSON over a Unix socket. Shared by the server (daemon)
 * and the client (CLI, fetch) so neither spells a route twice.
 *
 *   GET    /status                   → StatusReply
 *   GET    /items                    → ItemInfo[]
 *   POST   /items?name=&max_age=&share_limit=&next_reboot=1&cmdline=&sha256=
 *          body: the file bytes       → 201 ItemInfo | 409 exists | 413 too large | 422 mismatch
 *   DELETE /items/<sha256>           → ItemInfo | 404
 *   POST   /verify?fix=1             → VerifyReply
 *   POST   /metered?on=1|0           → StatusReply
 *   POST   /claims?sha256=&kind=bid|fetching&ttl_ms=
 *                                     → 201 ClaimReply | 409 not advertising | 503 too many
 *   POST   /claims/<id>?ttl_ms=&kind= → ClaimReply (renewed) | 404 lapsed
 *   DELETE /claims/<id>               → { released: true } | 404
 *          (in-progress claims for herd suppression: lib/control/claims.ts, lib/fetch/herd.ts)
 *   POST   /peers   body: {"hashes": ["<64 hex>", …]} (at most 4096)
 *                                     → PeersReply: peers the daemon has heard announce each hash
 *          (lib/discovery/peer-cache.ts; never the daemon itself; only hashes with a live peer)
 * Errors: { error: { code: "PASSIM_…", message } } with the error class's httpStatus.
 */
import type { ItemInfo } from '../store/types.js';
import type { WideAreaStatus } from '../discovery/wide-area/registrar.js';

export interface StatusReply {
  version: string;
  /** 'running' | 'disabled-metered' | 'loading' */
  status: string;
  port: number;
  /** mDNS instance name */
  name: string;
  uri: string;
  downloadSaving: number;
  carbonSaving: number;
  items: number;
  /** wide-area DNS-SD (Domain= in passim.conf); absent when off */
  wideArea?: WideAreaStatus;
  /** what the daemon's peer cache holds (lib/discovery/peer-cache.ts): hashes heard from peers, and those peers */
  peerCache?: { hashes: number; peers: number };
  /** static-dir files listed but not hashed yet (their items are added as each hash is known) */
  hashing?: number;
}

export interface VerifyReply {
  checked: number;
  bad: Array<{ hash: string; basename: string; actual: string; fixed: boolean }>;
}

/** An in-progress claim (lib/control/claims.ts). */
export interface ClaimReply {
  id: string;
  sha256: string;
  kind: 'bid' | 'fetching';
  ttlMs: number;
  /** live claims on the same hash made earlier through this daemon */
  others: number;
}

/** Peers the daemon knows for the asked hashes, from what it heard on mDNS (and a DNS zone). */
export interface PeersReply {
  peers: Record<string, Array<{ address: string; port: number; instance: string; host: string }>>;
  /**
   * the daemon has listened long enough and heard no other instance on its links (and knows no
   * peer from elsewhere): nobody else can hold or be fetching any file (peer-cache.ts alone())
   */
  alone?: boolean;
}

export interface ErrorReply {
  error: { code: string; message: string };
}

export type { ItemInfo };

/** Paths of the routes above. */
export const ROUTES = {
  status: '/status',
  items: '/items',
  verify: '/verify',
  metered: '/metered',
  claims: '/claims',
  peers: '/peers',
} as const;

/** Most hashes one `POST /peers` may ask about (a client with more splits them). */
export const MAX_PEERS_HASHES = 4096;

/**
 * Largest max-age (seconds) and share-limit: upstream keeps both as a uint32 xattr (the store
 * keeps 2^32-1 aside). 0 means never expires / unlimited.
 */
export const MAX_COUNT = 0xfffffffe;

/**
 * max-age and share-limit as the CLI and the control socket accept them: a whole number from 0
 * (never / unlimited) to MAX_COUNT (upstream keeps both as uint32). Returns an error message, or
 * undefined when the value is absent or valid.
 */
export function countError(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value) || Number(value) > MAX_COUNT) {
    return `${what} must be a whole number from 0 to ${MAX_COUNT}, got ${JSON.stringify(String(value).slice(0, 40))}`;
  }
  return undefined;
}
