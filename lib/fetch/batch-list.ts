/**
 * The list `passim fetch --from FILE` reads: one file per line, `SHA256 NAME [URL…]`, fields
 * separated by spaces or tabs; blank lines and lines starting with `#` are ignored. The whole
 * list is checked before anything is downloaded: the first bad line is a UsageError naming its
 * line number (and the file).
 */
import { UsageError } from '../core/errors.js';
import { validateBasename } from '../core/basename.js';
import { isSha256 } from '../core/sha256.js';
import type { BatchEntry } from './batch-api.js';

/** Most lines a list may hold (a runaway pipe is an error, not a million downloads). */
export const MAX_BATCH_ENTRIES = 100_000;

/** An absolute http(s) URL (what a list line, --cdn and a fetch target may give). */
export function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Parses a list; `source` names it in errors (a path, or "stdin"). */
export function parseBatchList(text: string, source = 'list'): BatchEntry[] {
  const out: BatchEntry[] = [];
  const names = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i]!.replace(/\r$/, '').trim();
    if (!line || line.startsWith('#')) continue;
    const bad = (why: string) => new UsageError(`${source}:${n}: ${why}`);
    const [hash, name, ...urls] = line.split(/[ \t]+/) as [string, ...string[]];
    if (!isSha256(hash)) throw bad(`expected "SHA256 NAME [URL…]": ${JSON.stringify(String(hash).slice(0, 80))} is not 64 hex digits`);
    if (name === undefined) throw bad('a NAME is missing after the sha256');
    try {
      validateBasename(name);
    } catch (err) {
      throw bad((err as Error).message);
    }
    for (const u of urls) if (!isHttpUrl(u)) throw bad(`not an http(s) URL: ${JSON.stringify(u.slice(0, 200))}`);
    const first = names.get(name);
    if (first !== undefined) throw bad(`${name} is listed twice (first on line ${first}): both would write the same file`);
    names.set(name, n);
    if (out.length >= MAX_BATCH_ENTRIES) throw bad(`more than ${MAX_BATCH_ENTRIES} files in one list`);
    out.push({ sha256: hash.toLowerCase(), name, urls });
  }
  return out;
}
