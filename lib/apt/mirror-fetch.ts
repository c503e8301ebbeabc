/**
 * A request apt has no hash for (InRelease, Release, Release.gpg — the roots of trust apt checks
 * by signature) goes straight to the mirror, as apt's own http method would fetch it:
 * If-Modified-Since from `Last-Modified` (a 304 is an IMS hit), `Maximum-Size`, redirects (never
 * https → http), the proxy and timeout from apt's configuration; the body is hashed while it is
 * written to a temp file beside apt's Filename and renamed there, stamped with the server's
 * Last-Modified (apt's next If-Modified-Since comes from that mtime). Failures carry the
 * FailReason apt acts on (HttpError404 makes apt fall back from InRelease to Release).
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rename, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { basename, dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { version } from '../core/version.js';
import { classify, discard, tempPathFor } from '../fetch/verified-download.js';
import type { Failure } from './replies.js';
import type { AptHash } from './request.js';

export class MirrorError extends Error {
  constructor(readonly failure: Failure, options?: { cause?: unknown }) {
    super(failure.message, options);
    this.name = 'MirrorError';
  }
}

export interface MirrorFetchOptions {
  url: URL;
  filename: string;
  lastModified?: Date;
  maximumSize?: number;
  /** hashes to report besides SHA256 (those apt expects) */
  hashes: readonly AptHash[];
  /** when known: bytes that do not hash to it never get the file name (HashSumMismatch) */
  expectedSha256?: string;
  dispatcher: Dispatcher;
  /** connect, headers and idle-body timeout (apt's Acquire::http::Timeout) */
  timeoutMs: number;
  maxRedirects?: number;
  userAgent?: string;
  signal?: AbortSignal;
  /** the response is in: apt may show it (200 URI Start) */
  onStart?: (size: number | undefined, lastModified: Date | undefined) => void;
}

export type MirrorResult =
  | { imsHit: true; lastModified?: Date }
  | { imsHit: false; size: number; lastModified?: Date; hashes: Partial<Record<AptHash, string>> };

const NODE_HASH: Record<AptHash, string> = { SHA512: 'sha512', SHA256: 'sha256', SHA1: 'sha1', MD5Sum: 'md5' };

/** 408, 429, 5xx gateway trouble: apt retries these (methods/basehttp.cc TransientCodes). */
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504, 599]);

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function httpDate(v: string | undefined): Date | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** A network-level error as apt reports it: reason and whether apt should retry. */
export function networkFailure(err: unknown): Failure {
  const code = String((err as { code?: string; cause?: { code?: string } })?.code ?? (err as { cause?: { code?: string } })?.cause?.code ?? '');
  const src = classify(err);
  if (code === 'ECONNREFUSED') return { message: `Could not connect: ${src.message}`, failReason: 'ConnectionRefused', transient: true };
  if (code === 'ENOTFOUND') return { message: `Could not resolve host: ${src.message}`, failReason: 'ResolveFailure', transient: true };
  if (code === 'EAI_AGAIN') return { message: `Temporary failure resolving: ${src.message}`, failReason: 'TmpResolveFailure', transient: true };
  if (src.kind === 'timeout') return { message: src.message, failReason: 'Timeout', transient: true };
  if (src.kind === 'tls') return { message: src.message };
  return { message: src.message, transient: src.kind === 'network' };
}

export async function mirrorFetch(o: MirrorFetchOptions): Promise<MirrorResult> {
  const { request } = await import('../fetch/undici-lean.js');
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let tmp: string | undefined;
  let fh: FileHandle | undefined;
  try {
    let url = o.url;
    let res: Dispatcher.ResponseData;
    for (let hops = 0; ; hops++) {
      const headers: Record<string, string> = { 'user-agent': o.userAgent ?? `passim/${version()} (apt method)`, accept: '*/*' };
      if (o.lastModified) headers['if-modified-since'] = o.lastModified.toUTCString();
      try {
        res = await request(url, {
          method: 'GET',
          headers,
          dispatcher: o.dispatcher,
          signal: ac.signal,
          headersTimeout: o.timeoutMs,
          bodyTimeout: o.timeoutMs,
        });
      } catch (err) {
        throw new MirrorError(networkFailure(err), { cause: err });
      }
      const status = res.statusCode;
      if ([301, 302, 303, 307, 308].includes(status)) {
        discard(res.body);
        const loc = header(res.headers, 'location');
        if (!loc) throw new MirrorError({ message: `${status} redirect without Location`, failReason: `HttpError${status}` });
        if (hops >= (o.maxRedirects ?? 10)) throw new MirrorError({ message: 'Redirection loop encountered', failReason: 'RedirectionLoop' });
        let next: URL;
        try {
          next = new URL(loc, url);
        } catch {
          throw new MirrorError({ message: `redirect to an invalid URL ${JSON.stringify(loc.slice(0, 100))}` });
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new MirrorError({ message: `Redirection from ${url.protocol.slice(0, -1)} to '${next.href}' is forbidden` });
        if (url.protocol === 'https:' && next.protocol === 'http:') throw new MirrorError({ message: `Redirection from https to '${next.href}' is forbidden` });
        url = next;
        continue;
      }
      if (status === 304 && o.lastModified) {
        discard(res.body);
        // as apt's http method: the partial file goes; apt keeps the one it has
        await unlink(o.filename).catch(() => {});
        return { imsHit: true, lastModified: o.lastModified };
      }
      if (status !== 200) {
        discard(res.body);
        throw new MirrorError({ message: `${status} ${STATUS_CODES[status] ?? ''}`.trim(), failReason: `HttpError${status}`, transient: TRANSIENT_STATUS.has(status) });
      }
      break;
    }
    res.body.on('error', () => {});

    const clHeader = header(res.headers, 'content-length');
    const contentLength = clHeader && /^\d{1,16}$/.test(clHeader.trim()) ? Number(clHeader.trim()) : undefined;
    const lastModified = httpDate(header(res.headers, 'last-modified'));
    if (o.maximumSize !== undefined && contentLength !== undefined && contentLength > o.maximumSize) {
      discard(res.body);
      throw new MirrorError({ message: `File has unexpected size (${contentLength} != ${o.maximumSize}). Mirror sync in progress?`, failReason: 'MaximumSizeExceeded' });
    }
    o.onStart?.(contentLength, lastModified);

    const dir = dirname(o.filename);
    tmp = tempPathFor(dir, basename(o.filename));
    try {
      fh = await open(tmp, 'wx', 0o644);
    } catch (err) {
      tmp = undefined;
      throw new MirrorError({ message: `cannot write in ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
    }
    const names: AptHash[] = ['SHA256', ...o.hashes.filter((h) => h !== 'SHA256')];
    const hashers: Array<[AptHash, Hash]> = names.map((h) => [h, createHash(NODE_HASH[h])]);
    let size = 0;
    let tooBig = false;
    res.body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (o.maximumSize !== undefined && size > o.maximumSize) {
        tooBig = true;
        ac.abort();
        return;
      }
      for (const [, h] of hashers) h.update(chunk);
    });
    const ws = fh.createWriteStream({ highWaterMark: 1024 * 1024, flush: true });
    try {
      await pipeline(res.body, ws, { signal: ac.signal });
    } catch (err) {
      if (tooBig) throw new MirrorError({ message: `Writing more data than expected (more than ${o.maximumSize} bytes)`, failReason: 'MaximumSizeExceeded' });
      throw new MirrorError(networkFailure(err), { cause: err });
    } finally {
      fh = undefined; // the write stream closed it
    }
    if (contentLength !== undefined && size !== contentLength) {
      throw new MirrorError({ message: `got ${size} bytes, Content-Length ${contentLength}`, transient: true });
    }
    const hashes: Partial<Record<AptHash, string>> = {};
    for (const [name, h] of hashers) hashes[name] = h.digest('hex');
    if (o.expectedSha256 && hashes.SHA256 !== o.expectedSha256) {
      throw new MirrorError({ message: `Hash Sum mismatch: the mirror sent ${size} bytes with sha256 ${hashes.SHA256!.slice(0, 12)}…`, failReason: 'HashSumMismatch' });
    }
    if (lastModified) await utimes(tmp, lastModified, lastModified);
    await rename(tmp, o.filename);
    tmp = undefined;
    return { imsHit: false, size, lastModified, hashes };
  } catch (err) {
    if (err instanceof MirrorError) throw err;
    throw new MirrorError(networkFailure(err), { cause: err });
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    if (fh) await fh.close().catch(() => {});
    if (tmp) await unlink(tmp).catch(() => {});
  }
}

