/**
 * How long and how much a single source may cost the client (SPEC §5: a lying peer costs at most
 * its timeout). Defaults differ for LAN peers and for the CDN; tests shrink them.
 */

export interface SourceLimits {
  /** TCP connect + TLS handshake */
  connectTimeoutMs: number;
  /** from sending the request until the response headers are in */
  headersTimeoutMs: number;
  /** the longest gap between two body chunks (undici's bodyTimeout) */
  bodyTimeoutMs: number;
  /**
   * Minimum rate: in every window of `rateWindowMs` of the body, at least
   * `minBytesPerSec × rateWindowMs / 1000` bytes must arrive, else the source is cut off.
   * bodyTimeout alone never catches a peer that drips a byte a second. 0 disables.
   */
  minBytesPerSec: number;
  rateWindowMs: number;
  /**
   * Overall deadline per source (connect to last byte): `baseDeadlineMs` plus
   * size / `deadlineBytesPerSec` once the size is known (Content-Length or expected size).
   */
  baseDeadlineMs: number;
  deadlineBytesPerSec: number;
  /** largest body accepted when the size is not known in advance */
  maxSize: number;
  /** response header bytes */
  maxHeaderSize: number;
  /** redirects followed per source */
  maxRedirects: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Peers are on the LAN: fail fast and move on to the next one. */
export const PEER_LIMITS: SourceLimits = {
  connectTimeoutMs: 3_000,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 10_000,
  minBytesPerSec: 64 * KiB,
  rateWindowMs: 5_000,
  baseDeadlineMs: 30_000,
  deadlineBytesPerSec: 256 * KiB,
  maxSize: 16 * GiB,
  maxHeaderSize: 16 * KiB,
  maxRedirects: 5,
};

/** The CDN is the last resort and may be far away: more patience, same protections. */
export const CDN_LIMITS: SourceLimits = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  minBytesPerSec: 4 * KiB,
  rateWindowMs: 15_000,
  baseDeadlineMs: 60_000,
  deadlineBytesPerSec: 16 * KiB,
  maxSize: 16 * GiB,
  maxHeaderSize: 16 * KiB,
  maxRedirects: 5,
};

export function withLimits(base: SourceLimits, over?: Partial<SourceLimits>): SourceLimits {
  const out = { ...base };
  if (over) {
    for (const [k, v] of Object.entries(over) as Array<[keyof SourceLimits, number | undefined]>) {
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[k] = v;
    }
  }
  return out;
}
