/**
 * `--sha256-url`: the small checksum file published beside a download (SHA256SUMS and friends),
 * fetched over verified TLS, and the sha256 for one name picked out of it.
 *
 * Accepted lines: `sha256sum` text/binary (`<hash>  NAME`, `<hash> *NAME`, and its `\`-escaped
 * form), BSD / `sha256sum --tag` (`SHA256 (NAME) = <hash>`), or a file holding just a bare hash.
 */
import type { Dispatcher } from 'undici';
import { request } from './undici-lean.js';
import { NotFoundError, PassimError } from '../core/errors.js';
import { isSha256 } from '../core/sha256.js';
import { version } from '../core/version.js';
import { discard } from './verified-download.js';

export const MAX_CHECKSUM_FILE = 1024 * 1024;

export interface ChecksumEntry {
  hash: string;
  name: string;
}

function unescapeName(s: string): string {
  return s.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}

/** Every (hash, name) line of a checksum file; a bare hash gives name ''. Other lines are ignored. */
export function parseChecksumFile(text: string): ChecksumEntry[] {
  const out: ChecksumEntry[] = [];
  for (let line of text.split('\n')) {
    line = line.replace(/\r$/, '').trim();
    if (!line || line.startsWith('#')) continue;
    const escaped = line.startsWith('\\');
    if (escaped) line = line.slice(1);
    let m = /^([0-9a-fA-F]{64})(?: [ *]|\t)(.+)$/.exec(line);
    if (m) {
      out.push({ hash: m[1].toLowerCase(), name: escaped ? unescapeName(m[2]) : m[2] });
      continue;
    }
    m = /^SHA256 ?\((.*)\) ?= ?([0-9a-fA-F]{64})$/i.exec(line);
    if (m) {
      out.push({ hash: m[2].toLowerCase(), name: escaped ? unescapeName(m[1]) : m[1] });
      continue;
    }
    if (isSha256(line)) out.push({ hash: line.toLowerCase(), name: '' });
  }
  return out;
}

function lastSegment(p: string): string {
  const parts = p.split('/');
  return parts[parts.length - 1];
}

/**
 * The hash for `name`: the line naming it exactly, else the one line whose path ends in `/name`,
 * else — when the file is just a bare hash — that hash. Throws NotFoundError otherwise.
 */
export function pickChecksum(entries: ChecksumEntry[], name: string, source = 'checksum file'): string {
  const exact = new Set(entries.filter((e) => e.name === name || e.name === `./${name}`).map((e) => e.hash));
  if (exact.size === 1) return [...exact][0];
  if (exact.size > 1) throw new PassimError(`${source} lists ${name} with different hashes`);
  const byBase = new Set(entries.filter((e) => e.name !== '' && lastSegment(e.name) === name).map((e) => e.hash));
  if (byBase.size === 1) return [...byBase][0];
  if (byBase.size > 1) throw new PassimError(`${source} lists several files named ${name}`);
  if (entries.length === 1 && entries[0].name === '') return entries[0].hash;
  if (entries.length === 0) throw new NotFoundError(`${source} holds no sha256`);
  throw new NotFoundError(`${source} has no sha256 for ${name}`);
}

export interface ChecksumFetchOptions {
  /** verifying dispatcher (the CDN one) */
  dispatcher: Dispatcher;
  signal?: AbortSignal;
  timeoutMs?: number;
  maxRedirects?: number;
}

/** Downloads the checksum file (≤ 1 MiB, https redirects only) and returns the hash for `name`. */
export async function fetchChecksum(url: string, name: string, opts: ChecksumFetchOptions): Promise<string> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const maxRedirects = opts.maxRedirects ?? 5;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PassimError(`not a URL: ${url}`);
  }
  const what = `checksum file ${u.href}`;
  try {
    for (let hops = 0; ; hops++) {
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new PassimError(`${what}: unsupported scheme ${u.protocol}`);
      const res = await request(u, {
        dispatcher: opts.dispatcher,
        signal,
        headers: { 'user-agent': `passim/${version()}`, accept: 'text/plain, */*' },
      });
      if (res.statusCode >= 300 && res.statusCode < 400) {
        discard(res.body);
        const loc = res.headers.location;
        if (typeof loc !== 'string' || hops >= maxRedirects) throw new PassimError(`${what}: too many or bad redirects`);
        const next = new URL(loc, u);
        if (u.protocol === 'https:' && next.protocol !== 'https:') throw new PassimError(`${what}: redirect from https to http refused`);
        u = next;
        continue;
      }
      if (res.statusCode === 404 || res.statusCode === 410) {
        discard(res.body);
        throw new NotFoundError(`${what}: HTTP ${res.statusCode}`);
      }
      if (res.statusCode !== 200) {
        discard(res.body);
        throw new PassimError(`${what}: HTTP ${res.statusCode}`);
      }
      const cl = Number(res.headers['content-length']);
      if (Number.isFinite(cl) && cl > MAX_CHECKSUM_FILE) {
        discard(res.body);
        throw new PassimError(`${what} is larger than 1 MiB`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_CHECKSUM_FILE) {
          discard(res.body);
          throw new PassimError(`${what} is larger than 1 MiB`);
        }
        chunks.push(chunk);
      }
      return pickChecksum(parseChecksumFile(Buffer.concat(chunks).toString('utf8')), name, what);
    }
  } catch (err) {
    if (err instanceof PassimError) throw err;
    const e = err as { code?: string; message?: string; name?: string };
    const reason = timeout.aborted ? 'timed out' : e.code ?? e.message ?? String(err);
    throw new PassimError(`cannot download ${what}: ${reason}`, { cause: err });
  }
}
