/**
 * Resource records as passim sends them, in the exact shape Avahi uses for upstream (NOTES):
 * PTR (service and subtype) TTL 4500 without cache-flush; TXT (one empty string) TTL 4500 with
 * cache-flush; SRV (0 0 port host.local) TTL 120 with cache-flush; A/AAAA TTL 120 with cache-flush.
 */
import { dnsPacket } from './dns-packet.js';
import { claimKindOfKey, hostFqdn, instanceFqdn, nameKey, SERVICE, SERVICES_META, subtypeName } from './names.js';

export const TTL_SHARED = 4500;
export const TTL_HOST = 120;

export interface SrvData { priority: number; weight: number; port: number; target: string }

export type RR =
  | { name: string; type: 'PTR'; ttl: number; flush?: boolean; data: string }
  | { name: string; type: 'SRV'; ttl: number; flush?: boolean; data: SrvData }
  | { name: string; type: 'TXT'; ttl: number; flush?: boolean; data: Buffer[] }
  | { name: string; type: 'A' | 'AAAA'; ttl: number; flush?: boolean; data: string };

export type RRType = RR['type'];

export function servicePtr(instance: string, ttl = TTL_SHARED): RR {
  return { name: SERVICE, type: 'PTR', ttl, data: instanceFqdn(instance) };
}

export function servicesMetaPtr(ttl = TTL_SHARED): RR {
  return { name: SERVICES_META, type: 'PTR', ttl, data: SERVICE };
}

export function subtypePtr(sha256: string, instance: string, ttl = TTL_SHARED): RR {
  return { name: subtypeName(sha256), type: 'PTR', ttl, data: instanceFqdn(instance) };
}

/**
 * TTL of a subtype PTR by its table key: items as Avahi (4500 s); in-progress claims (`b`/`f` +
 * 60 hex, names.ts) are short-lived, so a cache that never sees their goodbye drops them soon.
 */
export function subtypeTtl(key: string): number {
  return claimKindOfKey(key) ? TTL_HOST : TTL_SHARED;
}

export function srv(instance: string, host: string, port: number, ttl = TTL_HOST): RR {
  return { name: instanceFqdn(instance), type: 'SRV', ttl, flush: true, data: { priority: 0, weight: 0, port, target: hostFqdn(host) } };
}

export function txt(instance: string, ttl = TTL_SHARED): RR {
  return { name: instanceFqdn(instance), type: 'TXT', ttl, flush: true, data: [Buffer.alloc(0)] };
}

export function address(host: string, addr: string, ttl = TTL_HOST): RR {
  const family = addr.includes(':') ? 'AAAA' : 'A';
  return { name: hostFqdn(host), type: family, ttl, flush: true, data: addr.split('%')[0]! };
}

/** Canonical text of the rdata, for equality (names case-insensitive). */
export function rdataKey(rr: RR): string {
  switch (rr.type) {
    case 'PTR': return nameKey(rr.data);
    case 'SRV': return `${rr.data.priority} ${rr.data.weight} ${rr.data.port} ${nameKey(rr.data.target)}`;
    case 'TXT': return rr.data.map((b) => b.toString('hex')).join(',');
    case 'A':
    case 'AAAA': return rr.data.toLowerCase();
  }
}

/** name|type — identifies an RRset. */
export function rrsetKey(rr: { name: string; type: string }): string {
  return `${nameKey(rr.name)}|${rr.type}`;
}

/** name|type|rdata — identifies one record. */
export function recordKey(rr: RR): string {
  return `${rrsetKey(rr)}|${rdataKey(rr)}`;
}

/** Raw rdata bytes (without the length prefix), for the probe tie-break (RFC 6762 §8.2). */
export function rdataBytes(rr: RR): Buffer {
  const enc = (dnsPacket as unknown as { record(t: string): { encode(d: unknown): Buffer } }).record(rr.type);
  return enc.encode(rr.data).subarray(2);
}

export function withTtl(rr: RR, ttl: number): RR {
  return { ...rr, ttl } as RR;
}

/** RR types we know how to handle; anything else in a packet is ignored. */
export function isKnownType(t: unknown): t is RRType {
  return t === 'PTR' || t === 'SRV' || t === 'TXT' || t === 'A' || t === 'AAAA';
}
