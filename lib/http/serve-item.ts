/**
 * Sends an item's bytes: 200 (or 206/416 for a single `Range: bytes=a-b`, so a client can resume),
 * with Content-Type, Content-Length, Content-Disposition, Accept-Ranges and an ETag of the hash.
 *
 * Share accounting for non-loopback peers: one share is reserved before anything is sent (so N
 * concurrent peers of an item with share-limit L get at most L full downloads), and recorded only
 * once the response has completed with every byte written; any other end releases it. A 206 that
 * delivers the last byte of the file completes a (resumed) download and counts; an earlier slice
 * does not. Loopback downloads never count.
 *
 * The file is opened before the response starts, so an item deleted meanwhile (share-limit reached
 * by another download, expiry, unpublish) is either served whole from the open descriptor or
 * reported as gone before any header is sent.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { ItemInfo, ItemStore } from '../store/types.js';
import type { Logger } from '../core/logger.js';
import { contentTypeFor } from './mime.js';
import { errorPage } from './error-page.js';
import { SpareBuffers } from './spare-buffers.js';

export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

/**
 * A single byte range per RFC 9110 §14: `bytes=a-b`, `bytes=a-`, `bytes=-n`. Invalid or multiple
 * ranges are ignored (full response), as the RFC allows; a valid range starting past the end is
 * unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return { kind: 'full' };
  const [, a, b] = m;
  if (a === '' && b === '') return { kind: 'full' };
  if (a.length > 15 || b.length > 15) return { kind: 'full' };
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (b !== '' && Number(b) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  const last = b === '' ? size - 1 : Number(b);
  return { kind: 'partial', start, end: Math.min(last, size - 1) };
}

/** `attachment; filename="<uri-escaped basename>"` (escaping keeps quotes and non-ASCII out of the header). */
export function contentDisposition(basename: string): string {
  return `attachment; filename="${encodeURIComponent(basename)}"`;
}

export interface ServeContext {
  store: ItemStore;
  /** normalised peer address */
  peer: string;
  loopback: boolean;
  logger: Logger;
}

export type ServeResult =
  /** nothing was sent: the peer may not have it (no share left) */
  | { kind: 'no-share' }
  /** nothing was sent: the file could not be opened (deleted meanwhile) */
  | { kind: 'gone' }
  /** a response was sent (or attempted); complete = every byte written */
  | { kind: 'sent'; status: number; bytes: number; complete: boolean; counted: boolean };

const READ_CHUNK = 256 * 1024;
/** kept between responses: the two buffers of each of 8 downloads at once (4 MiB) */
export const readBuffers = new SpareBuffers(READ_CHUNK, 16);

export async function serveItem(
  req: IncomingMessage,
  res: ServerResponse,
  item: ItemInfo,
  ctx: ServeContext,
): Promise<ServeResult> {
  const { store } = ctx;
  const reserved = !ctx.loopback;
  if (reserved && !store.reserveShare(item.hash)) return { kind: 'no-share' };
  let released = false;
  const release = () => {
    if (reserved && !released) {
      released = true;
      store.releaseShare(item.hash);
    }
  };

  let fh: FileHandle;
  let size: number;
  try {
    fh = await open(item.path, 'r');
  } catch (err) {
    ctx.logger.debug(`cannot open ${item.path}: ${(err as Error).message}`);
    release();
    return { kind: 'gone' };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (err) {
    ctx.logger.debug(`cannot stat ${item.path}: ${(err as Error).message}`);
    await fh.close().catch(() => {});
    release();
    return { kind: 'gone' };
  }

  const etag = `"${item.hash}"`;
  const ifRange = req.headers['if-range'];
  let range = parseRange(req.headers.range, size);
  if (ifRange !== undefined && String(ifRange).trim() !== etag) range = { kind: 'full' };

  if (range.kind === 'unsatisfiable') {
    await fh.close().catch(() => {});
    release();
    const body = errorPage(416, 'requested range not satisfiable');
    res.writeHead(416, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Content-Range': `bytes */${size}`,
      'Accept-Ranges': 'bytes',
    });
    res.end(body);
    return { kind: 'sent', status: 416, bytes: 0, complete: false, counted: false };
  }

  const start = range.kind === 'partial' ? range.start : 0;
  const end = range.kind === 'partial' ? range.end : size - 1;
  const length = size === 0 ? 0 : end - start + 1;
  const status = range.kind === 'partial' ? 206 : 200;
  const headers: Record<string, string | number> = {
    'Content-Type': contentTypeFor(item.basename),
    'Content-Length': length,
    'Content-Disposition': contentDisposition(item.basename),
    'Accept-Ranges': 'bytes',
    ETag: etag,
  };
  if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  res.writeHead(status, headers);

  let sent = 0;
  let ok = false;
  if (length === 0) {
    await fh.close().catch(() => {});
    ok = await new Promise<boolean>((resolve) => {
      res.end(() => resolve(true));
      res.once('close', () => resolve(res.writableFinished));
    });
  } else {
    try {
      sent = await sendRange(fh, res, start, end);
      ok = true;
    } catch (err) {
      ctx.logger.debug(`sending ${item.basename} to ${ctx.peer} stopped: ${(err as Error).message}`);
      res.destroy();
    } finally {
      await fh.close().catch(() => {});
    }
  }
  const complete = ok && sent === length && res.writableFinished;
  // a full body, or the tail that completes a resumed download, counts as one share
  const counts = reserved && complete && (status === 200 || end === size - 1);
  if (counts) {
    released = true;
    try {
      await store.recordShare(item.hash, ctx.peer, length);
    } catch (err) {
      ctx.logger.warn(`recording the share of ${item.hash} to ${ctx.peer}: ${(err as Error).message}`);
    }
  } else {
    release();
  }
  return { kind: 'sent', status, bytes: sent, complete, counted: counts };
}

/**
 * Sends bytes start..end of the open file through two buffers used in turn: the next chunk is
 * read while the previous one is being written, and a buffer is reused only once its write has
 * completed. The buffers come from readBuffers and go back there once the response has finished
 * (not when it was cut short: a write may still hold one), so serving takes no new memory per
 * chunk nor, after the first downloads, per response.
 * Resolves with the bytes written once the response has finished; rejects if the peer goes away.
 */
async function sendRange(fh: FileHandle, res: ServerResponse, start: number, end: number): Promise<number> {
  const bufs: Buffer[] = [];
  // The connection closing fails the one wait in progress. (Racing each wait against one promise
  // of the close instead left a reaction per chunk on that promise until the response ended:
  // ~10 MiB of old space serving 1 GiB to 8 peers at once.)
  let closed: Error | undefined;
  let failWait: ((err: Error) => void) | undefined;
  const onClose = () => {
    if (res.writableFinished) return;
    closed = new Error('connection closed');
    failWait?.(closed);
  };
  res.once('close', onClose);
  const unlessClosed = (p: Promise<void>) =>
    closed
      ? Promise.reject(closed)
      : new Promise<void>((resolve, reject) => {
        failWait = reject;
        p.then(resolve, reject);
      });
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve, reject) => {
      res.write(chunk, (err) => (err ? reject(err) : resolve()));
    });
  let pos = start;
  let sent = 0;
  let turn = 0;
  let inFlight: Promise<void> = Promise.resolve();
  try {
    while (pos <= end) {
      const buf = (bufs[turn] ??= readBuffers.take());
      turn ^= 1;
      const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, end - pos + 1), pos);
      if (bytesRead === 0) throw new Error('the file shrank while it was being sent');
      await unlessClosed(inFlight);
      inFlight = write(buf.subarray(0, bytesRead));
      inFlight.catch(() => {}); // a failed write is seen where inFlight is awaited, not as unhandled
      pos += bytesRead;
      sent += bytesRead;
    }
    await unlessClosed(inFlight);
    await unlessClosed(new Promise<void>((resolve) => res.end(() => resolve())));
    for (const b of bufs) readBuffers.give(b);
    return sent;
  } finally {
    res.off('close', onClose);
  }
}
