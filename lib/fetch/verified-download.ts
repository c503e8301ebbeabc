/**
 * Downloads one URL into a temp file beside the target, hashing while streaming, and returns the
 * temp file only when the bytes hash to the expected sha256. Anything else — wrong status, wrong
 * length, too slow, too big, redirect not allowed, TLS or network trouble, wrong bytes — throws a
 * SourceError and leaves no temp file behind.
 */
import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { request, type Dispatcher } from 'undici';
import { newSha256 } from '../core/sha256.js';
import { version } from '../core/version.js';
import type { SourceLimits } from './limits.js';

export type SourceErrorKind =
  | 'mismatch' // a complete body with the wrong sha256: the source served wrong bytes
  | 'status'
  | 'length'
  | 'too-large'
  | 'too-slow'
  | 'timeout'
  | 'redirect'
  | 'tls'
  | 'network'
  | 'aborted'
  | 'fatal'; // our side (cannot write the temp file): no point trying other sources

export class SourceError extends Error {
  constructor(readonly kind: SourceErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SourceError';
  }
}

/** Which redirects a source may follow: peers stay on their own origin; the CDN may go anywhere but never https → http. */
export type RedirectPolicy = 'none' | 'same-origin' | 'no-downgrade';

export interface DownloadOptions {
  url: string;
  dispatcher: Dispatcher;
  expectedSha256: string;
  /** if known in advance (the local daemon's item size): a different Content-Length is refused at once */
  expectedSize?: number;
  /** directory of the temp file (the target's directory, so the final rename is atomic) */
  dir: string;
  /** name used inside the temp file name `.<name>.passim-XXXXXXXX.tmp` */
  name: string;
  limits: SourceLimits;
  redirects: RedirectPolicy;
  /** refuse a 200 without Content-Length (passim peers always send one) */
  requireContentLength?: boolean;
  /** fsync the temp file before returning it (default true; a file only piped to stdout needs none) */
  fsync?: boolean;
  signal?: AbortSignal;
  onProgress?: (received: number, total: number | undefined) => void;
}

export interface DownloadResult {
  tmpPath: string;
  sha256: string;
  size: number;
  /** the URL that served the bytes, after redirects */
  url: string;
}

export function tempPathFor(dir: string, name: string): string {
  // keep the temp name well under NAME_MAX even for a 255-byte target name
  let short = name;
  while (Buffer.byteLength(short) > 200) short = short.slice(0, -1);
  return join(dir, `.${short}.passim-${randomBytes(4).toString('hex')}.tmp`);
}

const TLS_CODES = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME|ERR_OSSL|EPROTO/;

/** Turns whatever undici / node threw into a SourceError with a short reason. */
export function classify(err: unknown): SourceError {
  if (err instanceof SourceError) return err;
  const e = err as { code?: string; message?: string; name?: string; cause?: unknown };
  const code = e?.code ?? '';
  const msg = (e?.message ?? String(err)).split('\n')[0];
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT': return new SourceError('timeout', 'connect/TLS handshake timed out', { cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT': return new SourceError('timeout', 'no response headers in time', { cause: err });
    case 'UND_ERR_BODY_TIMEOUT': return new SourceError('timeout', 'body stalled', { cause: err });
    case 'UND_ERR_HEADERS_OVERFLOW': return new SourceError('too-large', 'response headers too large', { cause: err });
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH': return new SourceError('length', 'body length does not match Content-Length', { cause: err });
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE': return new SourceError('too-large', 'response too large', { cause: err });
    case 'UND_ERR_SOCKET': return new SourceError('network', `connection closed early (${msg})`, { cause: err });
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return new SourceError('network', `bad HTTP response (${msg})`, { cause: err });
    default: break;
  }
  if (code.startsWith('HPE_')) return new SourceError('network', `bad HTTP response (${code})`, { cause: err });
  if (TLS_CODES.test(code)) return new SourceError('tls', `TLS: ${code}`, { cause: err });
  if (e?.name === 'AbortError' || code === 'ABORT_ERR' || code === 'UND_ERR_ABORTED') {
    return new SourceError('aborted', 'aborted', { cause: err });
  }
  if (code) return new SourceError('network', `${code}${msg && !msg.includes(code) ? `: ${msg}` : ''}`, { cause: err });
  return new SourceError('network', msg || 'failed', { cause: err });
}

function sameOrigin(a: URL, b: URL): boolean {
  return a.protocol === b.protocol && a.hostname === b.hostname && a.port === b.port;
}

/** Drops a body we will not read (its 'error' on destroy is expected, not a crash). */
export function discard(body: { on(ev: 'error', fn: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => {});
  body.destroy();
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Downloads, verifies and returns the temp file; throws SourceError, never leaves a temp file on failure. */
export async function verifiedDownload(opts: DownloadOptions): Promise<DownloadResult> {
  const { limits } = opts;
  const ac = new AbortController();
  let failure: SourceError | undefined;
  const fail = (e: SourceError) => {
    if (!failure) failure = e;
    ac.abort(e);
  };
  const onOuterAbort = () => fail(new SourceError('aborted', 'aborted'));
  if (opts.signal?.aborted) throw new SourceError('aborted', 'aborted');
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });

  // overall deadline: base until the size is known, then base + size / rate
  const started = Date.now();
  let deadlineTimer: NodeJS.Timeout | undefined;
  const armDeadline = (ms: number) => {
    if (deadlineTimer) clearTimeout(deadlineTimer);
    const left = Math.max(0, ms - (Date.now() - started));
    deadlineTimer = setTimeout(() => fail(new SourceError('timeout', `deadline of ${Math.round(ms)} ms passed`)), left);
  };
  armDeadline(limits.baseDeadlineMs);
  let rateTimer: NodeJS.Timeout | undefined;

  let fh: FileHandle | undefined;
  let tmpPath: string | undefined;
  try {
    // 1. request, following redirects by policy
    let url = new URL(opts.url);
    let res: Dispatcher.ResponseData;
    for (let hops = 0; ; hops++) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new SourceError('redirect', `unsupported URL scheme ${url.protocol}`);
      res = await request(url, {
        method: 'GET',
        dispatcher: opts.dispatcher,
        signal: ac.signal,
        headersTimeout: limits.headersTimeoutMs,
        bodyTimeout: limits.bodyTimeoutMs,
        headers: { 'user-agent': `passim/${version()}`, accept: '*/*' },
      });
      const status = res.statusCode;
      if (status >= 300 && status < 400 && status !== 304) {
        discard(res.body);
        const loc = header(res.headers, 'location');
        if (!loc) throw new SourceError('redirect', `HTTP ${status} without Location`);
        if (opts.redirects === 'none') throw new SourceError('redirect', `redirect (HTTP ${status}) not allowed`);
        if (hops >= limits.maxRedirects) throw new SourceError('redirect', `more than ${limits.maxRedirects} redirects`);
        let next: URL;
        try {
          next = new URL(loc, url);
        } catch {
          throw new SourceError('redirect', 'redirect to an invalid URL');
        }
        if (opts.redirects === 'same-origin' && !sameOrigin(url, next)) {
          throw new SourceError('redirect', `redirect to another host (${next.host}) not allowed for a peer`);
        }
        if (opts.redirects === 'no-downgrade' && url.protocol === 'https:' && next.protocol !== 'https:') {
          throw new SourceError('redirect', 'redirect from https to http not allowed');
        }
        url = next;
        continue;
      }
      if (status !== 200) {
        discard(res.body);
        throw new SourceError('status', `HTTP ${status}`);
      }
      break;
    }

    // errors of a body we end up not reading (aborted below) are not crashes; pipeline sees its own
    res.body.on('error', () => {});

    // 2. check the framing before writing a byte
    const clHeader = header(res.headers, 'content-length');
    let contentLength: number | undefined;
    if (clHeader !== undefined) {
      if (!/^\d{1,16}$/.test(clHeader.trim())) throw new SourceError('length', `bad Content-Length ${JSON.stringify(clHeader.slice(0, 40))}`);
      contentLength = Number(clHeader.trim());
    } else if (opts.requireContentLength) {
      throw new SourceError('length', 'no Content-Length');
    }
    if (contentLength !== undefined && opts.expectedSize !== undefined && contentLength !== opts.expectedSize) {
      throw new SourceError('length', `Content-Length ${contentLength}, expected ${opts.expectedSize}`);
    }
    const limit = opts.expectedSize ?? contentLength ?? limits.maxSize;
    if (limit > limits.maxSize) throw new SourceError('too-large', `size ${limit} over the limit of ${limits.maxSize}`);
    const known = opts.expectedSize ?? contentLength;
    if (known !== undefined && limits.deadlineBytesPerSec > 0) {
      armDeadline(limits.baseDeadlineMs + (known / limits.deadlineBytesPerSec) * 1000);
    }

    // 3. stream: hash and count on 'data', write through a write stream (reads and writes overlap)
    tmpPath = tempPathFor(opts.dir, opts.name);
    try {
      fh = await open(tmpPath, 'wx', 0o644);
    } catch (err) {
      tmpPath = undefined;
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new SourceError('fatal', `cannot create a temp file in ${opts.dir}: ${code}`, { cause: err });
    }
    const hash = newSha256();
    let received = 0;
    let lastWindow = 0;
    const body = res.body;
    if (limits.minBytesPerSec > 0 && limits.rateWindowMs > 0) {
      const need = (limits.minBytesPerSec * limits.rateWindowMs) / 1000;
      rateTimer = setInterval(() => {
        const got = received - lastWindow;
        lastWindow = received;
        if (got < need) {
          fail(new SourceError('too-slow', `under ${Math.round(limits.minBytesPerSec / 1024)} KiB/s (${got} bytes in ${limits.rateWindowMs} ms)`));
        }
      }, limits.rateWindowMs);
      rateTimer.unref?.();
    }
    body.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) {
        fail(new SourceError(contentLength !== undefined || opts.expectedSize !== undefined ? 'length' : 'too-large',
          contentLength !== undefined ? 'more bytes than Content-Length' : `more than ${limit} bytes`));
        return;
      }
      hash.update(chunk);
      opts.onProgress?.(received, known);
    });
    // the stream owns the handle: it fsyncs (flush) and closes it when done or destroyed
    const ws = fh.createWriteStream({ highWaterMark: 1024 * 1024, flush: opts.fsync !== false });
    await pipeline(body, ws, { signal: ac.signal });
    fh = undefined;
    if (failure) throw failure;
    if (contentLength !== undefined && received !== contentLength) {
      throw new SourceError('length', `got ${received} bytes, Content-Length ${contentLength}`);
    }
    const sha256 = hash.digest('hex');
    if (sha256 !== opts.expectedSha256) {
      throw new SourceError('mismatch', `checksum mismatch (got ${sha256.slice(0, 12)}…, ${received} bytes)`);
    }
    const out: DownloadResult = { tmpPath, sha256, size: received, url: url.href };
    tmpPath = undefined; // the caller owns it now
    return out;
  } catch (err) {
    throw failure ?? classify(err);
  } finally {
    if (deadlineTimer) clearTimeout(deadlineTimer);
    if (rateTimer) clearInterval(rateTimer);
    opts.signal?.removeEventListener('abort', onOuterAbort);
    if (!ac.signal.aborted) ac.abort(); // releases the connection if anything is still open
    if (fh) await fh.close().catch(() => {});
    if (tmpPath) await unlink(tmpPath).catch(() => {});
  }
}
