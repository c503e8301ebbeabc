/**
 * The decision for one request, in upstream passimd's exact order of checks (NOTES.md):
 *
 *   non-GET (HEAD too) → 403 · `/` → index (loopback only, else 403) · `/favicon.ico`, `/style.css`
 *   loopback only · no query → 400 · sha256 given twice → 400 · bad `localhost=` → 400 ·
 *   no sha256 → 400 · not 64 hex → 406 · non-loopback peer within Cooldown → 403 ·
 *   item held and localhost≠false → disabled ? 423 : 200 · not held and not loopback → 403 ·
 *   loopback → redirect to a peer (302) or 404.
 *
 * Pure apart from the two callbacks it is given (cooldown and item lookup); the server acts on
 * the outcome. Upper-case hashes are accepted and normalised (upstream never matched them).
 */
import { isSha256 } from '../core/sha256.js';
import type { ItemInfo } from '../store/types.js';

export type Outcome =
  | { kind: 'error'; status: number; reason: string }
  | { kind: 'index' }
  | { kind: 'asset'; name: 'favicon.ico' | 'style.css' }
  | { kind: 'serve'; item: ItemInfo }
  /** loopback, not served locally: ask mDNS for a peer, 302 there or 404 */
  | { kind: 'redirect'; hash: string; basename: string };

export interface RequestFacts {
  method: string;
  /** the request target as received (origin-form "/name?query", or absolute-form) */
  url: string;
  /** normalised peer address (no ::ffff: prefix) */
  peer: string;
  loopback: boolean;
}

export interface CheckContext {
  /** true when `peer` asked for `hash` within the cooldown (refuse); else starts its window */
  cooldownHit(peer: string, hash: string): boolean;
  lookup(hash: string): ItemInfo | undefined;
}

export interface ParsedTarget {
  /** raw path, without query or fragment */
  path: string;
  /** raw query without "?", or undefined when there was no "?" */
  query: string | undefined;
}

/** Splits a request target into raw path and raw query; absolute-form targets are reduced to their path. */
export function splitTarget(url: string): ParsedTarget {
  let target = url;
  if (!target.startsWith('/')) {
    // absolute-form (proxy style) or garbage: keep what follows the authority
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*(.*)$/.exec(target);
    target = m ? m[1] || '/' : target;
  }
  const hashAt = target.indexOf('#');
  if (hashAt >= 0) target = target.slice(0, hashAt);
  const q = target.indexOf('?');
  if (q < 0) return { path: target, query: undefined };
  return { path: target.slice(0, q), query: target.slice(q + 1) };
}

/** The last path segment, percent-decoded when that is valid UTF-8, else as received. */
export function basenameFromPath(path: string): string {
  const seg = path.slice(path.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(seg);
  } catch {
    return seg;
  }
}

function err(status: number, reason: string): Outcome {
  return { kind: 'error', status, reason };
}

export function checkRequest(req: RequestFacts, ctx: CheckContext): Outcome {
  if (req.method !== 'GET') return err(403, `method ${req.method.slice(0, 20)} not allowed`);

  const { path, query } = splitTarget(req.url);

  if (path === '/') return req.loopback ? { kind: 'index' } : err(403, 'the index is only available from localhost');
  if (path === '/favicon.ico' || path === '/style.css') {
    return req.loopback ? { kind: 'asset', name: path.slice(1) as 'favicon.ico' | 'style.css' } : err(403, 'only available from localhost');
  }

  if (query === undefined || query === '') return err(400, 'no query: expected ?sha256=<hash>');

  const params = new URLSearchParams(query);
  const hashes = params.getAll('sha256');
  if (hashes.length > 1) return err(400, 'sha256 given more than once');

  const localhostValues = params.getAll('localhost');
  if (localhostValues.length > 1) return err(400, 'localhost given more than once');
  let allowLocal = true;
  if (localhostValues.length === 1) {
    const v = localhostValues[0];
    if (v === 'false') allowLocal = false;
    else if (v !== 'true') return err(400, 'localhost must be true or false');
  }

  if (hashes.length === 0) return err(400, 'no sha256 in the query');
  const raw = hashes[0];
  if (!isSha256(raw)) return err(406, 'sha256 must be 64 hexadecimal digits');
  const hash = raw.toLowerCase();

  if (!req.loopback && ctx.cooldownHit(req.peer, hash)) {
    return err(403, 'too many requests for this item: try again later');
  }

  if (allowLocal) {
    const item = ctx.lookup(hash);
    if (item) {
      if (item.disabled) return err(423, 'this item is not available until the next reboot');
      return { kind: 'serve', item };
    }
  }

  if (!req.loopback) return err(403, 'not available here');
  return { kind: 'redirect', hash, basename: basenameFromPath(path) };
}
