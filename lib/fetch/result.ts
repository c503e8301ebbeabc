/** What a fetch reports while it runs and when it is done (single fetch and batch alike). */
import type { HerdEvent } from './herd.js';
import type { SourceKind } from './sources.js';

/**
 * How long discovery waits for (further) peers. Peers answered in 2–11 ms (p99) in the bench, and
 * Avahi delays shared answers by at most 120 ms, so 400 ms leaves a wide margin while keeping the
 * "nobody has it, use the CDN" decision under half a second.
 */
export const DEFAULT_DISCOVERY_MS = 400;

export type FetchProgress =
  | { type: 'checksum'; url: string }
  | { type: 'try'; source: SourceKind; url: string; peer?: string }
  | { type: 'bytes'; source: SourceKind; received: number; total?: number }
  | { type: 'skip'; source: SourceKind; url: string; peer?: string; reason: string; kind: string }
  | { type: 'verified'; source: SourceKind; size: number }
  | { type: 'published' }
  | { type: 'herd'; event: HerdEvent }
  | { type: 'publish-failed'; reason: string };

export interface FetchResult {
  /** final path, or '-' for stdout */
  path: string;
  sha256: string;
  size: number;
  source: SourceKind;
  /** peer address when source is 'peer' (127.0.0.1 for 'local') */
  peer?: string;
  /** the URL that served it, after redirects */
  url: string;
  ms: number;
  /** published to the local daemon (false: skipped, not reachable, or failed) */
  published: boolean;
  /** every source that failed before the one that worked */
  skipped: Array<{ source: SourceKind; url: string; reason: string }>;
  /** ms spent waiting for another host's fetch of the same file (herd suppression) */
  waitedMs: number;
}
