/**
 * What the responder says to a query: answers from its table (Map lookups, so 10,000 subtypes
 * cost nothing), known-answer suppression (RFC 6762 §7.1) and the additional records that let a
 * browser resolve in one round trip (RFC 6763 §12). Pure functions: easy to test.
 */
import { advertisedKeyOf, hostFqdn, instanceFqdn, nameKey, SERVICE, SERVICES_META, subtypeNameFromKey } from './names.js';
import { address, recordKey, servicePtr, servicesMetaPtr, srv, subtypeTtl, txt, type RR } from './records.js';
import type { Question } from './packets.js';

/** The responder's current records, seen from one interface. */
export interface Zone {
  instance: string;
  host: string;
  port: number;
  /** addresses of the host name on the interface the query came in on */
  addresses: string[];
  /** whether a subtype is advertised, by its table key: 60 hex (item) or `b`/`f` + 60 hex (claim, names.ts) */
  hasSubtype(key: string): boolean;
}

function matches(qtype: string, t: string): boolean {
  return qtype === t || qtype === 'ANY';
}

/** Records of the zone answering one question (no suppression). */
export function answersFor(zone: Zone, q: Question): RR[] {
  const name = nameKey(q.name);
  const out: RR[] = [];
  if (name === SERVICES_META) {
    if (matches(q.type, 'PTR')) out.push(servicesMetaPtr());
    return out;
  }
  if (name === SERVICE) {
    if (matches(q.type, 'PTR')) out.push(servicePtr(zone.instance));
    return out;
  }
  const key = advertisedKeyOf(name);
  if (key !== undefined) {
    if (matches(q.type, 'PTR') && zone.hasSubtype(key)) {
      out.push({ name: subtypeNameFromKey(key), type: 'PTR', ttl: subtypeTtl(key), data: instanceFqdn(zone.instance) });
    }
    return out;
  }
  if (name === nameKey(instanceFqdn(zone.instance))) {
    if (matches(q.type, 'SRV')) out.push(srv(zone.instance, zone.host, zone.port));
    if (matches(q.type, 'TXT')) out.push(txt(zone.instance));
    return out;
  }
  if (name === nameKey(hostFqdn(zone.host))) {
    for (const a of zone.addresses) {
      const rr = address(zone.host, a);
      if (matches(q.type, rr.type)) out.push(rr);
    }
  }
  return out;
}

/** The host's address records. */
export function addressRecords(zone: Zone): RR[] {
  return zone.addresses.map((a) => address(zone.host, a));
}

/** Additional records for an answer: PTR → SRV, TXT, A/AAAA; SRV → A/AAAA. */
export function additionalsFor(zone: Zone, rr: RR): RR[] {
  if (rr.type === 'PTR' && nameKey(rr.data) === nameKey(instanceFqdn(zone.instance))) {
    return [srv(zone.instance, zone.host, zone.port), txt(zone.instance), ...addressRecords(zone)];
  }
  if (rr.type === 'SRV') return addressRecords(zone);
  return [];
}

/**
 * Known-answer suppression (RFC 6762 §7.1): drop an answer the querier already listed with at
 * least half our TTL.
 */
export function suppressKnown(answers: RR[], known: RR[]): RR[] {
  if (known.length === 0) return answers;
  const ttlByKey = new Map<string, number>();
  for (const k of known) ttlByKey.set(recordKey(k), Math.max(k.ttl, ttlByKey.get(recordKey(k)) ?? 0));
  return answers.filter((a) => {
    const t = ttlByKey.get(recordKey(a));
    return t === undefined || t < a.ttl / 2;
  });
}

export interface Answered {
  /** answers for QU questions (unicast reply wanted) */
  unicast: RR[];
  /** answers for QM questions */
  multicast: RR[];
}

/** Answers to every question of a query, deduplicated and known-answer suppressed. */
export function answerQuery(zone: Zone, questions: Question[], known: RR[]): Answered {
  const uni = new Map<string, RR>();
  const multi = new Map<string, RR>();
  for (const q of questions) {
    for (const rr of answersFor(zone, q)) {
      const k = recordKey(rr);
      (q.qu ? uni : multi).set(k, rr);
    }
  }
  for (const k of multi.keys()) uni.delete(k);
  return { unicast: suppressKnown([...uni.values()], known), multicast: suppressKnown([...multi.values()], known) };
}
