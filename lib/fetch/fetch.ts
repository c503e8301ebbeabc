/**
 * The single-file fetch: a batch of one (batch.ts holds the one fetch path: local daemon, peers,
 * herd, each URL, verified download to temp + rename, publish). This adds what only a single fetch
 * has: the sha256 may come from a checksum file (--sha256-url), and the output may be stdout or a
 * directory.
 */
import { UsageError } from '../core/errors.js';
import { validateBasename } from '../core/basename.js';
import { normaliseSha256 } from '../core/sha256.js';
import type { Writable } from 'node:stream';
import type { Browse, BrowseMany } from '../discovery/types.js';
import { FetchBatch } from './batch.js';
import type { SourceLimits } from './limits.js';
import { DEFAULT_DISCOVERY_MS, type FetchProgress, type FetchResult } from './result.js';

export { DEFAULT_DISCOVERY_MS, type FetchProgress, type FetchResult };

export interface FetchOptions {
  /** basename of the file (what peers serve it as, and the default output name) */
  name: string;
  /** expected sha256 (any case); or give sha256Url */
  sha256?: string;
  /** checksum file to read the sha256 for `name` from (verified TLS; https unless insecureChecksumUrl) */
  sha256Url?: string;
  /** accept an http:// sha256Url: anyone on the path could swap file and hash together */
  insecureChecksumUrl?: boolean;
  /** CDN URLs, tried in order after the peers */
  cdn: string[];
  /** target path; '-' = stdout; an existing directory = <dir>/<name>; default ./<name> */
  output?: string;
  /** mDNS discovery timeout (ms without a further answer); default 400 (peers answer in ~2–20 ms) */
  timeoutMs?: number;
  /** look for peers (default true) */
  peers?: boolean;
  /** use the CDN URLs (default true) */
  useCdn?: boolean;
  /** publish the verified file to the local daemon, if one answers (default true) */
  publish?: boolean;
  /** try the local daemon as a source (default true) */
  local?: boolean;
  maxAge?: number;
  shareLimit?: number;
  /** the publishing command line, for the daemon's audit log */
  cmdline?: string;
  /** control socket of the local daemon (default: PASSIM_SOCKET / the usual path) */
  socketPath?: string;
  /** how long the local daemon may take to answer status/items (default 2000 ms) */
  localTimeoutMs?: number;
  /** how long publishing may take: this plus 100 ms per MiB (default 60000 ms) */
  publishTimeoutMs?: number;
  /** peer browser; default the real mDNS browser, imported lazily */
  browse?: Browse;
  /** finders asked beside mDNS in the same round (a wide-area DNS-SD zone: zone-finder.ts) */
  extraFinders?: BrowseMany[];
  /**
   * herd suppression (herd.ts): when another host is fetching the same hash from outside the LAN,
   * wait for it and take the file from the LAN (default true; needs peers on)
   */
  herd?: boolean;
  /** longest wait for another host's fetch, ms (default 60000) */
  herdWaitMs?: number;
  /** how often a waiter re-checks the claims, ms (default 1000) */
  herdPollMs?: number;
  /**
   * browser for other hosts' claims (it must honour `kind`); default the real mDNS browser, but
   * none when `browse` is injected (a test's fake browser knows only items)
   */
  claimBrowse?: Browse;
  /** extra CA for CDN URLs (tests); default the PEM file in env PASSIM_CDN_CA */
  cdnCa?: string | Buffer;
  /** override the per-source limits (tests make them small) */
  peerLimits?: Partial<SourceLimits>;
  cdnLimits?: Partial<SourceLimits>;
  /** where '-o -' writes; default process.stdout */
  stdout?: Writable;
  onProgress?: (ev: FetchProgress) => void;
  signal?: AbortSignal;
}

export async function fetchFile(opts: FetchOptions): Promise<FetchResult> {
  const name = validateBasename(opts.name);
  if (opts.sha256 && opts.sha256Url) throw new UsageError('give either a sha256 or a sha256 URL, not both');
  if (!opts.sha256 && !opts.sha256Url) throw new UsageError('a sha256 is required (--sha256 or --sha256-url)');
  if (opts.sha256Url && !/^https:/i.test(opts.sha256Url) && !opts.insecureChecksumUrl) {
    throw new UsageError(`the checksum URL ${opts.sha256Url} is not https: anyone on the path could swap the file and its hash together (use https, or accept the risk explicitly)`);
  }
  const sha256 = opts.sha256 ? normaliseSha256(opts.sha256) : undefined;
  const emit = (ev: FetchProgress) => opts.onProgress?.(ev);
  const batch = new FetchBatch({
    timeoutMs: opts.timeoutMs,
    peers: opts.peers,
    useCdn: opts.useCdn,
    publish: opts.publish,
    local: opts.local,
    maxAge: opts.maxAge,
    shareLimit: opts.shareLimit,
    cmdline: opts.cmdline,
    socketPath: opts.socketPath,
    localTimeoutMs: opts.localTimeoutMs,
    publishTimeoutMs: opts.publishTimeoutMs,
    browse: opts.browse,
    extraFinders: opts.extraFinders,
    herd: opts.herd,
    herdWaitMs: opts.herdWaitMs,
    herdPollMs: opts.herdPollMs,
    claimBrowse: opts.claimBrowse,
    cdnCa: opts.cdnCa,
    peerLimits: opts.peerLimits,
    cdnLimits: opts.cdnLimits,
    stdout: opts.stdout,
    onProgress: emit,
    signal: opts.signal,
    gatherMs: 0,
  });
  try {
    const entry = { sha256: sha256 ?? '', name, urls: opts.cdn, output: opts.output };
    if (!sha256) {
      emit({ type: 'checksum', url: opts.sha256Url! });
      entry.sha256 = await batch.checksum(opts.sha256Url!, name);
    }
    return await batch.add(entry);
  } finally {
    await batch.close();
  }
}
