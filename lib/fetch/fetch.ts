/**
 * The fetch client: tries each source in order (local daemon, peers, CDN), each through a verified
 * download into a temp file beside the target; the first whose bytes hash right is renamed into
 * place (or written to stdout). Nothing is ever left under the final name unless it verified.
 */
import type { ControlClient } from '../control/client.js';
import { withTimeout } from '../core/with-timeout.js';
import { createReadStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename as pathBasename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { Agent } from 'undici';
import { ChecksumMismatchError, NotFoundError, PassimError, UsageError } from '../core/errors.js';
import { validateBasename } from '../core/basename.js';
import { resolvePaths } from '../core/paths.js';
import { normaliseSha256 } from '../core/sha256.js';
import type { Browse } from '../discovery/types.js';
import { fetchChecksum } from './checksum-file.js';
import { cdnAgent, peerAgent, resolveCdnCa } from './dispatchers.js';
import { CDN_LIMITS, PEER_LIMITS, withLimits, type SourceLimits } from './limits.js';
import { destroyClient, localSource, orderedSources, PeerCollector, probeLocalDaemon, type LocalDaemon, type Source, type SourceKind } from './sources.js';
import { Herd, type ClaimChannel, type HerdEvent } from './herd.js';
import { SourceError, verifiedDownload } from './verified-download.js';

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

export interface FetchOptions {
  /** basename of the file (what peers serve it as, and the default output name) */
  name: string;
  /** expected sha256 (any case); or give sha256Url */
  sha256?: string;
  /** checksum file to read the sha256 for `name` from (verified TLS) */
  sha256Url?: string;
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

function describe(s: Source): string {
  if (s.kind === 'cdn') return `cdn ${s.url}`;
  if (s.kind === 'local') return 'local daemon';
  try {
    return `peer ${new URL(s.url).host}`;
  } catch {
    return `peer ${s.peer}`;
  }
}

/** Where the output goes: the final path and the directory of the temp file. */
async function resolveOutput(output: string | undefined, name: string): Promise<{ final?: string; dir: string }> {
  if (output === '-') return { dir: tmpdir() };
  let final = resolve(output ?? name);
  const st = await stat(final).catch(() => undefined);
  if (st?.isDirectory()) final = join(final, name);
  else if (output !== undefined && /[/\\]$/.test(output)) throw new UsageError(`output directory does not exist: ${output}`);
  const dir = dirname(final);
  const dst = await stat(dir).catch(() => undefined);
  if (!dst?.isDirectory()) throw new PassimError(`cannot write ${final}: no such directory ${dir}`);
  if ((await stat(final).catch(() => undefined))?.isDirectory()) throw new PassimError(`cannot write ${final}: is a directory`);
  return { final, dir };
}

async function defaultBrowse(): Promise<Browse> {
  const mod = (await import('../discovery/browser.js')) as { browse: Browse };
  return mod.browse;
}

export async function fetchFile(opts: FetchOptions): Promise<FetchResult> {
  const t0 = performance.now();
  const name = validateBasename(opts.name);
  if (opts.sha256 && opts.sha256Url) throw new UsageError('give either a sha256 or a sha256 URL, not both');
  for (const u of opts.cdn) {
    let p: URL;
    try {
      p = new URL(u);
    } catch {
      throw new UsageError(`not a URL: ${u}`);
    }
    if (p.protocol !== 'https:' && p.protocol !== 'http:') throw new UsageError(`not an http(s) URL: ${u}`);
  }
  const out = await resolveOutput(opts.output, name);
  const peerLimits = withLimits(PEER_LIMITS, opts.peerLimits);
  const cdnLimits = withLimits(CDN_LIMITS, opts.cdnLimits);
  const cdnCa = resolveCdnCa(opts.cdnCa);
  const agents: Agent[] = [];
  const peerDispatcher = peerAgent(peerLimits);
  const cdnDispatcher = cdnAgent(cdnLimits, cdnCa);
  agents.push(peerDispatcher, cdnDispatcher);
  const emit = (ev: FetchProgress) => {
    try {
      opts.onProgress?.(ev);
    } catch {
      /* a progress display never breaks a download */
    }
  };

  let collector: PeerCollector | undefined;
  let herd: Herd | undefined;
  let tmpPath: string | undefined;
  try {
    let sha256: string;
    if (opts.sha256) sha256 = normaliseSha256(opts.sha256);
    else if (opts.sha256Url) {
      emit({ type: 'checksum', url: opts.sha256Url });
      sha256 = await fetchChecksum(opts.sha256Url, name, { dispatcher: cdnDispatcher, signal: opts.signal });
    } else throw new UsageError('a sha256 is required (--sha256 or --sha256-url)');

    const socketPath = opts.socketPath ?? resolvePaths().socketPath;
    const local: LocalDaemon | undefined = opts.local === false ? undefined : await probeLocalDaemon(socketPath, sha256, opts.localTimeoutMs);
    const cdn = opts.useCdn === false ? [] : opts.cdn;
    if (opts.herd !== false && opts.peers !== false && !local?.item) {
      const claimBrowse = opts.claimBrowse ?? (opts.browse ? undefined : await defaultBrowse());
      if (claimBrowse) {
        const localTimeout = opts.localTimeoutMs;
        herd = new Herd({
          sha256,
          name,
          browse: claimBrowse,
          daemon: local?.instance
            ? { instance: local.instance, channel: async () => new (await import('../control/client.js')).ControlClient(socketPath) as ClaimChannel }
            : undefined,
          canBid: opts.publish !== false && cdn.length > 0,
          windowMs: opts.timeoutMs ?? DEFAULT_DISCOVERY_MS,
          waitMs: opts.herdWaitMs ?? 60_000,
          pollMs: opts.herdPollMs,
          localSource: local
            ? async () => {
              const d = await probeLocalDaemon(socketPath, sha256, localTimeout);
              return d && localSource(d, sha256);
            }
            : undefined,
          signal: opts.signal,
          onEvent: (event) => emit({ type: 'herd', event }),
        });
        herd.start();
      }
    }
    if (opts.peers !== false) {
      const browse = opts.browse ?? (await defaultBrowse());
      collector = new PeerCollector(browse, sha256, {
        timeoutMs: opts.timeoutMs ?? DEFAULT_DISCOVERY_MS,
        excludeInstances: local?.instance ? [local.instance] : undefined,
        signal: opts.signal,
      });
    }

    const skipped: FetchResult['skipped'] = [];
    let mismatches = 0;
    let tried = 0;
    const triedUrls = new Set<string>();
    for await (const src of orderedSources({ sha256, name, local, peers: collector, cdn, herd, tried: triedUrls })) {
      if (opts.signal?.aborted) throw new PassimError('fetch aborted');
      tried++;
      triedUrls.add(src.url);
      emit({ type: 'try', source: src.kind, url: src.url, peer: src.peer });
      const isCdn = src.kind === 'cdn';
      if (isCdn) herd?.progress();
      try {
        const r = await verifiedDownload({
          url: src.url,
          dispatcher: isCdn ? cdnDispatcher : peerDispatcher,
          expectedSha256: sha256,
          expectedSize: src.expectedSize,
          dir: out.dir,
          name: out.final ? pathBasename(out.final) : name,
          limits: isCdn ? cdnLimits : peerLimits,
          redirects: isCdn ? 'no-downgrade' : 'same-origin',
          requireContentLength: !isCdn,
          signal: opts.signal,
          onProgress: (received, total) => {
            if (isCdn) herd?.progress();
            emit({ type: 'bytes', source: src.kind, received, total });
          },
        });
        tmpPath = r.tmpPath;
        collector?.stop();
        herd?.verified(); // publishing may take a while: our claim must not look stalled
        emit({ type: 'verified', source: src.kind, size: r.size });

        let path: string;
        if (out.final) {
          await rename(r.tmpPath, out.final);
          tmpPath = undefined;
          path = out.final;
        } else {
          await pipeline(createReadStream(r.tmpPath, { highWaterMark: 1024 * 1024 }), opts.stdout ?? process.stdout, { end: opts.stdout !== undefined });
          path = '-';
        }
        const ms = Math.round(performance.now() - t0); // the fetch, not the publish after it
        let published = false;
        if (opts.publish !== false && src.kind !== 'local') {
          published = await publishToDaemon(socketPath, out.final ?? r.tmpPath, r.size, name, sha256, opts, emit);
        }
        return {
          path,
          sha256,
          size: r.size,
          source: src.kind,
          peer: src.kind === 'cdn' ? undefined : src.peer,
          url: r.url,
          ms,
          published,
          skipped,
          waitedMs: herd?.waitedMs ?? 0,
        };
      } catch (err) {
        if (!(err instanceof SourceError)) throw err;
        if (err.kind === 'fatal') throw new PassimError(err.message, { cause: err });
        if (err.kind === 'aborted' && opts.signal?.aborted) throw new PassimError('fetch aborted');
        if (err.kind === 'mismatch') mismatches++;
        skipped.push({ source: src.kind, url: src.url, reason: err.message });
        emit({ type: 'skip', source: src.kind, url: src.url, peer: src.peer, reason: err.message, kind: err.kind });
      }
    }

    // every source failed
    const what = `${name} (sha256 ${sha256.slice(0, 12)}…)`;
    const tries = skipped.map((s) => `${describe({ kind: s.source, url: s.url })}: ${s.reason}`);
    if (opts.peers !== false && collector && collector.found === 0) tries.push('no peer found');
    if (opts.peers !== false && collector?.error) tries.push(`peer discovery failed: ${errText(collector.error)}`);
    if (tried === 0 && opts.peers === false && cdn.length === 0) tries.push('no sources to try (no peers, no CDN URL)');
    if (mismatches > 0) {
      throw new ChecksumMismatchError(sha256, '', `no source sent the right bytes for ${what} (${mismatches} sent wrong bytes): ${tries.join('; ')}`);
    }
    throw new NotFoundError(`could not fetch ${what}: ${tries.join('; ') || 'nothing tried'}`);
  } finally {
    collector?.stop();
    // after the publish above: waiters see the item announced before our claim goes
    await herd?.close();
    if (tmpPath) await unlink(tmpPath).catch(() => {});
    await Promise.all(agents.map((a) => a.destroy().catch(() => {})));
  }
}

function errText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

/** Streams the verified file to the local daemon; no daemon or already held is not an error. */
async function publishToDaemon(
  socketPath: string,
  path: string,
  size: number,
  name: string,
  sha256: string,
  opts: FetchOptions,
  emit: (ev: FetchProgress) => void,
): Promise<boolean> {
  let client: ControlClient | undefined;
  try {
    const { ControlClient } = await import('../control/client.js');
    client = new ControlClient(socketPath);
    const c = client;
    const ms = (opts.publishTimeoutMs ?? 60_000) + size / (10 * 1024);
    await withTimeout(
      c.publish(path, { name, sha256, maxAge: opts.maxAge, shareLimit: opts.shareLimit, cmdline: opts.cmdline }),
      ms,
      `no answer from the daemon in ${Math.round(ms / 1000)} s`,
    );
    emit({ type: 'published' });
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'PASSIM_DAEMON_UNREACHABLE') return false;
    if (code === 'PASSIM_ITEM_EXISTS') return true;
    emit({ type: 'publish-failed', reason: errText(err) });
    return false;
  } finally {
    if (client) await destroyClient(client);
  }
}
