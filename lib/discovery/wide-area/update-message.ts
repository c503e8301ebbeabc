/**
 * RFC 2136 DNS UPDATE messages, and the few reads of a DNS response the registrar needs.
 *
 * dns-packet encodes names and record data; what it lacks is written here: opcode UPDATE, class
 * NONE (254, "delete this one RR") and class ANY with empty RDATA ("delete this RRset"), which
 * dns-packet cannot express (its classes stop at ANY and every record type wants data). TSIG is
 * appended afterwards by tsig.ts; the RFC 9664 update-lease rides in an EDNS OPT record.
 *
 * Sections of an UPDATE: zone (the "question": ZNAME SOA IN), prerequisites (the answer section),
 * updates (the authority section), additional (OPT, then TSIG last).
 */
import dnsPacket from 'dns-packet';

interface Codec<T> {
  encode(v: T, buf: Buffer, offset: number): Buffer;
  encodingLength(v: T): number;
  // dns-packet keeps the byte count of the last encode here
}
const packet = dnsPacket as unknown as {
  name: Codec<string> & { encode: { bytes: number } };
  record(type: string): Codec<unknown> & { encode: { bytes: number } };
  answer: Codec<unknown> & { encode: { bytes: number } };
};

export const OPCODE_UPDATE = 5;
export const CLASS_IN = 1;
export const CLASS_NONE = 254;
export const CLASS_ANY = 255;
/** EDNS option code of the update lease (RFC 9664 §4) */
export const EDNS_UPDATE_LEASE = 2;

const TYPE_CODES: Record<string, number> = { A: 1, NS: 2, SOA: 6, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, ANY: 255 };
export type UpdateType = 'A' | 'AAAA' | 'PTR' | 'SRV' | 'TXT';

export const RCODES: Record<number, string> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED',
  6: 'YXDOMAIN', 7: 'YXRRSET', 8: 'NXRRSET', 9: 'NOTAUTH', 10: 'NOTZONE',
};

export type RecordData =
  | { type: 'A' | 'AAAA' | 'PTR'; data: string }
  | { type: 'SRV'; data: { priority: number; weight: number; port: number; target: string } }
  | { type: 'TXT'; data: Buffer[] };

/** One line of the update section. */
export type UpdateOp =
  /** add an RR (class IN) */
  | ({ op: 'add'; name: string; ttl: number } & RecordData)
  /** delete one RR from an RRset (class NONE, TTL 0): shared names lose only our record */
  | ({ op: 'delete'; name: string } & RecordData)
  /** delete a whole RRset (class ANY, TTL 0, no RDATA) */
  | { op: 'delete-rrset'; name: string; type: UpdateType };

/** A prerequisite (RFC 2136 §2.4): the RRset must be absent (class NONE) or present (class ANY). */
export interface Prerequisite { name: string; type: UpdateType; present: boolean }

export interface UpdateMessage {
  id: number;
  zone: string;
  prerequisites?: Prerequisite[];
  updates: UpdateOp[];
  /** RFC 9664 update lease in seconds (an EDNS option; servers that ignore it still apply the update) */
  lease?: number;
}

function nameLength(name: string): number {
  return packet.name.encodingLength(name);
}

function rdataLength(r: RecordData): number {
  return packet.record(r.type).encodingLength(r.data); // includes the 2-byte RDLENGTH
}

/** Bytes one update line takes in the message (to split batches under a size). */
export function opLength(op: UpdateOp): number {
  return nameLength(op.name) + 8 + (op.op === 'delete-rrset' ? 2 : rdataLength(op));
}

function writeRR(buf: Buffer, off: number, name: string, type: number, klass: number, ttl: number, rd?: RecordData): number {
  packet.name.encode(name, buf, off);
  off += packet.name.encode.bytes;
  off = buf.writeUInt16BE(type, off);
  off = buf.writeUInt16BE(klass, off);
  off = buf.writeUInt32BE(ttl, off);
  if (!rd) return buf.writeUInt16BE(0, off);
  const enc = packet.record(rd.type);
  enc.encode(rd.data, buf, off);
  return off + enc.encode.bytes;
}

function leaseOpt(lease: number): { type: 'OPT'; name: '.'; udpPayloadSize: number; options: Array<{ code: number; data: Buffer }> } {
  const data = Buffer.alloc(4);
  data.writeUInt32BE(lease >>> 0);
  return { type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: EDNS_UPDATE_LEASE, data }] };
}

/** Encodes an UPDATE (without TSIG; tsig.ts signs the result). Throws on an unknown type. */
export function encodeUpdate(m: UpdateMessage): Buffer {
  const prereqs = m.prerequisites ?? [];
  const opt = m.lease !== undefined ? leaseOpt(m.lease) : undefined;
  let size = 12 + nameLength(m.zone) + 4;
  for (const p of prereqs) size += nameLength(p.name) + 10;
  for (const u of m.updates) size += opLength(u);
  if (opt) size += packet.answer.encodingLength(opt);
  const buf = Buffer.alloc(size);
  buf.writeUInt16BE(m.id & 0xffff, 0);
  buf.writeUInt16BE(OPCODE_UPDATE << 11, 2);
  buf.writeUInt16BE(1, 4);
  buf.writeUInt16BE(prereqs.length, 6);
  buf.writeUInt16BE(m.updates.length, 8);
  buf.writeUInt16BE(opt ? 1 : 0, 10);
  let off = 12;
  packet.name.encode(m.zone, buf, off);
  off += packet.name.encode.bytes;
  off = buf.writeUInt16BE(TYPE_CODES.SOA!, off);
  off = buf.writeUInt16BE(CLASS_IN, off);
  for (const p of prereqs) off = writeRR(buf, off, p.name, typeCode(p.type), p.present ? CLASS_ANY : CLASS_NONE, 0);
  for (const u of m.updates) {
    if (u.op === 'add') off = writeRR(buf, off, u.name, typeCode(u.type), CLASS_IN, u.ttl, u);
    else if (u.op === 'delete') off = writeRR(buf, off, u.name, typeCode(u.type), CLASS_NONE, 0, u);
    else off = writeRR(buf, off, u.name, typeCode(u.type), CLASS_ANY, 0);
  }
  if (opt) {
    packet.answer.encode(opt, buf, off);
    off += packet.answer.encode.bytes;
  }
  if (off !== size) throw new Error(`update encoding: wrote ${off} of ${size} bytes`);
  return buf;
}

function typeCode(t: string): number {
  const c = TYPE_CODES[t];
  if (c === undefined) throw new Error(`update: unsupported record type ${t}`);
  return c;
}

/** Skips a (possibly compressed) name; returns the offset after it. Throws on a truncated message. */
export function skipName(buf: Buffer, off: number): number {
  for (;;) {
    if (off >= buf.length) throw new Error('truncated DNS message (name)');
    const len = buf[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) {
      if (off + 2 > buf.length) throw new Error('truncated DNS message (pointer)');
      return off + 2;
    }
    if (len & 0xc0) throw new Error('bad label in DNS message');
    off += 1 + len;
  }
}

export interface ResponseHeader { id: number; qr: boolean; opcode: number; rcode: number; counts: [number, number, number, number] }

export function readHeader(buf: Buffer): ResponseHeader {
  if (buf.length < 12) throw new Error('DNS message shorter than its header');
  const flags = buf.readUInt16BE(2);
  return {
    id: buf.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    rcode: flags & 0xf,
    counts: [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)],
  };
}

/**
 * Offsets of every resource record of the message (answer, authority, additional, in order),
 * after the question section. Throws on a malformed message.
 */
export function recordOffsets(buf: Buffer): number[] {
  const h = readHeader(buf);
  let off = 12;
  for (let i = 0; i < h.counts[0]; i++) off = skipName(buf, off) + 4;
  const out: number[] = [];
  const n = h.counts[1] + h.counts[2] + h.counts[3];
  for (let i = 0; i < n; i++) {
    out.push(off);
    off = skipName(buf, off);
    if (off + 10 > buf.length) throw new Error('truncated DNS message (record)');
    off += 10 + buf.readUInt16BE(off + 8);
    if (off > buf.length) throw new Error('truncated DNS message (rdata)');
  }
  return out;
}

export function rcodeName(rcode: number): string {
  return RCODES[rcode] ?? `RCODE${rcode}`;
}
