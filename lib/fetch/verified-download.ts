/**
 * Downloads one URL into a temp file beside the target, hashing while streaming (this thread
 * receives; a worker hashes and writes in parallel, see core/hash-writer.ts), and returns the temp file
 * only when the bytes hash to the expected sha256. Anything else — wrong status, wrong
 * length, too slow, too big, redirect not allowed, TLS or network trouble, wrong bytes — throws a
 * SourceError and leaves no temp file behind.
 */
import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { acquireHashWriter, HashWriterError, WORKER_MIN_SIZE, type HashingSink } from '../core/hash-writer.js';
import { InlineHashWriter } from './inline-hash-writer.js';
import { version } from '../core/version.js';
import type { SourceLimits } from './limits.js';
import { peerRequest, type PeerBody, type PeerConnections } from './peer-request.js';
import { SourceError } from './source-error.js';

/** Least time between two onProgress calls during a body. */
const PROGRESS_MS = 16;

export { SourceError, type SourceErrorKind } from './source-error.js';

/** Which redirects a source may follow: peers stay on their own origin; the CDN may go anywhere but never https → http. */
export type RedirectPolicy = 'none' | 'same-origin' | 'no-downgrade';

export interface DownloadOptions {
  url: string;
  /**
   * undici's connection pool for the URL; or 'peer': a plain TLS socket per download
   * (peer-request.ts: a quarter of the CPU per byte, certificates NOT verified — peers only)
   */
  dispatcher: Dispatcher | 'peer';
  /** with 'peer': kept-alive connections to reuse and return (without, one connection per download) */
  peerConnections?: PeerConnections;
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
  /** a body known to be at most this many bytes is also returned in memory (`bytes`), to publish without reading it back */
  keepUpTo?: number;
  /** called once the whole body is in (its size), before it is verified and (fsync) flushed to disk */
  onReceived?: (bytes: number) => void;
}

export interface DownloadResult {
  tmpPath: string;
  sha256: string;
  size: number;
  /** the URL that served the bytes, after redirects */
  url: string;
  /** the verified bytes, when asked for (keepUpTo) */
  bytes?: Buffer;
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
  let progressTimer: NodeJS.Timeout | undefined;

  let fh: FileHandle | undefined;
  let tmpPath: string | undefined;
  let writer: HashingSink | undefined;
  let writing = false;
  /** the body was read to its end: undici has released the connection, nothing is left to abort */
  let bodyDone = false;
  try {
    // 1. request, following redirects by policy
    let url = new URL(opts.url);
    let res: { statusCode: number; headers: Record<string, string | string[] | undefined>; body: Dispatcher.ResponseData['body'] | PeerBody };
    const headers = { 'user-agent': `passim/${version()}`, accept: '*/*' };
    const { dispatcher } = opts;
    for (let hops = 0; ; hops++) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new SourceError('redirect', `unsupported URL scheme ${url.protocol}`);
      res = dispatcher === 'peer'
        ? await peerRequest(url, {
          signal: ac.signal,
          connectTimeoutMs: limits.connectTimeoutMs,
          headersTimeoutMs: limits.headersTimeoutMs,
          bodyTimeoutMs: limits.bodyTimeoutMs,
          maxHeaderSize: limits.maxHeaderSize,
          headers,
        }, opts.peerConnections)
        : await (await import('./undici-lean.js')).request(url, {
          method: 'GET',
          dispatcher,
          signal: ac.signal,
          headersTimeout: limits.headersTimeoutMs,
          bodyTimeout: limits.bodyTimeoutMs,
          headers,
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

    // errors of a body we end up not reading (aborted below) are not crashes; step 3 listens for its own
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

    // 3. stream: this thread receives (TLS, HTTP) and counts; the writer's worker hashes and
    //    writes the batches in parallel (core/hash-writer.ts); its buffer pool is the backpressure
    tmpPath = tempPathFor(opts.dir, opts.name);
    try {
      fh = await open(tmpPath, 'wx', 0o644);
    } catch (err) {
      tmpPath = undefined;
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new SourceError('fatal', `cannot create a temp file in ${opts.dir}: ${code}`, { cause: err });
    }
    // big (or unknown) bodies: a worker hashes and writes; small ones: this thread
    // (PASSIM_FETCH_HASHING=worker|inline forces one, to compare them: bench/measures/peer-download.ts)
    const forced = process.env.PASSIM_FETCH_HASHING;
    const inline = forced === 'inline' || (forced !== 'worker' && known !== undefined && known < WORKER_MIN_SIZE);
    const w: HashingSink = inline ? new InlineHashWriter() : acquireHashWriter();
    writer = w;
    w.onError = (err) => fail(new SourceError('fatal', err.message, { cause: err }));
    // a file fsynced at the end may skip the page cache (hash-write-worker.ts: O_DIRECT)
    w.begin(fh.fd, { direct: opts.fsync !== false });
    writing = true;
    let received = 0;
    let lastWindow = 0;
    const body = res.body;
    // the chunks are the body's own (the writer keeps them until written, too): no copy until the end
    const kept: Buffer[] | undefined = known !== undefined && known <= (opts.keepUpTo ?? -1) ? [] : undefined;
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
    let lastProgress = 0;
    let reported = 0;
    const report = (now: number) => {
      if (progressTimer) clearTimeout(progressTimer);
      progressTimer = undefined;
      lastProgress = now;
      if (received === reported || failure) return;
      reported = received;
      opts.onProgress?.(received, known);
    };
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(ac.signal.reason);
      if (ac.signal.aborted) return onAbort();
      ac.signal.addEventListener('abort', onAbort, { once: true });
      w.onDrain = () => body.resume();
      body.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > limit) {
          fail(new SourceError(contentLength !== undefined || opts.expectedSize !== undefined ? 'length' : 'too-large',
            contentLength !== undefined ? 'more bytes than Content-Length' : `more than ${limit} bytes`));
          return;
        }
        kept?.push(chunk);
        if (!w.write(chunk)) body.pause();
        if (opts.onProgress) {
          // at most every PROGRESS_MS (a GiB is 65,536 TLS records); a skipped count is reported
          // by a trailing call, so the last one before a stall is never lost
          const now = performance.now();
          if (now - lastProgress >= PROGRESS_MS || received === known) report(now);
          else progressTimer ??= setTimeout(() => report(performance.now()), PROGRESS_MS);
        }
      });
      body.once('end', () => {
        bodyDone = true;
        ac.signal.removeEventListener('abort', onAbort);
        resolve();
      });
      body.once('error', (err) => {
        ac.signal.removeEventListener('abort', onAbort);
        reject(err);
      });
    });
    if (failure) throw failure;
    // the source is done sending: the rate check is about it, not about our fsync below
    if (rateTimer) clearInterval(rateTimer);
    rateTimer = undefined;
    opts.onReceived?.(received);
    if (contentLength !== undefined && received !== contentLength) {
      throw new SourceError('length', `got ${received} bytes, Content-Length ${contentLength}`);
    }
    // every byte hashed, written and (unless only piped to stdout) fsynced
    const done = await w.end(opts.fsync !== false);
    writing = false;
    if (failure) throw failure;
    if (done.size !== received) throw new SourceError('fatal', `wrote ${done.size} of ${received} bytes`);
    const sha256 = done.sha256;
    if (sha256 !== opts.expectedSha256) {
      throw new SourceError('mismatch', `checksum mismatch (got ${sha256.slice(0, 12)}…, ${received} bytes)`);
    }
    const out: DownloadResult = { tmpPath, sha256, size: received, url: url.href };
    // a copy: a chunk may be a view into a much larger buffer (peer-request.ts's 1 MiB slabs)
    if (kept) out.bytes = Buffer.concat(kept, received);
    tmpPath = undefined; // the caller owns it now
    return out;
  } catch (err) {
    if (!failure && err instanceof HashWriterError) throw new SourceError('fatal', err.message, { cause: err });
    throw failure ?? classify(err);
  } finally {
    if (deadlineTimer) clearTimeout(deadlineTimer);
    if (rateTimer) clearInterval(rateTimer);
    if (progressTimer) clearTimeout(progressTimer);
    opts.signal?.removeEventListener('abort', onOuterAbort);
    // releases the connection if anything is still open (not after a complete body: an abort
    // builds an error with a stack, a cost every small file would pay for nothing)
    if (!bodyDone && !ac.signal.aborted) ac.abort();
    // the worker must be done with the fd before it is closed (and its number reused)
    if (writing) await writer?.stop();
    writer?.release();
    if (fh) await fh.close().catch(() => {});
    if (tmpPath) await unlink(tmpPath).catch(() => {});
  }
}
