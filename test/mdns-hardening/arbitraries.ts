/**
 * fast-check generators of mDNS datagrams: random bytes, truncated valid packets, compression
 * pointer loops and pointers past the end, label lengths > 63, names > 255 bytes, counts claiming
 * 65535 records, oversized (9000-byte) packets, and valid queries/responses built from a pool of
 * names (the target's own names among them).
 */
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import { header, rawName, rawRR, RESPONSE_FLAGS, TYPE, u16 } from './helpers.js';

export interface NamePool {
  /** names a generated record or question may carry */
  names: string[];
  /** instance FQDNs (PTR data) */
  instances: string[];
  /** host names (SRV targets) */
  hosts: string[];
  /** records that may be generated (default all) */
  recordOk?: (a: dnsPacket.Answer) => boolean;
}

const QTYPES = ['A', 'AAAA', 'PTR', 'SRV', 'TXT', 'ANY', 'HINFO', 'CNAME', 'MX', 'NS', 'NSEC'] as const;

export const WEIRD_V4 = ['0.0.0.0', '224.0.0.251', '224.0.0.1', '239.255.255.250', '255.255.255.255', '127.0.0.1', '127.1.2.3', '240.0.0.1', '0.1.2.3'];
export const WEIRD_V6 = ['::', '::1', 'ff02::fb', 'ff02::1'];

export const arbV4 = fc.oneof(
  fc.constantFrom(...WEIRD_V4),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.')),
  fc.tuple(fc.nat(255), fc.nat(255)).map(([a, b]) => `10.98.${a}.${b}`),
);
export const arbV6 = fc.oneof(fc.constantFrom(...WEIRD_V6, 'fe80::1', '2001:db8::1'), fc.ipV6());

export const arbTtl = fc.oneof(fc.constantFrom(0, 1, 10, 120, 4500, 0xffffffff), fc.nat());

function arbFrom<T>(xs: T[]): fc.Arbitrary<T> {
  return fc.constantFrom(...xs);
}

/** A name from the pool, or a random one (sometimes with odd characters). */
export function arbName(pool: NamePool): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: arbFrom(pool.names) },
    { weight: 1, arbitrary: fc.array(fc.stringMatching(/^[a-zA-Z0-9_ #-]{1,20}$/), { minLength: 1, maxLength: 4 }).map((ls) => `${ls.join('.')}.local`) },
  );
}

/**
 * An owner name for a record whose rdata is malformed on purpose: a pointer into the header may
 * still decode, so the name must be one the pool allows any SRV data for.
 */
function arbOwner(pool: NamePool): fc.Arbitrary<string> {
  const ok = pool.recordOk;
  const probe = (name: string) => ({ type: 'SRV', name, ttl: 120, data: { priority: 0, weight: 0, port: 1, target: 'zz.invalid' } }) as dnsPacket.Answer;
  return ok ? arbName(pool).filter((n) => ok(probe(n))) : arbName(pool);
}

/** A record dns-packet can encode, shaped like (or unlike) what a browser / responder expects. */
export function arbRecord(pool: NamePool): fc.Arbitrary<dnsPacket.Answer> {
  const name = arbName(pool);
  const flush = fc.boolean();
  const ok = pool.recordOk;
  const arb = fc.oneof(
    fc.record({ type: fc.constant('PTR' as const), name, ttl: arbTtl, flush, data: fc.oneof(arbFrom(pool.instances), arbName(pool)) }),
    fc.record({
      type: fc.constant('SRV' as const), name: fc.oneof(arbFrom(pool.instances), name), ttl: arbTtl, flush,
      data: fc.record({ priority: fc.nat(65535), weight: fc.nat(65535), port: fc.oneof(fc.constant(0), fc.constant(27500), fc.nat(65535)), target: fc.oneof(arbFrom(pool.hosts), arbName(pool)) }),
    }),
    fc.record({ type: fc.constant('TXT' as const), name, ttl: arbTtl, flush, data: fc.array(fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)), { maxLength: 3 }) }),
    fc.record({ type: fc.constant('A' as const), name: fc.oneof(arbFrom(pool.hosts), name), ttl: arbTtl, flush, data: arbV4 }),
    fc.record({ type: fc.constant('AAAA' as const), name: fc.oneof(arbFrom(pool.hosts), name), ttl: arbTtl, flush, data: arbV6 }),
    fc.record({ type: fc.constant('HINFO' as const), name, ttl: arbTtl, flush, data: fc.record({ cpu: fc.string({ maxLength: 10 }), os: fc.string({ maxLength: 10 }) }) }),
  ) as fc.Arbitrary<dnsPacket.Answer>;
  return ok ? arb.filter(ok) : arb;
}

export function arbQuestion(pool: NamePool): fc.Arbitrary<dnsPacket.Question> {
  return fc.record({ name: arbName(pool), type: fc.constantFrom(...QTYPES), class: fc.constant('IN' as const) }) as fc.Arbitrary<dnsPacket.Question>;
}

/** Sets the QU bit on some questions of an encoded packet (dns-packet cannot). */
function withQu(buf: Buffer, qs: dnsPacket.Question[], qu: boolean[]): Buffer {
  let off = 12;
  const nameLen = (dnsPacket as unknown as { name: { encodingLength(n: string): number } }).name;
  qs.forEach((q, i) => {
    off += nameLen.encodingLength(q.name) + 4;
    if (qu[i]) buf.writeUInt16BE(buf.readUInt16BE(off - 2) | 0x8000, off - 2);
  });
  return buf;
}

/** A valid query: questions, QU bits, known answers, any id. */
export function arbQuery(pool: NamePool): fc.Arbitrary<Buffer> {
  return fc.record({
    id: fc.nat(65535),
    questions: fc.array(arbQuestion(pool), { minLength: 1, maxLength: 12 }),
    qu: fc.array(fc.boolean(), { maxLength: 12 }),
    answers: fc.array(arbRecord(pool), { maxLength: 4 }),
    authorities: fc.oneof({ weight: 5, arbitrary: fc.constant([] as dnsPacket.Answer[]) }, { weight: 1, arbitrary: fc.array(arbRecord(pool), { maxLength: 3 }) }),
  }).map((p) => withQu(dnsPacket.encode({ type: 'query', id: p.id, questions: p.questions, answers: p.answers, authorities: p.authorities }), p.questions, p.qu));
}

/** A valid response with records from the pool. */
export function arbResponse(pool: NamePool, maxRecords = 12): fc.Arbitrary<Buffer> {
  return fc.record({
    id: fc.nat(65535),
    answers: fc.array(arbRecord(pool), { minLength: 1, maxLength: maxRecords }),
    additionals: fc.array(arbRecord(pool), { maxLength: 6 }),
  }).map((p) => dnsPacket.encode({ type: 'response', id: p.id, flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: p.answers, additionals: p.additionals }));
}

export function arbValidPacket(pool: NamePool): fc.Arbitrary<Buffer> {
  return fc.oneof(arbQuery(pool), arbResponse(pool));
}

/** Random bytes: short, MTU-sized, and with a plausible mDNS header in front. */
export function arbRandomBytes(): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.uint8Array({ maxLength: 1500 }),
    fc.tuple(fc.constantFrom(0, RESPONSE_FLAGS), fc.nat(4), fc.nat(4), fc.nat(4), fc.uint8Array({ maxLength: 600 }))
      .map(([flags, qd, an, ar, rest]) => Buffer.concat([header({ flags, qd, an, ar }), Buffer.from(rest)])),
  ).map((u) => Buffer.from(u));
}

/** A valid packet cut at a random point (every prefix length is possible). */
export function arbTruncated(pool: NamePool): fc.Arbitrary<Buffer> {
  return fc.tuple(arbValidPacket(pool), fc.nat()).map(([b, n]) => b.subarray(0, n % Math.max(1, b.length)));
}

/**
 * Compression pointers that loop (to itself, A→B→A, label then pointer back to it), point into
 * the header, forward, or past the end; in a question name, a record owner name, or rdata.
 */
export function arbPointerAttack(pool: NamePool): fc.Arbitrary<Buffer> {
  const ptr = (off: number) => Buffer.from([0xc0 | ((off >> 8) & 0x3f), off & 0xff]);
  const shape = fc.oneof(
    fc.constant('self'), fc.constant('ab'), fc.constant('labelloop'), fc.constant('header'),
    fc.constant('forward'), fc.constant('pastend'), fc.constant('maxptr'), fc.constant('chain'),
  );
  return fc.tuple(shape, fc.constantFrom('question', 'owner', 'ptrdata', 'srvtarget'), fc.nat(0x3fff), arbOwner(pool), fc.uint8Array({ maxLength: 16 }))
    .map(([s, where, rnd, goodName, tail]) => {
      // the name starts right after whatever precedes it; `at` is its offset
      const build = (at: number): Buffer => {
        switch (s) {
          case 'self': return ptr(at);
          case 'ab': return Buffer.concat([ptr(at + 2), ptr(at)]); // A → B → A
          case 'labelloop': return Buffer.concat([Buffer.from([3]), Buffer.from('abc'), ptr(at)]);
          case 'header': return ptr(rnd % 12);
          case 'forward': return ptr(at + 2 + (rnd % 40));
          case 'pastend': return ptr(4000 + (rnd % 12000));
          case 'maxptr': return Buffer.from([0xff, 0xff]);
          default: { // chain of many backward pointers ending in a loop
            const parts: Buffer[] = [];
            for (let i = 0; i < 20; i++) parts.push(ptr(at + 2 * (i + 1)));
            parts.push(ptr(at));
            return Buffer.concat(parts);
          }
        }
      };
      const tailB = Buffer.from(tail);
      if (where === 'question') {
        const h = header({ qd: 1 });
        return Buffer.concat([h, build(12), u16(TYPE.PTR), u16(1), tailB]);
      }
      if (where === 'owner') {
        const h = header({ flags: RESPONSE_FLAGS, an: 1 });
        return Buffer.concat([h, build(12), u16(TYPE.SRV), u16(1), Buffer.from([0, 0, 0, 120]), u16(8), Buffer.from([0, 0, 0, 0, 0x6b, 0x6c]), ptr(12), tailB]);
      }
      const owner = rawName(goodName.split('.'));
      const h = header({ flags: RESPONSE_FLAGS, an: 1 });
      const rdStart = 12 + owner.length + 10 + (where === 'srvtarget' ? 6 : 0);
      const nm = build(rdStart);
      const rdata = where === 'srvtarget' ? Buffer.concat([Buffer.from([0, 0, 0, 0, 0x6b, 0x6c]), nm]) : nm;
      return Buffer.concat([h, rawRR(owner, where === 'srvtarget' ? TYPE.SRV : TYPE.PTR, 4500, rdata), tailB]);
    });
}

/** Label length bytes 64..255 (reserved bits, or pointers made of garbage), and names > 255 bytes. */
export function arbBadLabels(pool: NamePool): fc.Arbitrary<Buffer> {
  const longLabel = fc.integer({ min: 64, max: 255 }).map((n) => Buffer.concat([Buffer.from([n]), Buffer.alloc(Math.min(n, 200), 0x61), Buffer.from([0])]));
  const longName = fc.integer({ min: 5, max: 40 }).map((k) => rawName(Array.from({ length: k }, (_, i) => 'x'.repeat(63 - (i % 3)))));
  const longRdata = fc.integer({ min: 5, max: 20 }).map((k) => rawName(Array.from({ length: k }, () => 'y'.repeat(63))));
  return fc.tuple(fc.oneof(longLabel, longName, longRdata), fc.constantFrom('question', 'owner', 'ptrdata'), arbOwner(pool)).map(([nm, where, good]) => {
    if (where === 'question') return Buffer.concat([header({ qd: 1 }), nm, u16(TYPE.ANY), u16(1)]);
    if (where === 'owner') return Buffer.concat([header({ flags: RESPONSE_FLAGS, an: 1 }), rawRR(nm, TYPE.A, 120, Buffer.from([10, 98, 0, 9]))]);
    return Buffer.concat([header({ flags: RESPONSE_FLAGS, an: 1 }), rawRR(rawName(good.split('.')), TYPE.PTR, 4500, nm)]);
  });
}

/** Headers claiming up to 65535 questions / records, followed by a few real ones (or none). */
export function arbHugeCounts(pool: NamePool): fc.Arbitrary<Buffer> {
  const count = fc.oneof(fc.constant(65535), fc.integer({ min: 1000, max: 65535 }), fc.nat(3));
  return fc.tuple(fc.boolean(), count, count, count, count, fc.oneof(arbQuery(pool), arbResponse(pool, 4)))
    .map(([resp, qd, an, ns, ar, body]) => Buffer.concat([header({ flags: resp ? RESPONSE_FLAGS : 0, qd, an, ns, ar }), body.subarray(12)]));
}

/** ~9000-byte packets: a valid packet padded, or a few questions / records repeated past 9000 bytes. */
export function arbOversized(pool: NamePool): fc.Arbitrary<Buffer> {
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc(Math.max(0, 9000 - b.length), 0)]).subarray(0, 9000);
  const grow = <T>(xs: T[], size: (ys: T[]) => number): T[] => {
    const k = Math.ceil(9000 / Math.max(1, size(xs) - 12));
    return Array.from({ length: k }, () => xs).flat();
  };
  return fc.oneof(
    arbValidPacket(pool).map(pad),
    fc.array(arbQuestion(pool), { minLength: 3, maxLength: 10 })
      .map((qs) => dnsPacket.encode({ type: 'query', questions: grow(qs, (questions) => dnsPacket.encodingLength({ type: 'query', questions })) })),
    fc.array(arbRecord(pool), { minLength: 3, maxLength: 10 })
      .map((rs) => dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: grow(rs, (answers) => dnsPacket.encodingLength({ type: 'response', answers })) })),
  );
}
