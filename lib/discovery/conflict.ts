/**
 * Name conflicts (RFC 6762 §8.2, §9): a record received for one of our unique names whose data
 * is not ours, and the simultaneous-probe tie-break.
 */
import { nameKey } from './names.js';
import { rdataBytes, rdataKey, rrsetKey, type RR } from './records.js';

const UNIQUE_TYPES = new Set(['SRV', 'TXT', 'A', 'AAAA']);

/**
 * Names (lower case) among `ours` that `theirs` conflicts with: same name and a type we hold as
 * unique, with data we do not have. Goodbyes (TTL 0) never conflict. Addresses that belong to
 * this host (e.g. Avahi publishing the same host name for another interface) do not conflict.
 */
export function conflictingNames(ours: RR[], theirs: RR[], ownAddresses: Set<string> = new Set()): Set<string> {
  const mine = new Map<string, Set<string>>();
  const names = new Set<string>();
  for (const rr of ours) {
    names.add(nameKey(rr.name));
    const k = rrsetKey(rr);
    if (!mine.has(k)) mine.set(k, new Set());
    mine.get(k)!.add(rdataKey(rr));
  }
  const out = new Set<string>();
  for (const rr of theirs) {
    const n = nameKey(rr.name);
    if (!names.has(n) || rr.ttl === 0 || !UNIQUE_TYPES.has(rr.type)) continue;
    const set = mine.get(rrsetKey(rr));
    if (!set) continue; // a type we do not claim (e.g. HINFO for the host name)
    const rd = rdataKey(rr);
    if (set.has(rd)) continue;
    if ((rr.type === 'A' || rr.type === 'AAAA') && ownAddresses.has(rd)) continue;
    out.add(n);
  }
  return out;
}

function compareBytes(a: Buffer, b: Buffer): number {
  const c = Buffer.compare(a, b);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

const CLASS_IN = 1;
const TYPE_NUM: Record<string, number> = { A: 1, PTR: 12, TXT: 16, AAAA: 28, SRV: 33 };

function sortKey(rr: RR): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(CLASS_IN, 0);
  head.writeUInt16BE(TYPE_NUM[rr.type] ?? 0, 2);
  return Buffer.concat([head, rdataBytes(rr)]);
}

/**
 * Simultaneous probe tie-break for one name (RFC 6762 §8.2): records sorted, compared pairwise by
 * class, type, rdata bytes; the longer list wins when one is a prefix of the other.
 * Returns -1 when ours is lexicographically earlier (we lose), 1 when later (we win), 0 when equal.
 */
export function tiebreak(ours: RR[], theirs: RR[]): number {
  const a = ours.map(sortKey).sort(Buffer.compare);
  const b = theirs.map(sortKey).sort(Buffer.compare);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareBytes(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
