/**
 * The SRV and A/AAAA records of one mDNS message, applied to a browser's tables of instances and
 * host addresses — the same rules for the single-hash browser (browser.ts) and the many-hash
 * session (browse-many.ts): a goodbye (TTL 0) drops, a port outside 1–65535 is ignored, and an
 * address is kept only for the SRV target of a tracked instance, when `usable` allows it, and up to
 * MAX_ADDRESSES_PER_HOST per host. Apply the SRVs before the addresses of the same message.
 */
import { nameKey } from './names.js';
import type { RR } from './records.js';

export const MAX_ADDRESSES_PER_HOST = 16;

/** What these records fill in for an instance. */
export interface Resolvable {
  srv?: { port: number; target: string };
}

/** Sets or drops the SRV of each instance `find` knows by name key; true when one changed. */
export function applySrvRecords(recs: RR[], find: (key: string) => Resolvable | undefined): boolean {
  let changed = false;
  for (const rr of recs) {
    if (rr.type !== 'SRV') continue;
    const st = find(nameKey(rr.name));
    if (!st) continue;
    if (rr.ttl === 0) {
      st.srv = undefined;
      continue;
    }
    if (rr.data.port < 1 || rr.data.port > 65535) continue;
    if (!st.srv || st.srv.port !== rr.data.port || nameKey(st.srv.target) !== nameKey(rr.data.target)) {
      st.srv = { port: rr.data.port, target: rr.data.target.replace(/\.$/, '') };
      changed = true;
    }
  }
  return changed;
}

/**
 * Adds (or, on a goodbye, drops) the addresses of the instances' SRV targets: `addresses` maps a
 * host's name key to its addresses (lower-case) and the link each came on. True when one was added.
 */
export function applyAddressRecords<L>(
  recs: RR[],
  instances: Iterable<Resolvable>,
  addresses: Map<string, Map<string, L>>,
  link: L,
  usable: (address: string) => boolean,
): boolean {
  let changed = false;
  let targets: Set<string> | undefined;
  for (const rr of recs) {
    if (rr.type !== 'A' && rr.type !== 'AAAA') continue;
    const host = nameKey(rr.name);
    const address = rr.data.toLowerCase();
    let m = addresses.get(host);
    if (rr.ttl === 0) {
      m?.delete(address);
      continue;
    }
    targets ??= new Set([...instances].flatMap((st) => (st.srv ? [nameKey(st.srv.target)] : [])));
    if (!targets.has(host) || !usable(rr.data)) continue;
    if (!m) addresses.set(host, (m = new Map()));
    if (!m.has(address) && m.size < MAX_ADDRESSES_PER_HOST) {
      m.set(address, link);
      changed = true;
    }
  }
  return changed;
}
