/**
 * The names and records of wide-area DNS-SD (RFC 6763 §11): what the mDNS responder advertises,
 * with `.local` replaced by the configured domain, plus a TXT with the time of the last refresh so
 * a lookup can recognise a host that stopped refreshing (crashed, unplugged).
 */
import { networkInterfaces } from 'node:os';
import { isIPv4 } from 'node:net';
import { sanitiseHostName, subtypeKey, SUBTYPE_HASH_CHARS } from '../names.js';
import type { UpdateOp } from './update-message.js';

/** TTL of every record in the zone: short, so caches forget a vanished host soon. */
export const WIDE_AREA_TTL = 60;
export const REFRESHED_KEY = 'refreshed';

export function normaliseDomain(domain: string): string {
  return domain.trim().toLowerCase().replace(/\.$/, '');
}

export const serviceName = (domain: string) => `_cache._tcp.${domain}`;
export const instanceName = (instance: string, domain: string) => `${instance}._cache._tcp.${domain}`;
export const subtypeNameIn = (sha256: string, domain: string) => `_${subtypeKey(sha256)}._sub._cache._tcp.${domain}`;
export const subtypeNameOfKey = (key60: string, domain: string) => `_${key60}._sub._cache._tcp.${domain}`;
export const hostNameIn = (hostLabel: string, domain: string) => `${hostLabel}.${domain}`;

/**
 * The host label in the zone: the machine's name plus the instance's hex digits, so two machines
 * that share a host name (CI runners called "runner") never overwrite each other's addresses.
 */
export function hostLabelFor(host: string, instance: string): string {
  const suffix = instance.replace(/^Passim-/i, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
  return `${sanitiseHostName(host).toLowerCase().slice(0, 62 - suffix.length)}-${suffix}`;
}

/** The instance of `<instance>._cache._tcp.<domain>`, or undefined. */
export function instanceOfName(fqdn: string, domain: string): string | undefined {
  const suffix = `._cache._tcp.${domain}`;
  const n = fqdn.replace(/\.$/, '');
  if (!n.toLowerCase().endsWith(suffix)) return undefined;
  const label = n.slice(0, -suffix.length);
  return label && !label.includes('.') ? label : undefined;
}

export function isKey60(k: string): boolean {
  return k.length === SUBTYPE_HASH_CHARS && /^[0-9a-f]+$/.test(k);
}

export interface InstanceRecords {
  domain: string;
  instance: string;
  hostLabel: string;
  port: number;
  addresses: string[];
  /** seconds since the epoch */
  refreshed: number;
}

/** Replaces the instance's SRV, TXT and addresses and (re-)adds its PTR under the service. */
export function instanceOps(r: InstanceRecords, ttl = WIDE_AREA_TTL): UpdateOp[] {
  const inst = instanceName(r.instance, r.domain);
  const host = hostNameIn(r.hostLabel, r.domain);
  const ops: UpdateOp[] = [
    { op: 'add', name: serviceName(r.domain), type: 'PTR', ttl, data: inst },
    { op: 'delete-rrset', name: inst, type: 'SRV' },
    { op: 'add', name: inst, type: 'SRV', ttl, data: { priority: 0, weight: 0, port: r.port, target: host } },
    { op: 'delete-rrset', name: inst, type: 'TXT' },
    { op: 'add', name: inst, type: 'TXT', ttl, data: [Buffer.from(`${REFRESHED_KEY}=${r.refreshed}`)] },
    { op: 'delete-rrset', name: host, type: 'A' },
    { op: 'delete-rrset', name: host, type: 'AAAA' },
  ];
  for (const a of r.addresses) ops.push({ op: 'add', name: host, type: isIPv4(a) ? 'A' : 'AAAA', ttl, data: a });
  return ops;
}

/** Removes the instance: its PTR under the service (ours only), SRV, TXT and addresses. */
export function instanceRemovalOps(domain: string, instance: string, hostLabel: string): UpdateOp[] {
  const inst = instanceName(instance, domain);
  const host = hostNameIn(hostLabel, domain);
  return [
    { op: 'delete', name: serviceName(domain), type: 'PTR', data: inst },
    { op: 'delete-rrset', name: inst, type: 'SRV' },
    { op: 'delete-rrset', name: inst, type: 'TXT' },
    { op: 'delete-rrset', name: host, type: 'A' },
    { op: 'delete-rrset', name: host, type: 'AAAA' },
  ];
}

export function itemAddOp(key60: string, domain: string, instance: string, ttl = WIDE_AREA_TTL): UpdateOp {
  return { op: 'add', name: subtypeNameOfKey(key60, domain), type: 'PTR', ttl, data: instanceName(instance, domain) };
}

/** Class NONE delete: only our PTR goes; other hosts' PTRs at the same subtype name stay. */
export function itemDeleteOp(key60: string, domain: string, instance: string): UpdateOp {
  return { op: 'delete', name: subtypeNameOfKey(key60, domain), type: 'PTR', data: instanceName(instance, domain) };
}

/** Reads `refreshed=<seconds>` from TXT strings; undefined when absent. */
export function refreshedOf(txt: string[][]): number | undefined {
  for (const chunks of txt) {
    for (const s of chunks) {
      const m = /^refreshed=(\d{1,12})$/.exec(s);
      if (m) return Number(m[1]);
    }
  }
  return undefined;
}

function isLinkLocal(a: string): boolean {
  return a.startsWith('169.254.') || /^fe[89ab][0-9a-f]:/i.test(a);
}

/**
 * The addresses other subnets can reach this host on: not loopback, not link-local; IPv6 only when
 * enabled; only the pinned interfaces when some are; only the bound addresses when bound.
 */
export function routableAddresses(opts: { interfaces?: string[]; ipv6?: boolean; bind?: string[] } = {}): string[] {
  const bound = (opts.bind ?? []).filter((a) => a !== '0.0.0.0' && a !== '::');
  const out: string[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (opts.interfaces?.length && !opts.interfaces.includes(name)) continue;
    for (const a of addrs ?? []) {
      if (a.internal || isLinkLocal(a.address)) continue;
      if (a.family === 'IPv6' && !opts.ipv6) continue;
      if (bound.length && !bound.includes(a.address)) continue;
      if (!out.includes(a.address)) out.push(a.address);
    }
  }
  return out;
}
