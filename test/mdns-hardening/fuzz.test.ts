/**
 * Fuzz of mDNS packet handling, in-process (no sockets): generated datagrams go through
 * MdnsSocket.receive (decode → 'message') into a running Responder and into a running browse(),
 * both built on FakeSocket. Fixed seed; ≥ 10,000 cases per input class; counts printed.
 *
 * Responder properties: never throws (nothing reaches a catch-all); every reply is a valid packet
 * ≤ 1400 bytes holding only our own records; the advertised set and instance name never change.
 * Browser properties: never throws; yields only peers with a port and a usable address; tracks
 * at most 256 instances (≤ 32 per answering address); ends when aborted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import { Responder } from '../../lib/discovery/responder.js';
import { browse, type BrowserConfig } from '../../lib/discovery/browser.js';
import { listLinks } from '../../lib/discovery/interfaces.js';
import { hostFqdn, instanceFqdn, nameKey, SERVICE, SERVICES_META, subtypeKeyOf, subtypeName } from '../../lib/discovery/names.js';
import { decodeMessage, MAX_MESSAGE_BYTES } from '../../lib/discovery/packets.js';
import { address, recordKey, servicePtr, servicesMetaPtr, srv, subtypePtr, txt } from '../../lib/discovery/records.js';
import type { Peer } from '../../lib/discovery/types.js';
import { fakeFactory, rinfo, runClass, trapLogger, unusableFromLan, type ClassResult, type FakeSocket, type Sent } from './helpers.js';
import {
  arbBadLabels, arbHugeCounts, arbOversized, arbPointerAttack, arbQuery, arbRandomBytes, arbResponse, arbTruncated, arbTtl, type NamePool,
} from './arbitraries.js';

const skip = listLinks({ interfaces: ['lo'] }).length === 0 && 'no loopback interface with IPv4';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const HASHES = Array.from({ length: 40 }, (_, i) => sha(`fuzz-${i}`));
const OTHER = Array.from({ length: 10 }, (_, i) => sha(`other-${i}`));
const INSTANCE = 'Passim-F00D';
const HOST = 'fuzzhost';
const PORT = 27500;

const summary: ClassResult[] = [];

/** Checks one datagram the responder sent: valid, ≤ 1400 bytes, only our records. */
function checkReply(s: Sent, own: Set<string>, problems: string[]): void {
  if (s.buf.length > MAX_MESSAGE_BYTES) problems.push(`reply of ${s.buf.length} bytes`);
  let raw: dnsPacket.DecodedPacket;
  try {
    raw = dnsPacket.decode(s.buf);
  } catch (err) {
    problems.push(`reply does not decode: ${(err as Error).message}`);
    return;
  }
  const m = decodeMessage(s.buf);
  if (!m) {
    problems.push('reply rejected by decodeMessage');
    return;
  }
  if (!m.response) {
    // probes (only while probing) are queries about our own names
    for (const q of m.questions) if (![nameKey(instanceFqdn(INSTANCE)), nameKey(hostFqdn(HOST))].includes(nameKey(q.name))) problems.push(`query for ${q.name}`);
  }
  const rawCount = (raw.answers?.length ?? 0) + (raw.additionals?.length ?? 0) + (raw.authorities?.length ?? 0);
  const recs = [...m.answers, ...m.additionals, ...m.authorities];
  if (recs.length !== rawCount) problems.push(`reply holds ${rawCount - recs.length} record(s) of a foreign shape`);
  for (const rr of recs) if (!own.has(recordKey({ ...rr, ttl: 0 }))) problems.push(`foreign record ${rr.type} ${rr.name}`);
}

test('responder: generated datagrams never throw, replies are valid, ≤ 1400 bytes and ours only; state unchanged', { skip, timeout: 60000 }, async (t) => {
  const { sockets, factory } = fakeFactory();
  const log = trapLogger();
  const r = new Responder({
    port: PORT, interfaces: ['lo'], instanceName: INSTANCE, hostName: HOST, socketFactory: factory, logger: log,
    sharedAnswerDelayMs: [0, 0], unicastRateLimit: { burst: 1e9, perSecond: 1e9 }, pollIntervalMs: 60_000,
  });
  r.setHashes(HASHES);
  await r.start();
  assert.equal(r.instanceName, INSTANCE);
  const sock = sockets[0]!;
  const lo = sock.link.address;
  const own = new Set([
    servicesMetaPtr(), servicePtr(INSTANCE), srv(INSTANCE, HOST, PORT), txt(INSTANCE), address(HOST, lo),
    ...HASHES.map((h) => subtypePtr(h, INSTANCE)),
  ].map((rr) => recordKey({ ...rr, ttl: 0 })));
  const problems: string[] = [];
  let replies = 0;
  let bytes = 0;
  sock.events.on('sent', (s: Sent) => {
    replies++;
    bytes += s.buf.length;
    checkReply(s, own, problems);
  });

  // Generated records never carry other data for our unique names (that is a legitimate conflict,
  // tested in spoof.test.ts); `echo` repeats our own records with any TTL, goodbyes included.
  const ourUnique = new Set([nameKey(instanceFqdn(INSTANCE)), nameKey(hostFqdn(HOST))]);
  const conflicts = (a: dnsPacket.Answer) => {
    if (!ourUnique.has(nameKey(a.name))) return false;
    const rr = decodeMessage(dnsPacket.encode({ type: 'response', answers: [a] }))?.answers[0];
    return !!rr && ['SRV', 'TXT', 'A'].includes(rr.type) && rr.ttl > 0 && !own.has(recordKey(rr));
  };
  const pool: NamePool = {
    names: [
      SERVICE, SERVICES_META, instanceFqdn(INSTANCE), hostFqdn(HOST), instanceFqdn('Passim-0THR'), 'other.local',
      ...HASHES.slice(0, 10).map(subtypeName), ...OTHER.map(subtypeName), `_${'0'.repeat(60)}._sub.${SERVICE}`,
    ],
    instances: [instanceFqdn(INSTANCE), instanceFqdn('Passim-0THR'), instanceFqdn('Passim-F00D #2')],
    hosts: ['other.local', 'evil.local', hostFqdn(HOST)],
    recordOk: (a) => !conflicts(a),
  };
  const ours = [servicesMetaPtr(), servicePtr(INSTANCE), srv(INSTANCE, HOST, PORT), txt(INSTANCE), address(HOST, lo), ...HASHES.slice(0, 5).map((h) => subtypePtr(h, INSTANCE))];
  const echo = fc.tuple(fc.subarray(ours, { minLength: 1 }), fc.array(arbTtl, { minLength: ours.length, maxLength: ours.length }))
    .map(([rrs, ttls]) => dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: rrs.map((rr, i) => ({ ...rr, ttl: ttls[i]! })) as unknown as dnsPacket.Answer[] }));
  const safeResponse = fc.oneof(arbResponse(pool), echo);
  const src = fc.record({ host: fc.integer({ min: 2, max: 254 }), port: fc.oneof(fc.constant(5353), fc.integer({ min: 1024, max: 65535 })) });
  let legitConflicts = 0;
  /** independent oracle: the packet is a response holding other data for our SRV/TXT/A */
  const isLegitConflict = (buf: Buffer) => {
    const m = decodeMessage(buf);
    return !!m && m.response && [...m.answers, ...m.additionals].some((rr) =>
      ourUnique.has(nameKey(rr.name)) && ['SRV', 'TXT', 'A'].includes(rr.type) && rr.ttl > 0 && !own.has(recordKey(rr)));
  };
  const feed = async (buf: Buffer, s: { host: number; port: number }) => {
    const before = replies;
    sock.receive(buf, rinfo(`127.0.0.${s.host}`, s.port, buf.length));
    if (log.caught.length) throw new Error(`exception caught: ${log.caught.join(' | ')}`);
    if (problems.length) throw new Error(`bad reply: ${problems.join(' | ')}`);
    if (r.state !== 'running') {
      // only a real conflict (bytes that happen to decode as one) may send it back to probing;
      // nobody defends the name, so it keeps it and announces again
      if (!isLegitConflict(buf)) throw new Error(`state changed without a conflict: ${r.state}`);
      legitConflicts++;
      await sock.waitSent((x) => (decodeMessage(x.buf)?.answers ?? []).some((rr) => rr.type === 'SRV' && rr.ttl > 0), 5000, 're-announcement');
    }
    if (r.instanceName !== INSTANCE || r.state !== 'running') throw new Error(`state changed: ${r.instanceName} ${r.state}`);
    if (r.size !== HASHES.length || !r.has(HASHES[(before + buf.length) % HASHES.length]!)) throw new Error('advertised set changed');
  };
  const classes: Array<[string, fc.Arbitrary<Buffer>]> = [
    ['random bytes', arbRandomBytes()],
    ['truncated valid packets', arbTruncated(pool)],
    ['compression pointer loops / past the end', arbPointerAttack(pool)],
    ['label length > 63, names > 255', arbBadLabels(pool)],
    ['counts claiming up to 65535 records', arbHugeCounts(pool)],
    ['oversized (9000-byte) packets', arbOversized(pool)],
    ['valid queries, random names/types/QU/known answers', arbQuery(pool)],
    ['valid responses (goodbyes and echoes of ours, others\' records)', safeResponse],
  ];
  try {
    for (const [label, arb] of classes) {
      const r0 = replies;
      const c0 = legitConflicts;
      summary.push(await runClass(t, `responder · ${label}`, fc.tuple(arb, src), ([b, s]) => feed(b, s), () => `${replies - r0} replies checked, ${legitConflicts - c0} decoded as real conflicts`));
    }
    // let delayed sends (goodbye rescues) happen, then check them too
    await sock.waitSent(() => true, 400).catch(() => undefined);
  } finally {
    await r.stop();
  }
  assert.deepEqual(problems, []);
  assert.deepEqual(log.caught, []);
  t.diagnostic(`responder: ${replies} replies (${bytes} bytes), all valid, ≤ ${MAX_MESSAGE_BYTES} bytes, own records only`);
});

test('browser: generated datagrams never throw; only usable peers; instances capped; ends when aborted', { skip, timeout: 60000 }, async (t) => {
  const HASH = sha('browse-target');
  const SUB = subtypeName(HASH);
  const fakeInstances = Array.from({ length: 600 }, (_, i) => instanceFqdn(`Passim-${(0x1000 + i).toString(16).toUpperCase()}`));
  const hosts = Array.from({ length: 20 }, (_, i) => `h${i}.local`);
  const pool: NamePool = {
    names: [SUB, SUB, SUB, SERVICE, ...fakeInstances.slice(0, 50), ...hosts, subtypeName(sha('x'))],
    instances: [...fakeInstances, `${SUB}`, 'not-an-instance.local', `a.b.${SERVICE}`],
    hosts,
  };
  const sources = fc.integer({ min: 1, max: 40 }).map((i) => `10.98.7.${i}`);
  for (const [label, arb] of [
    ['random bytes', arbRandomBytes()],
    ['truncated valid packets', arbTruncated(pool)],
    ['compression pointer loops / past the end', arbPointerAttack(pool)],
    ['label length > 63, names > 255', arbBadLabels(pool)],
    ['counts claiming up to 65535 records', arbHugeCounts(pool)],
    ['oversized (9000-byte) packets', arbOversized(pool)],
    ['answers: wrong types, SRV port 0, weird addresses, many instances', arbResponse(pool, 30)],
  ] as Array<[string, fc.Arbitrary<Buffer>]>) {
    const { sockets, factory, made } = fakeFactory();
    const log = trapLogger();
    const ac = new AbortController();
    const peers: Peer[] = [];
    const firstQuery = new Promise<FakeSocket>((resolve) => made.on('socket', (s: FakeSocket) => {
      if (s.opts.port === 0) void s.waitSent(() => true).then(() => resolve(s));
    }));
    const it = browse(HASH, { interfaces: ['lo'], timeoutMs: 60_000, maxMs: 120_000, signal: ac.signal, socketFactory: factory, logger: log, queryScheduleMs: [0] } as BrowserConfig);
    const consumer = (async () => {
      for await (const p of it) peers.push(p);
    })();
    const query = await firstQuery;
    const listen = sockets.find((s) => s.opts.port !== 0)!;
    assert.ok(listen, 'listening socket made too');
    const tFeed = Date.now();
    summary.push(await runClass(t, `browser · ${label}`, fc.tuple(arb, sources, fc.boolean()), ([buf, from, viaListen]) => {
      (viaListen ? listen : query).receive(buf, rinfo(from, 5353, buf.length));
      if (log.caught.length) throw new Error(`exception caught: ${log.caught.join(' | ')}`);
    }, () => `${peers.length} peers yielded`));
    t.diagnostic(`browser · ${label}: fed in ${Date.now() - tFeed} ms`);
    const t0 = Date.now();
    ac.abort();
    await consumer;
    const endMs = Date.now() - t0;
    assert.ok(endMs < 1000, `browse ended ${endMs} ms after abort`);
    for (const p of peers) {
      assert.ok(p.port >= 1 && p.port <= 65535, `peer port ${p.port}`);
      assert.ok(!unusableFromLan(p.address), `unusable peer address ${p.address}`);
      assert.ok(hosts.includes(p.host.toLowerCase()) || p.host.length > 0);
    }
    // instances asked about (SRV) and yielded stay under the caps
    const asked = new Set<string>();
    for (const s of query.sent) for (const q of dnsPacket.decode(s.buf).questions ?? []) if (q.type === 'SRV') asked.add(q.name.toLowerCase());
    const yielded = new Set(peers.map((p) => p.instance));
    assert.ok(asked.size <= 256 && yielded.size <= 256, `${asked.size} instances resolved, ${yielded.size} yielded`);
    for (const s of query.sent) assert.ok(s.buf.length <= MAX_MESSAGE_BYTES);
    assert.ok([...query.sent].every((s) => dnsPacket.decode(s.buf).type === 'query'), 'the browser only sends queries');
    assert.ok([...asked].every((n) => !subtypeKeyOf(n)), 'no SRV question for a subtype name');
    t.diagnostic(`browser · ${label}: ${asked.size} instances resolved, ${yielded.size} yielded as peers, ended ${endMs} ms after abort`);
  }
});

test('summary: input class → cases → failures', { skip }, (t) => {
  for (const r of summary) t.diagnostic(`| ${r.label} | ${r.cases} | ${r.failures} |`);
  assert.ok(summary.length >= 15);
  assert.ok(summary.every((r) => r.cases >= 10_000 && r.failures === 0));
});
