/**
 * Hostile peers against the responder, in-process (FakeSocket, no network): spoofed answers for
 * our names, spoofed goodbyes, a persistent impostor, query floods (RFC 6762 §6 rate limits).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { Responder } from '../../lib/discovery/responder.js';
import { listLinks } from '../../lib/discovery/interfaces.js';
import { hostFqdn, instanceFqdn, subtypeName } from '../../lib/discovery/names.js';
import { decodeMessage, encodeMessage, type Message } from '../../lib/discovery/packets.js';
import { fakeFactory, rinfo, trapLogger, type FakeSocket, type Sent } from './helpers.js';

const skip = listLinks({ interfaces: ['lo'] }).length === 0 && 'no loopback interface with IPv4';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const H1 = sha('spoof-1');
const H2 = sha('spoof-2');
const ATTACKER = '127.0.0.66';

async function started(name: string, opts: { unicastRateLimit?: { burst: number; perSecond: number } } = {}) {
  const { sockets, factory } = fakeFactory();
  const log = trapLogger();
  const r = new Responder({ port: 27500, interfaces: ['lo'], instanceName: name, hostName: 'spoofhost', socketFactory: factory, logger: log, pollIntervalMs: 60_000, ...opts });
  r.setHashes([H1, H2]);
  await r.start();
  return { r, sock: sockets[0]!, log };
}

const dec = (s: Sent): Message => decodeMessage(s.buf)!;
const isMulticast = (s: Sent) => s.dest === undefined || s.dest.address === '224.0.0.251';
const announcesSrv = (port: number) => (s: Sent) => isMulticast(s) && dec(s).response && dec(s).answers.some((rr) => rr.type === 'SRV' && rr.ttl > 0 && rr.data.port === port);
const isProbe = (s: Sent) => !dec(s).response && dec(s).authorities.length > 0;

function feedResponse(sock: FakeSocket, answers: dnsPacket.Answer[], from = ATTACKER): void {
  const buf = dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers });
  sock.receive(buf, rinfo(from, 5353, buf.length));
}

test('spoofed SRV for our instance name (other port/target): probes again, keeps the name, re-announces the true SRV', { skip, timeout: 15000 }, async () => {
  const { r, sock, log } = await started('Passim-5P00');
  try {
    const mark = sock.sent.length;
    const reannounced = sock.waitSent(announcesSrv(27500), 5000, 're-announcement');
    feedResponse(sock, [{ type: 'SRV', name: instanceFqdn('Passim-5P00'), ttl: 120, flush: true, data: { priority: 0, weight: 0, port: 1, target: 'evil.local' } }]);
    assert.equal(r.state, 'probing', 'a conflicting answer sends it back to probing (RFC 6762 §9)');
    await reannounced;
    assert.equal(r.state, 'running');
    assert.equal(r.instanceName, 'Passim-5P00', 'nobody defended the name: kept');
    assert.equal(sock.sent.slice(mark).filter(isProbe).length, 3, 'three probes before claiming again');
    assert.ok(r.has(H1) && r.has(H2) && r.size === 2, 'advertised set unchanged');
    assert.deepEqual(log.caught, []);
  } finally {
    await r.stop();
  }
});

test('spoofed A record for our host name: probes again and re-announces our address', { skip, timeout: 15000 }, async () => {
  const { r, sock, log } = await started('Passim-5P01');
  try {
    const reannounced = sock.waitSent((s) => isMulticast(s) && dec(s).response && dec(s).answers.some((rr) => rr.type === 'A' && rr.ttl > 0 && rr.data === sock.link.address), 5000, 'A re-announcement');
    feedResponse(sock, [{ type: 'A', name: hostFqdn('spoofhost'), ttl: 120, flush: true, data: '10.66.66.66' }]);
    assert.equal(r.state, 'probing');
    await reannounced;
    assert.equal(r.hostName, 'spoofhost');
    assert.equal(r.instanceName, 'Passim-5P01');
    assert.deepEqual(log.caught, []);
  } finally {
    await r.stop();
  }
});

test('an impostor that answers every probe with its own SRV: we rename per the conflict rules and keep answering', { skip, timeout: 20000 }, async () => {
  const { r, sock, log } = await started('Passim-5P02');
  const name = instanceFqdn('Passim-5P02');
  const impostor = (s: Sent) => {
    const m = dec(s);
    if (!m.response && m.questions.some((q) => q.name.toLowerCase() === name.toLowerCase())) {
      // answer the probe as the impostor, on the next tick (as a network would)
      setImmediate(() => feedResponse(sock, [{ type: 'SRV', name, ttl: 120, flush: true, data: { priority: 0, weight: 0, port: 9, target: 'evil.local' } }]));
    }
  };
  try {
    sock.events.on('sent', impostor);
    const renamed = sock.waitSent((s) => isMulticast(s) && dec(s).answers.some((rr) => rr.type === 'SRV' && rr.name === instanceFqdn('Passim-5P02 #2')), 8000, 'announcement under the new name');
    feedResponse(sock, [{ type: 'SRV', name, ttl: 120, flush: true, data: { priority: 0, weight: 0, port: 9, target: 'evil.local' } }]);
    await renamed;
    assert.equal(r.instanceName, 'Passim-5P02 #2');
    assert.ok(r.has(H1) && r.size === 2);
    // the subtype now points at the new name
    const q = encodeMessage({ id: 5, response: false, questions: [{ name: subtypeName(H1), type: 'PTR' }] });
    const reply = sock.waitSent((s) => s.dest?.port === 40000, 2000, 'legacy reply');
    sock.receive(q, rinfo('127.0.0.9', 40000, q.length));
    assert.equal((dec(await reply).answers[0] as { data: string }).data, instanceFqdn('Passim-5P02 #2'));
    assert.deepEqual(log.caught, []);
  } finally {
    sock.events.off('sent', impostor);
    await r.stop();
  }
});

test('spoofed goodbye (TTL 0) for our subtype PTR: multicast again at once with the full TTL (RFC 6762 §10.1); a goodbye flood costs ≤ 4 sends a second', { skip, timeout: 15000 }, async (t) => {
  const { r, sock, log } = await started('Passim-5P03');
  const ptr = (ttl: number): dnsPacket.Answer => ({ type: 'PTR', name: subtypeName(H1), ttl, data: instanceFqdn('Passim-5P03') });
  const rescues = (s: Sent) => isMulticast(s) && dec(s).response && dec(s).answers.some((rr) => rr.type === 'PTR' && rr.name === subtypeName(H1) && rr.ttl === 4500);
  try {
    const t0 = Date.now();
    const rescued = sock.waitSent(rescues, 1000, 'rescue of the subtype PTR');
    feedResponse(sock, [ptr(0)]);
    const s = await rescued;
    t.diagnostic(`re-announced ${s.t - t0} ms after the spoofed goodbye`);
    assert.ok(s.t - t0 < 1000, 'within the one second caches keep a goodbye record');
    assert.equal(r.state, 'running');
    assert.equal(r.instanceName, 'Passim-5P03');
    assert.ok(r.has(H1), 'a goodbye from someone else does not remove our record');

    // a goodbye for someone else's instance under the same subtype is none of our business
    const before = sock.sent.length;
    feedResponse(sock, [{ type: 'PTR', name: subtypeName(H1), ttl: 0, data: instanceFqdn('Passim-0THR') }]);
    // a TTL that is merely low (< half) is corrected too: the service PTR
    const svc = sock.waitSent((x) => isMulticast(x) && dec(x).answers.some((rr) => rr.type === 'PTR' && rr.name === '_cache._tcp.local' && rr.ttl === 4500), 2000, 'service PTR');
    feedResponse(sock, [{ type: 'PTR', name: '_cache._tcp.local', ttl: 100, data: instanceFqdn('Passim-5P03') }]);
    await svc;
    assert.ok(sock.sent.slice(before).every((x) => !dec(x).answers.some((rr) => rr.type === 'PTR' && String(rr.data).startsWith('Passim-0THR'))));

    // flood: 2000 spoofed goodbyes over ~1 s → a handful of rescues, not 2000
    const mark = sock.sent.length;
    const start = Date.now();
    await new Promise<void>((resolve) => {
      let n = 0;
      const tick = () => {
        for (let i = 0; i < 40 && n < 2000; i++, n++) feedResponse(sock, [ptr(0)]);
        if (n < 2000) setTimeout(tick, 20);
        else resolve();
      };
      tick();
    });
    await sock.waitSent(rescues, 1000, 'last rescue');
    const elapsed = Date.now() - start;
    const sent = sock.sent.slice(mark).filter(rescues).length;
    t.diagnostic(`2000 spoofed goodbyes in ${elapsed} ms → ${sent} rescue packets`);
    assert.ok(sent >= 1 && sent <= Math.ceil(elapsed / 250) + 1, `${sent} rescues in ${elapsed} ms`);
    assert.deepEqual(log.caught, []);
  } finally {
    await r.stop();
  }
});

test('query flood: the same multicast answer at most once a second (RFC 6762 §6); unicast replies per source rate-limited; others still answered', { skip, timeout: 15000 }, async (t) => {
  const { r, sock, log } = await started('Passim-5P04', { unicastRateLimit: { burst: 50, perSecond: 25 } });
  const answersH1 = (s: Sent) => dec(s).response && dec(s).answers.some((rr) => rr.type === 'PTR' && rr.name === subtypeName(H1));
  try {
    const qm = encodeMessage({ response: false, questions: [{ name: subtypeName(H1), type: 'PTR' }] });
    const mark = sock.sent.length;
    const start = Date.now();
    const first = sock.waitSent((s) => isMulticast(s) && answersH1(s), 2000, 'first multicast answer');
    let queries = 0;
    for (let i = 0; i < 5000; i++, queries++) sock.receive(qm, rinfo(`127.0.${1 + (i % 200)}.${2 + (i % 250)}`, 5353, qm.length));
    await first;
    // the queries keep coming for another ~1.5 s, from a timer, while we count
    await new Promise<void>((resolve) => {
      const tick = () => {
        for (let i = 0; i < 100; i++, queries++) sock.receive(qm, rinfo('127.0.0.77', 5353, qm.length));
        if (Date.now() - start < 1500) setTimeout(tick, 10);
        else resolve();
      };
      tick();
    });
    // observation window for a last delayed answer (shared answers wait 20–120 ms): nothing to wait on
    await sock.waitSent(() => false, 150).catch(() => undefined);
    const elapsed = Date.now() - start;
    const multi = sock.sent.slice(mark).filter((s) => isMulticast(s) && answersH1(s)).length;
    t.diagnostic(`QM flood: ${queries} queries in ${elapsed} ms → ${multi} multicast answers`);
    assert.ok(multi >= 1 && multi <= Math.floor(elapsed / 1000) + 1, `${multi} multicast answers in ${elapsed} ms`);

    // legacy flood from one source: bounded unicast replies
    const legacy = encodeMessage({ id: 9, response: false, questions: [{ name: subtypeName(H1), type: 'PTR' }] });
    const m2 = sock.sent.length;
    const t2 = Date.now();
    for (let i = 0; i < 3000; i++) sock.receive(legacy, rinfo('127.0.0.88', 40000 + (i % 1000), legacy.length));
    const uni = sock.sent.slice(m2).filter((s) => s.dest?.address === '127.0.0.88').length;
    const bound = 50 + Math.ceil(((Date.now() - t2) / 1000) * 25);
    t.diagnostic(`legacy flood: 3000 queries from one address → ${uni} unicast replies (bound ${bound})`);
    assert.ok(uni >= 50 && uni <= bound, `${uni} unicast replies`);
    // another querier is still answered at once
    const other = sock.waitSent((s) => s.dest?.address === '127.0.0.99', 1000, 'reply to another host');
    const q2 = encodeMessage({ id: 10, response: false, questions: [{ name: subtypeName(H2), type: 'PTR' }] });
    sock.receive(q2, rinfo('127.0.0.99', 41000, q2.length));
    const o = dec(await other);
    assert.equal(o.answers[0]!.name, subtypeName(H2));
    assert.equal(r.state, 'running');
    assert.deepEqual(log.caught, []);
  } finally {
    await r.stop();
  }
});

test('a query asked before the sockets are open (the peer cache starts with the daemon) goes out once they are', async () => {
  const { sockets, factory } = fakeFactory();
  const r = new Responder({ port: 27500, interfaces: ['lo'], instanceName: 'Passim-EARLY', hostName: 'earlyhost', socketFactory: factory, logger: trapLogger(), pollIntervalMs: 60_000 });
  r.query([{ name: '_cache._tcp.local', type: 'PTR' }]);
  assert.equal(sockets.length, 0, 'no socket yet');
  await r.start();
  try {
    const asked = sockets[0]!.sent.map(dec).filter((m) => !m.response && m.questions.some((q) => q.name === '_cache._tcp.local' && q.type === 'PTR'));
    assert.equal(asked.length, 1);
  } finally {
    await r.stop();
  }
});

test('subtypes asked for while we probe (a restart under a querying peer) are in the first announcement, ahead of the rest', { skip, timeout: 15000 }, async () => {
  const { sockets, factory, made } = fakeFactory();
  const hashes = Array.from({ length: 50 }, (_, i) => sha(`restart-${i}`));
  const r = new Responder({
    port: 27500, interfaces: ['lo'], instanceName: 'Passim-ASKD', hostName: 'askedhost', socketFactory: factory, logger: trapLogger(),
    pollIntervalMs: 60_000, maxAnnouncedSubtypes: 2,
  });
  r.setHashes(hashes);
  const socketMade = new Promise<FakeSocket>((resolve) => made.once('socket', resolve));
  const started = r.start();
  try {
    const sock = await socketMade;
    await sock.waitSent(isProbe, 5000, 'the first probe');
    assert.equal(r.state, 'probing');
    // one legacy (one-shot, ephemeral port) and one QM question, for hashes well past the first two
    for (const [h, port] of [[hashes[40]!, 40000], [hashes[45]!, 5353]] as const) {
      const buf = dnsPacket.encode({ type: 'query', id: port === 5353 ? 0 : 7, questions: [{ name: subtypeName(h), type: 'PTR' }] });
      sock.receive(buf, rinfo('127.0.0.9', port, buf.length));
    }
    const announcement = sock.waitSent(announcesSrv(27500), 5000, 'the first announcement');
    await started;
    const names = dec(await announcement).answers.filter((rr) => rr.type === 'PTR').map((rr) => rr.name);
    assert.ok(names.includes(subtypeName(hashes[40]!)), 'the subtype asked by a one-shot query is announced');
    assert.ok(names.includes(subtypeName(hashes[45]!)), 'the subtype asked by a QM query is announced');
    assert.ok(!names.includes(subtypeName(hashes[41]!)), 'a subtype nobody asked for, past the budget, is not');
    assert.equal(sockets.length, 1);
  } finally {
    await started.catch(() => undefined);
    await r.stop();
  }
});
