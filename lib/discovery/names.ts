/**
 * mDNS / DNS-SD names used by passim (SPEC §4), shared by the responder and the browser.
 *
 * Instance names are `Passim-XXXX` (4 upper-case hex digits, random at each start, as upstream).
 * On a name conflict we rename the way Avahi does for upstream (avahi_alternative_service_name):
 * `Passim-1A2B` → `Passim-1A2B #2` → `Passim-1A2B #3` …; host names get `-2`, `-3` … as Avahi's
 * avahi_alternative_host_name does. Deterministic renames keep the 4-hex identity recognisable.
 */
import { randomInt } from 'node:crypto';
import { normaliseSha256 } from '../core/sha256.js';

export const DOMAIN = 'local';
export const SERVICE = '_cache._tcp.local';
export const SERVICES_META = '_services._dns-sd._udp.local';
/** Length of the hash prefix in a subtype label: a DNS label holds 63 bytes ("_" + 60 + room). */
export const SUBTYPE_HASH_CHARS = 60;
const SUBTYPE_SUFFIX = `._sub.${SERVICE}`;

/** `_<first 60 hex of sha256>._sub._cache._tcp.local` (lower case). Throws InvalidHashError. */
export function subtypeName(sha256: string): string {
  return `_${normaliseSha256(sha256).slice(0, SUBTYPE_HASH_CHARS)}${SUBTYPE_SUFFIX}`;
}

/** The 60-hex key of a subtype name (lower case), or undefined when the name is not one of ours. */
export function subtypeKeyOf(name: string): string | undefined {
  const n = name.toLowerCase();
  if (!n.endsWith(SUBTYPE_SUFFIX)) return undefined;
  const label = n.slice(0, -SUBTYPE_SUFFIX.length);
  return /^_[0-9a-f]{60}$/.test(label) ? label.slice(1) : undefined;
}

/** The subtype table key for a hash (first 60 hex, lower case). */
export function subtypeKey(sha256: string): string {
  return normaliseSha256(sha256).slice(0, SUBTYPE_HASH_CHARS);
}

/** `Passim-XXXX` with 4 random upper-case hex digits, as upstream's `Passim-%04X`. */
export function randomInstanceName(): string {
  return `Passim-${randomInt(0, 0x10000).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** `<instance>._cache._tcp.local`; the instance label may hold spaces and `#` (DNS-SD allows any UTF-8). */
export function instanceFqdn(instance: string): string {
  return `${instance}.${SERVICE}`;
}

/** The instance label of `<instance>._cache._tcp.local`, or undefined. Labels containing dots are not supported. */
export function instanceOf(fqdn: string): string | undefined {
  const suffix = `.${SERVICE}`;
  if (!fqdn.toLowerCase().endsWith(suffix)) return undefined;
  const label = fqdn.slice(0, -suffix.length);
  return label.length > 0 && label.length <= 63 && !label.includes('.') ? label : undefined;
}

/** `<host>.local` */
export function hostFqdn(host: string): string {
  return `${host}.${DOMAIN}`;
}

/** First label of a host name, reduced to letters, digits and '-' (what mDNS host names allow), ≤ 63 bytes. */
export function sanitiseHostName(name: string): string {
  const first = name.split('.')[0] ?? '';
  const clean = first.replace(/[^A-Za-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return clean || 'passim';
}

/** Next alternative instance name after a conflict: `X` → `X #2`, `X #n` → `X #n+1`. */
export function nextInstanceName(name: string): string {
  const m = /^(.*) #(\d+)$/.exec(name);
  const base = m ? m[1]! : name;
  const n = m ? Number(m[2]) + 1 : 2;
  const suffix = ` #${n}`;
  // keep the label within 63 bytes
  let b = base;
  while (Buffer.byteLength(b + suffix) > 63) b = b.slice(0, -1);
  return b + suffix;
}

/** Next alternative host name after a conflict: `h` → `h-2`, `h-n` → `h-n+1`. */
export function nextHostName(name: string): string {
  const m = /^(.*)-(\d+)$/.exec(name);
  const base = m ? m[1]! : name;
  const n = m ? Number(m[2]) + 1 : 2;
  const suffix = `-${n}`;
  return base.slice(0, 63 - suffix.length) + suffix;
}

/** Case-insensitive DNS name comparison key. */
export function nameKey(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** Subtype name from its 60-hex table key. */
export function subtypeNameFromKey(key60: string): string {
  return `_${key60}${SUBTYPE_SUFFIX}`;
}

// ---------------------------------------------------------------- herd suppression (ours only)

/**
 * In-progress claims (lib/fetch/herd.ts): a host about to fetch a hash from outside the LAN
 * advertises one more subtype PTR under the same service, with a one-letter prefix before the 60
 * hex — `_b<60 hex>` while it bids to be the one that goes to the CDN, `_f<60 hex>` once it does
 * ("fetching"). 62 bytes, within the 63-byte label limit. Upstream passimd never queries these
 * names (it only asks for `_<60 hex>`), so they are invisible to it.
 */
export type ClaimKind = 'bid' | 'fetching';
const CLAIM_PREFIX: Record<ClaimKind, string> = { bid: 'b', fetching: 'f' };

/** The table key of a claim: the one-letter prefix + the first 60 hex (lower case). */
export function claimKey(sha256: string, kind: ClaimKind): string {
  return CLAIM_PREFIX[kind] + subtypeKey(sha256);
}

/** `_b<60 hex>._sub._cache._tcp.local` (bid) or `_f<60 hex>._sub._cache._tcp.local` (fetching). */
export function claimSubtypeName(sha256: string, kind: ClaimKind): string {
  return subtypeNameFromKey(claimKey(sha256, kind));
}

/** The in-progress subtype: `_f<first 60 hex>._sub._cache._tcp.local`. */
export function fetchingSubtypeName(sha256: string): string {
  return claimSubtypeName(sha256, 'fetching');
}

/** The kind of a claim table key, or undefined for an item key (60 hex). */
export function claimKindOfKey(key: string): ClaimKind | undefined {
  if (key.length !== SUBTYPE_HASH_CHARS + 1) return undefined;
  return key[0] === 'b' ? 'bid' : key[0] === 'f' ? 'fetching' : undefined;
}

/**
 * The responder's table key of a subtype name: the 60 hex of an item subtype, or the prefixed
 * 61-character key of a claim subtype; undefined when the name is neither.
 */
export function advertisedKeyOf(name: string): string | undefined {
  const item = subtypeKeyOf(name);
  if (item !== undefined) return item;
  const n = name.toLowerCase();
  if (!n.endsWith(SUBTYPE_SUFFIX)) return undefined;
  const label = n.slice(0, -SUBTYPE_SUFFIX.length);
  return /^_[bf][0-9a-f]{60}$/.test(label) ? label.slice(1) : undefined;
}
