/**
 * Encoding, defensive decoding and splitting of mDNS messages (dns-packet underneath).
 *
 * dns-packet 5.x cannot express the QU bit (RFC 6762 §5.4): decoding leaves the class as the
 * string "UNKNOWN_32769" and encoding drops it. We read it from that string and patch it into the
 * encoded bytes. Decoding never throws: a malformed packet yields undefined, and records of types
 * we do not handle or with ill-shaped data are dropped.
 */
import { dnsPacket, type DnsPacket } from './dns-packet.js';
import { isKnownType, recordKey, type RR } from './records.js';

/** Largest DNS message we send (UDP payload bytes): 1400 + 28 header bytes stays under a 1500 MTU. */
export const MAX_MESSAGE_BYTES = 1400;
export const MDNS_PORT = 5353;
export const MDNS_V4 = '224.0.0.251';
export const MDNS_V6 = 'ff02::fb';

export interface Question { name: string; type: string; qu?: boolean }

export interface Message {
  id: number;
  response: boolean;
  truncated: boolean;
  questions: Question[];
  answers: RR[];
  authorities: RR[];
  additionals: RR[];
}

export interface OutMessage {
  id?: number;
  response: boolean;
  questions?: Question[];
  answers?: RR[];
  authorities?: RR[];
  additionals?: RR[];
}

const QU_BIT = 0x8000;

function toPacket(m: OutMessage): DnsPacket.Packet {
  return {
    id: m.id ?? 0,
    type: m.response ? 'response' : 'query',
    flags: m.response ? dnsPacket.AUTHORITATIVE_ANSWER : 0,
    questions: (m.questions ?? []).map((q) => ({ name: q.name, type: q.type as DnsPacket.RecordType, class: 'IN' as const })),
    answers: (m.answers ?? []) as unknown as DnsPacket.Answer[],
    authorities: (m.authorities ?? []) as unknown as DnsPacket.Answer[],
    additionals: (m.additionals ?? []) as unknown as DnsPacket.Answer[],
  };
}

export function encodeMessage(m: OutMessage): Buffer {
  const buf = dnsPacket.encode(toPacket(m));
  let off = 12;
  for (const q of m.questions ?? []) {
    off += (dnsPacket as unknown as { name: { encodingLength(n: string): number } }).name.encodingLength(q.name) + 4;
    if (q.qu) buf.writeUInt16BE(buf.readUInt16BE(off - 2) | QU_BIT, off - 2);
  }
  return buf;
}

function recordSize(rr: RR): number {
  return (dnsPacket as unknown as { answer: { encodingLength(a: unknown): number } }).answer.encodingLength(rr);
}

function questionSize(q: Question): number {
  return (dnsPacket as unknown as { question: { encodingLength(q: unknown): number } }).question.encodingLength(q);
}

/**
 * Whether the header's counts can fit in the datagram at all: a question takes at least 5 bytes
 * (root name + type + class), a record at least 11. dns-packet allocates arrays of the claimed
 * sizes before reading, so a 12-byte packet claiming 4 × 65535 entries would cost ~2 MB and
 * ~0.5 ms each; such packets are dropped before decoding. (Size is not capped: RFC 6762 §17 says
 * senders stay under 9000 bytes, but a larger datagram costs decoding time linear in its size.)
 */
function plausibleCounts(buf: Buffer): boolean {
  if (buf.length < 12) return false;
  const qd = buf.readUInt16BE(4);
  const rr = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  return 12 + qd * 5 + rr * 11 <= buf.length;
}

/** Decodes a datagram; undefined for anything malformed. Never throws. */
export function decodeMessage(buf: Buffer): Message | undefined {
  if (!Buffer.isBuffer(buf) || !plausibleCounts(buf)) return undefined;
  let p: DnsPacket.DecodedPacket;
  try {
    p = dnsPacket.decode(buf);
  } catch {
    return undefined;
  }
  try {
    const flags = (p as { flags?: number }).flags ?? 0;
    return {
      id: typeof p.id === 'number' ? p.id : 0,
      response: p.type === 'response',
      truncated: (flags & dnsPacket.TRUNCATED_RESPONSE) !== 0,
      questions: (p.questions ?? []).flatMap((q) => {
        const c = parseClass((q as { class?: unknown }).class);
        if (typeof q?.name !== 'string' || typeof q.type !== 'string' || !c) return [];
        if (c.klass !== 1 && c.klass !== 255) return [];
        return [{ name: q.name, type: q.type, qu: c.qu }];
      }),
      answers: cleanRecords(p.answers),
      authorities: cleanRecords(p.authorities),
      additionals: cleanRecords(p.additionals),
    };
  } catch {
    return undefined;
  }
}

function parseClass(c: unknown): { klass: number; qu: boolean } | undefined {
  if (c === 'IN') return { klass: 1, qu: false };
  if (c === 'ANY') return { klass: 255, qu: false };
  if (typeof c === 'string') {
    const m = /^UNKNOWN_(\d+)$/.exec(c);
    if (m) {
      const n = Number(m[1]);
      return { klass: n & 0x7fff, qu: (n & QU_BIT) !== 0 };
    }
  }
  return undefined;
}

function cleanRecords(list: unknown): RR[] {
  if (!Array.isArray(list)) return [];
  const out: RR[] = [];
  for (const a of list as Array<Record<string, unknown>>) {
    if (!a || typeof a.name !== 'string' || !isKnownType(a.type) || a.class !== 'IN') continue;
    const ttl = typeof a.ttl === 'number' ? a.ttl : 0;
    const flush = a.flush === true;
    const d = a.data;
    switch (a.type) {
      case 'PTR':
      case 'A':
      case 'AAAA':
        if (typeof d === 'string') out.push({ name: a.name, type: a.type, ttl, flush, data: d });
        break;
      case 'SRV': {
        const s = d as Record<string, unknown> | undefined;
        if (s && typeof s.port === 'number' && typeof s.target === 'string') {
          out.push({ name: a.name, type: 'SRV', ttl, flush, data: { priority: Number(s.priority) || 0, weight: Number(s.weight) || 0, port: s.port, target: s.target } });
        }
        break;
      }
      case 'TXT':
        if (Array.isArray(d) && d.every((x) => Buffer.isBuffer(x))) out.push({ name: a.name, type: 'TXT', ttl, flush, data: d as Buffer[] });
        break;
    }
  }
  return out;
}

/**
 * Packs answers (each with the additionals that help resolve it, RFC 6763 §12) into messages of
 * at most `maxBytes`. An additional that does not fit, or is already in the message, is left out;
 * answers are never dropped.
 */
export function packResponses(
  answers: RR[],
  additionalsFor: (rr: RR) => RR[],
  opts: { maxBytes?: number; questions?: Question[]; id?: number; questionFor?: (rr: RR) => Question | undefined } = {},
): OutMessage[] {
  const max = opts.maxBytes ?? MAX_MESSAGE_BYTES;
  const fixedQs = opts.questions ?? [];
  const fixed = 12 + fixedQs.reduce((n, q) => n + questionSize(q), 0);
  const out: OutMessage[] = [];
  type Cur = { answers: RR[]; additionals: RR[]; questions: Question[]; qkeys: Set<string>; keys: Set<string>; size: number };
  let cur: Cur | undefined;
  const flush = () => {
    if (cur && cur.answers.length) {
      out.push({ id: opts.id ?? 0, response: true, questions: opts.questionFor ? cur.questions : fixedQs, answers: cur.answers, additionals: cur.additionals });
    }
    cur = undefined;
  };
  const fresh = (): Cur => ({ answers: [], additionals: [], questions: [], qkeys: new Set(), keys: new Set(), size: opts.questionFor ? 12 : fixed });
  for (const rr of answers) {
    const k = recordKey(rr);
    if (cur && cur.answers.some((a) => recordKey(a) === k)) continue;
    const q = opts.questionFor?.(rr);
    const qk = q ? `${q.name.toLowerCase()}|${q.type}` : '';
    const need = (c: Cur) => recordSize(rr) + (q && !c.qkeys.has(qk) ? questionSize(q) : 0);
    if (!cur || cur.size + need(cur) > max) {
      flush();
      cur = fresh();
    }
    cur.size += need(cur);
    if (q && !cur.qkeys.has(qk)) {
      cur.qkeys.add(qk);
      cur.questions.push(q);
    }
    if (cur.keys.has(k)) {
      // it was an additional in this message: promote it to an answer
      const i = cur.additionals.findIndex((a) => recordKey(a) === k);
      if (i >= 0) {
        cur.size -= recordSize(cur.additionals[i]!);
        cur.additionals.splice(i, 1);
      }
    }
    cur.answers.push(rr);
    cur.keys.add(k);
    for (const ad of additionalsFor(rr)) {
      const ak = recordKey(ad);
      if (cur.keys.has(ak)) continue;
      const asz = recordSize(ad);
      if (cur.size + asz > max) continue;
      cur.additionals.push(ad);
      cur.keys.add(ak);
      cur.size += asz;
    }
  }
  flush();
  return out;
}
