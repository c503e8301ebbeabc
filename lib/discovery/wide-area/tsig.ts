/**
 * TSIG (RFC 8945) with HMAC-SHA256: signs a request and verifies the server's signed answer.
 *
 * The MAC covers the message without its TSIG record (ARCOUNT one less, the original ID) followed
 * by the "TSIG variables": key name and algorithm in canonical form (lower case, uncompressed),
 * class ANY, TTL 0, time signed (48 bits), fudge, error, other data. A response's MAC is computed
 * over the request's MAC (length-prefixed) first, so an answer cannot be replayed for another
 * request. A server that does not know the key or cannot verify the MAC answers NOTAUTH with an
 * unsigned TSIG carrying BADKEY / BADSIG / BADTIME: verify() reports that error, it does not throw.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { readHeader, recordOffsets, skipName, CLASS_ANY } from './update-message.js';

const nameCodec = (dnsPacket as unknown as { name: { encode(n: string): Buffer; decode(b: Buffer, o: number): string } }).name;

export const TYPE_TSIG = 250;
export const HMAC_SHA256 = 'hmac-sha256';
export const DEFAULT_FUDGE = 300;

export const TSIG_ERRORS: Record<number, string> = { 0: 'NOERROR', 16: 'BADSIG', 17: 'BADKEY', 18: 'BADTIME', 22: 'BADTRUNC' };

export interface TsigKey {
  /** key name as in the server's config, e.g. "passim" (compared case-insensitively) */
  name: string;
  algorithm: typeof HMAC_SHA256;
  secret: Buffer;
}

export interface TsigFields {
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
}

function canonical(name: string): Buffer {
  return nameCodec.encode(name.toLowerCase().replace(/\.$/, ''));
}

function u48(n: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(Math.floor(n / 2 ** 32) & 0xffff, 0);
  b.writeUInt32BE(n >>> 0, 2);
  return b;
}

/** The TSIG variables the MAC covers after the message (RFC 8945 §4.3.3). */
function variables(key: TsigKey, f: Pick<TsigFields, 'timeSigned' | 'fudge' | 'error' | 'other'>): Buffer {
  const tail = Buffer.alloc(2 + 4);
  tail.writeUInt16BE(CLASS_ANY, 0);
  tail.writeUInt32BE(0, 2);
  const after = Buffer.alloc(6);
  after.writeUInt16BE(f.fudge, 0);
  after.writeUInt16BE(f.error, 2);
  after.writeUInt16BE(f.other.length, 4);
  return Buffer.concat([canonical(key.name), tail, canonical(key.algorithm), u48(f.timeSigned), after, f.other]);
}

function computeMac(key: TsigKey, message: Buffer, f: Pick<TsigFields, 'timeSigned' | 'fudge' | 'error' | 'other'>, requestMac?: Buffer): Buffer {
  const h = createHmac('sha256', key.secret);
  if (requestMac) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(requestMac.length);
    h.update(len).update(requestMac);
  }
  return h.update(message).update(variables(key, f)).digest();
}

function tsigRecord(key: TsigKey, f: TsigFields): Buffer {
  const alg = canonical(f.algorithm);
  const rdata = Buffer.concat([
    alg, u48(f.timeSigned),
    Buffer.from([f.fudge >> 8, f.fudge & 0xff, f.mac.length >> 8, f.mac.length & 0xff]), f.mac,
    Buffer.from([f.originalId >> 8, f.originalId & 0xff, f.error >> 8, f.error & 0xff, f.other.length >> 8, f.other.length & 0xff]), f.other,
  ]);
  const head = Buffer.alloc(10);
  head.writeUInt16BE(TYPE_TSIG, 0);
  head.writeUInt16BE(CLASS_ANY, 2);
  head.writeUInt32BE(0, 4);
  head.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([canonical(key.name), head, rdata]);
}

export interface SignOptions {
  /** seconds since the epoch; default now */
  now?: number;
  fudge?: number;
  /** sign as a response to a request carrying this MAC (servers and tests) */
  requestMac?: Buffer;
  error?: number;
}

/** Appends a TSIG record to `message` (ARCOUNT + 1). Returns the signed message and its MAC. */
export function sign(message: Buffer, key: TsigKey, opts: SignOptions = {}): { message: Buffer; mac: Buffer } {
  const f = {
    algorithm: HMAC_SHA256,
    timeSigned: opts.now ?? Math.floor(Date.now() / 1000),
    fudge: opts.fudge ?? DEFAULT_FUDGE,
    error: opts.error ?? 0,
    other: Buffer.alloc(0),
    originalId: message.readUInt16BE(0),
  };
  const mac = computeMac(key, message, f, opts.requestMac);
  const out = Buffer.concat([message, tsigRecord(key, { ...f, mac })]);
  out.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { message: out, mac };
}

export type VerifyResult =
  /** the MAC is right (error 0), or the server reported a TSIG error (BADKEY…, unsigned) */
  | { ok: true; error: number; fields: TsigFields }
  | { ok: false; reason: string };

/** Reads the TSIG record that must end `message` (undefined when there is none). */
export function readTsig(message: Buffer): { offset: number; keyName: string; fields: TsigFields } | undefined {
  const offs = recordOffsets(message);
  const last = offs[offs.length - 1];
  if (last === undefined || readHeader(message).counts[3] === 0) return undefined;
  let off = skipName(message, last);
  if (message.readUInt16BE(off) !== TYPE_TSIG) return undefined;
  const keyName = nameCodec.decode(message, last);
  off += 10;
  const algorithm = nameCodec.decode(message, off);
  off = skipName(message, off);
  const timeSigned = message.readUInt16BE(off) * 2 ** 32 + message.readUInt32BE(off + 2);
  const fudge = message.readUInt16BE(off + 6);
  const macLen = message.readUInt16BE(off + 8);
  off += 10;
  const mac = message.subarray(off, off + macLen);
  off += macLen;
  const originalId = message.readUInt16BE(off);
  const error = message.readUInt16BE(off + 2);
  const otherLen = message.readUInt16BE(off + 4);
  const other = message.subarray(off + 6, off + 6 + otherLen);
  if (off + 6 + otherLen > message.length) throw new Error('truncated TSIG record');
  return { offset: last, keyName, fields: { algorithm, timeSigned, fudge, mac, originalId, error, other } };
}

/**
 * Verifies a signed message (a response when `requestMac` is given). A TSIG error from the server
 * (unsigned, MAC size 0) is returned as `{ ok: true, error }`; a wrong or missing MAC as ok: false.
 */
export function verify(message: Buffer, key: TsigKey, opts: { requestMac?: Buffer; now?: number } = {}): VerifyResult {
  let t: ReturnType<typeof readTsig>;
  try {
    t = readTsig(message);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  if (!t) return { ok: false, reason: 'the answer is not signed' };
  if (t.keyName.toLowerCase().replace(/\.$/, '') !== key.name.toLowerCase().replace(/\.$/, '')) {
    return { ok: false, reason: `signed with another key (${t.keyName})` };
  }
  if (t.fields.error !== 0 && t.fields.mac.length === 0) return { ok: true, error: t.fields.error, fields: t.fields };
  if (t.fields.algorithm.toLowerCase().replace(/\.$/, '') !== HMAC_SHA256) return { ok: false, reason: `algorithm ${t.fields.algorithm}` };
  const body = Buffer.from(message.subarray(0, t.offset));
  body.writeUInt16BE(t.fields.originalId, 0);
  body.writeUInt16BE(body.readUInt16BE(10) - 1, 10);
  const want = computeMac(key, body, t.fields, opts.requestMac);
  if (want.length !== t.fields.mac.length || !timingSafeEqual(want, t.fields.mac)) return { ok: false, reason: 'bad MAC' };
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t.fields.timeSigned) > t.fields.fudge) return { ok: false, reason: 'time signed outside the fudge (clocks differ)' };
  return { ok: true, error: t.fields.error, fields: t.fields };
}

export function tsigErrorName(code: number): string {
  return TSIG_ERRORS[code] ?? `TSIG error ${code}`;
}
