/**
 * The peer cache fed by real mDNS packets on the loopback interface: a listener on lo:5353 hands
 * every response to the cache, as the daemon's responder does. Crafted responses are sent from
 * sockets bound to 127.0.0.2, 127.0.0.3 … port 5353, so each test's packets have their own source
 * address and the harness ingests only those (other tests may use lo:5353 at the same time). The
 * cache's clock is injected, so TTLs are tested without waiting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { createHash } from 'node:crypto';
import { PeerCache, type PeerCacheLimits } from '../../lib/discovery/peer-cache.js';
import { lookupPeer, type PeerFinder } from '../../lib/discovery/peer-lookup.js';
import { Responder } from '../../lib/discovery/responder.js';
import { MdnsSocket } from '../../lib/discovery/mdns-socket.js';
import { listLinks, type LinkAddress } from '../../lib/discovery/interfaces.js';
import { decodeMessage, encodeMessage, type Message, type OutMessage } from '../../lib/discovery/packets.js';
import fc from 'fast-check';
import { address, servicePtr, srv, subtypePtr } from '../../lib/discovery/records.js';
import type { RR } from '../../lib/discovery/records.js';
import { subtypeName } from '../../lib/discovery/names.js';

const LO = ['lo'];
const link = listLinks({ interfaces: LO })[0] as LinkAddress | undefined;
const skip = !link && 'no loopback interface with IPv4';
const sha = (s: string) => createHash('sha256').update(`peer-cache-${process.pid}-${s}`).digest('hex');
let nextId = 1;

interface Harness {
  cache: PeerCache;
  clock: { now: number };
  /** sends a response from 127.0.0.<n>:5353 and resolves once the cache has ingested it */
  send(from: number, m: Omit<OutMessage, 'response'>): Promise<void>;
  /** ingest packets from this address too from now on */
  allow(address: string): void;
  /** resolves once a message matching `pred` has been ingested */
  ingested(pred: (m: Message) => boolean): Promise<void>;
}

async function harness(t: import('node:test').TestContext, opts: { sources: string[]; limits?: Partial<PeerCacheLimits>; own?: string; realClock?: boolean }): Promise<Harness> {
  const clock = { now: 1_000_000 };
  const cache = new PeerCache({ now: opts.realClock ? Date.now : () => clock.now, limits: opts.limits, isOwnInstance: (i) => i === opts.own });
  const listen = new MdnsSocket({ link: link! });
  await listen.open();
  const allowed = new Set(opts.sources);
  const waiters = new Map<string, () => void>();
  const watchers = new Set<(m: Message) => void>();
  listen.on('message', (msg: Message, rinfo) => {
    if (rinfo.port !== 5353 || !allowed.has(rinfo.address)) return;
    cache.ingest(msg, { address: rinfo.address, link: link! });
    waiters.get(`${rinfo.address}#${msg.id}`)?.();
    for (const w of [...watchers]) w(msg);
  });
  const senders = new Map<number, dgram.Socket>();
  t.after(async () => {
    cache.stop();
    await listen.close();
    for (const s of senders.values()) s.close();
  });
  const sender = async (n: number) => {
    let s = senders.get(n);
    if (s) return s;
    s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve) => s!.bind(5353, `127.0.0.${n}`, () => resolve()));
    s.setMulticastInterface('127.0.0.1');
    s.setMulticastLoopback(true);
    senders.set(n, s);
    return s;
  };
  return {
    cache,
    clock,
    async send(from, m) {
      const s = await sender(from);
      const id = nextId++ & 0xffff;
      const got = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`packet ${id} from 127.0.0.${from} never arrived`)), 5000);
        waiters.set(`127.0.0.${from}#${id}`, () => {
          clearTimeout(timer);
          waiters.delete(`127.0.0.${from}#${id}`);
          resolve();
        });
      });
      s.send(encodeMessage({ ...m, id, response: true }), 5353, '224.0.0.251');
      await got;
    },
    allow(address) {
      allowed.add(address);
    },
    ingested(pred) {
      return new Promise((resolve) => {
        const w = (m: Message) => {
          if (!pred(m)) return;
          watchers.delete(w);
          resolve();
        };
        watchers.add(w);
      });
    },
  };
}

const strip = (peers: Array<Record<string, unknown>>) => peers.map(({ via: _v, ...p }) => p);

test('an announcement is learnt without any query; a goodbye removes it at once, the record 1 s later', { skip, timeout: 20000 }, async (t) => {
  const h1 = sha('announce-1');
  const h2 = sha('announce-2');
  const queries: unknown[] = [];
  const h = await harness(t, { sources: ['127.0.0.1'] });
  // a real responder on lo: probes, then announces its records with the subtypes
  const r = new Responder({ port: 41234, interfaces: LO, hostName: 'cachehost' });
  r.setHashes([h1, h2]);
  t.after(() => r.stop());
  const learnt = h.cache.waitFor(h1, AbortSignal.timeout(10_000));
  await r.start();
  assert.equal(await learnt, true, 'the announcement was learnt');
  assert.deepEqual(strip(h.cache.lookup(h1) as never), [{ address: '127.0.0.1', port: 41234, instance: r.instanceName, host: 'cachehost.local' }]);
  assert.equal(h.cache.lookup(h1)[0]!.via, 'mdns');
  assert.equal(h.cache.lookup(h2.toUpperCase()).length, 1, 'upper case hashes match');
  assert.deepEqual(queries, [], 'the cache sent nothing (it was never started)');

  // unpublish: the responder says goodbye (TTL 0); the pair is dead at once
  const before = h.cache.stats().records;
  const bye = h.ingested((m) => m.answers.some((a) => a.type === 'PTR' && a.name === subtypeName(h2) && a.ttl === 0));
  r.remove(h2);
  await bye;
  assert.deepEqual(h.cache.lookup(h2), [], 'goodbye: not returned any more');
  assert.equal(h.cache.lookup(h1).length, 1, 'the other hash stays');
  h.cache.sweep();
  assert.equal(h.cache.stats().records, before, 'the dying record is kept for its second (a rescue may come)');
  h.clock.now += 1001;
  h.cache.sweep();
  assert.equal(h.cache.stats().records, before - 1, 'and gone after it');
});

test('TTLs: each record lives its own TTL; expired ones are never returned and swept', { skip, timeout: 20000 }, async (t) => {
  const hash = sha('ttl');
  const h = await harness(t, { sources: ['127.0.0.2'] });
  await h.send(2, {
    answers: [subtypePtr(hash, 'Passim-0T01', 30)],
    additionals: [srv('Passim-0T01', 'ttlhost', 27500, 120), address('ttlhost', '10.98.50.1', 60)],
  });
  assert.deepEqual(strip(h.cache.lookup(hash) as never), [{ address: '10.98.50.1', port: 27500, instance: 'Passim-0T01', host: 'ttlhost.local' }]);
  h.clock.now += 29_999;
  assert.equal(h.cache.lookup(hash).length, 1);
  h.clock.now += 1;
  assert.equal(h.cache.lookup(hash).length, 0, 'the PTR expired after 30 s');
  h.cache.sweep();
  assert.deepEqual(h.cache.stats(), { hashes: 0, instances: 0, addresses: 0, records: 0 });

  // the address expires before the PTR: the peer is not returned without one
  await h.send(2, {
    answers: [subtypePtr(hash, 'Passim-0T01', 4500)],
    additionals: [srv('Passim-0T01', 'ttlhost', 27500, 120), address('ttlhost', '10.98.50.1', 60)],
  });
  assert.equal(h.cache.lookup(hash).length, 1);
  h.clock.now += 60_000;
  assert.equal(h.cache.lookup(hash).length, 0, 'no live address: no peer');
  // … and a new answer for the address brings it back
  await h.send(2, { answers: [address('ttlhost', '10.98.50.1', 120)] });
  assert.equal(h.cache.lookup(hash).length, 1);
});

test('cache-flush: a new address replaces one received over a second before; records of one burst stay together', { skip, timeout: 20000 }, async (t) => {
  const hash = sha('flush');
  const h = await harness(t, { sources: ['127.0.0.3'] });
  await h.send(3, {
    answers: [subtypePtr(hash, 'Passim-0F01')],
    additionals: [srv('Passim-0F01', 'flushhost', 27500), address('flushhost', '10.98.60.1')],
  });
  assert.deepEqual(h.cache.lookup(hash).map((p) => p.address), ['10.98.60.1']);
  h.clock.now += 1500;
  await h.send(3, { answers: [address('flushhost', '10.98.60.2')] }); // cache-flush bit set (records.ts)
  assert.deepEqual(h.cache.lookup(hash).map((p) => p.address), ['10.98.60.2'], 'the old address is flushed');
  h.clock.now += 500;
  await h.send(3, { answers: [address('flushhost', '10.98.60.3')] });
  assert.deepEqual(h.cache.lookup(hash).map((p) => p.address).sort(), ['10.98.60.2', '10.98.60.3'], 'within 1 s both stay (one host, two addresses)');
  // without the flush bit a record only adds
  h.clock.now += 5000;
  await h.send(3, { answers: [{ ...address('flushhost', '10.98.60.4'), flush: false } as RR] });
  assert.equal(h.cache.lookup(hash).length, 3);
  // a new SRV with cache-flush replaces the old port
  await h.send(3, { answers: [srv('Passim-0F01', 'flushhost', 28000)] });
  assert.deepEqual([...new Set(h.cache.lookup(hash).map((p) => p.port))], [28000]);
  // a goodbye for the SRV, then a rescue within the second, revives it
  await h.send(3, { answers: [srv('Passim-0F01', 'flushhost', 28000, 0)] });
  assert.equal(h.cache.lookup(hash).length, 0, 'SRV goodbye: no peer');
  h.clock.now += 200;
  await h.send(3, { answers: [srv('Passim-0F01', 'flushhost', 28000)] });
  assert.equal(h.cache.lookup(hash).length, 3, 'rescued');
});

test('our own instance, bad addresses and bad ports are never cached', { skip, timeout: 20000 }, async (t) => {
  const hash = sha('own');
  const h = await harness(t, { sources: ['127.0.0.4'], own: 'Passim-0OWN' });
  await h.send(4, {
    answers: [subtypePtr(hash, 'Passim-0OWN'), subtypePtr(hash, 'Passim-0B01'), subtypePtr(hash, 'Passim-0B02')],
    additionals: [
      srv('Passim-0OWN', 'ownhost', 27500), address('ownhost', '10.98.70.1'),
      srv('Passim-0B01', 'badhost', 27500), address('badhost', '224.0.0.1'), address('badhost', '0.0.0.0'), address('badhost', '255.255.255.255'),
      srv('Passim-0B02', 'goodhost', 0), address('goodhost', '10.98.70.2'),
    ],
  });
  assert.deepEqual(h.cache.lookup(hash), []);
  assert.equal(h.cache.stats().instances, 2, 'own instance not even held');
});

test('resolving: a PTR alone makes the cache ask for SRV, then the address, each rate-limited and refreshed at 80 % of its TTL', { skip, timeout: 20000 }, async (t) => {
  const hash = sha('resolve-limits');
  const h = await harness(t, { sources: ['127.0.0.9'] });
  const fqdn = 'Passim-0R01._cache._tcp.local';
  await h.send(9, { answers: [subtypePtr(hash, 'Passim-0R01')] });
  assert.deepEqual(h.cache.lookup(hash), [], 'a PTR alone is no peer yet');
  assert.deepEqual(h.cache.takeQueries(), [{ link: 'lo', questions: [{ name: fqdn, type: 'SRV' }] }]);
  assert.deepEqual(h.cache.takeQueries(), [], 'asked a moment ago');
  h.clock.now += 1000;
  assert.equal(h.cache.takeQueries().length, 1, 'asked again after 1 s');
  h.clock.now += 1000;
  assert.deepEqual(h.cache.takeQueries(), [], 'then only after 2 s more (backing off)');
  h.clock.now += 1000;
  assert.equal(h.cache.takeQueries().length, 1);
  await h.send(9, { answers: [srv('Passim-0R01', 'rhost', 27500)] });
  assert.deepEqual(h.cache.takeQueries(), [{ link: 'lo', questions: [{ name: 'rhost.local', type: 'A' }] }], 'SRV known: the address next');
  await h.send(9, { answers: [address('rhost', '10.98.40.1')] });
  assert.equal(h.cache.lookup(hash).length, 1);
  assert.deepEqual(h.cache.takeQueries(), [], 'nothing missing');
  h.clock.now += 95_000;
  assert.deepEqual(h.cache.takeQueries(), [], 'at 79 % of 120 s: nothing yet');
  h.clock.now += 2_000;
  assert.deepEqual(h.cache.takeQueries().flatMap((q) => q.questions.map((x) => x.type)).sort(), ['A', 'SRV'], 'past 80 %: refreshed');

  // the global budget: a burst of 32 questions, then 16 a second
  const many = Array.from({ length: 40 }, (_, i) => subtypePtr(sha(`budget-${i}`), `Passim-1${String(i).padStart(3, '0')}`));
  const h2 = await harness(t, { sources: ['127.0.0.10'], limits: { maxInstancesPerSource: 64 } });
  await h2.send(10, { answers: many });
  assert.equal(h2.cache.takeQueries().reduce((n, q) => n + q.questions.length, 0), 32);
  h2.clock.now += 500;
  assert.equal(h2.cache.takeQueries().reduce((n, q) => n + q.questions.length, 0), 8);
});

test('resolving for real: a responder that sends no additional records (as Avahi) is resolved by the cache\'s own queries', { skip, timeout: 20000 }, async (t) => {
  const hash = sha('resolve');
  const r = new Responder({ port: 41235, interfaces: LO, hostName: 'resolvehost', instanceName: `Passim-${process.pid.toString(16).slice(-4).toUpperCase().padStart(4, '0')}`, additionalRecords: false });
  t.after(() => r.stop());
  // its announcements (at once and 1 s later) carry SRV and A: let both pass before the cache
  // listens to 127.0.0.1, so what the cache learns below it learnt by asking
  const watch = new MdnsSocket({ link: link! });
  await watch.open();
  let announced = 0;
  const twice = new Promise<void>((resolve) => watch.on('message', (m) => {
    if (m.response && m.answers.some((a) => a.type === 'SRV' && a.name === `${r.instanceName}._cache._tcp.local` && a.ttl > 0) && ++announced === 2) resolve();
  }));
  await r.start();
  await twice;
  await watch.close();
  const h = await harness(t, { sources: ['127.0.0.5', '127.0.0.1'], realClock: true });
  await h.send(5, { answers: [subtypePtr(hash, r.instanceName)] });
  assert.deepEqual(h.cache.lookup(hash), []);
  // started, the cache sends what it lacks through a socket on lo:5353 (the daemon: through its
  // responder); the responder answers SRV by multicast (once a second at most, RFC 6762 §6.2:
  // the cache retries), that SRV makes the cache ask for the address, and that completes the peer
  const sock = new MdnsSocket({ link: link!, port: 5353 });
  await sock.open();
  t.after(() => sock.close());
  const found = h.cache.waitFor(hash, AbortSignal.timeout(10_000));
  h.cache.start((q) => void sock.send({ response: false, questions: q.questions }));
  assert.equal(await found, true, 'SRV and A were resolved by query');
  assert.deepEqual(strip(h.cache.lookup(hash) as never), [{ address: '127.0.0.1', port: 41235, instance: r.instanceName, host: 'resolvehost.local' }]);
});

test('bounds hold under a flood from one source, and the flood cannot push out other hosts', { skip, timeout: 30000 }, async (t) => {
  const limits = { maxPairs: 120, maxPairsPerSource: 50, maxInstances: 10, maxInstancesPerSource: 3, maxAddressesPerHost: 4 };
  const h = await harness(t, { sources: ['127.0.0.6', '127.0.0.7'], limits });
  const legit = sha('legit');
  await h.send(7, {
    answers: [subtypePtr(legit, 'Passim-0E01')],
    additionals: [srv('Passim-0E01', 'legithost', 27500), address('legithost', '10.98.80.1')],
  });
  // the flood: 400 hashes over 20 instances, each with an SRV and 10 addresses
  const flood = Array.from({ length: 400 }, (_, i) => sha(`flood-${i}`));
  for (let i = 0; i < flood.length; i += 10) {
    const k = (i / 10) % 20;
    const inst = `Passim-F${String(k).padStart(3, '0')}`;
    await h.send(6, {
      answers: flood.slice(i, i + 10).map((x) => subtypePtr(x, inst)),
      additionals: [srv(inst, `flood${k}`, 27500), ...Array.from({ length: 10 }, (_, j) => address(`flood${k}`, `10.98.81.${j + 1}`))],
    });
  }
  const s = h.cache.stats();
  t.diagnostic(`after the flood: ${JSON.stringify(s)}`);
  // the flooder: its first 3 instances, 50 pairs; each host at most 4 addresses; the other host: 1 + 1 + 1
  assert.deepEqual(s, { hashes: limits.maxPairsPerSource + 1, instances: limits.maxInstancesPerSource + 1, addresses: 3 * 4 + 1, records: limits.maxPairsPerSource + 1 });
  const known = flood.filter((x) => h.cache.lookup(x).length > 0).length;
  assert.equal(known, limits.maxPairsPerSource);
  assert.equal(h.cache.lookup(legit).length, 1, 'the other host is still known');
});

test('global bound: past maxPairs the pair refreshed longest ago goes (O(1) eviction)', { skip, timeout: 20000 }, async (t) => {
  const limits = { maxPairs: 20, maxPairsPerSource: 100 };
  const h = await harness(t, { sources: ['127.0.0.8'], limits });
  const hashes = Array.from({ length: 30 }, (_, i) => sha(`evict-${i}`));
  await h.send(8, { answers: hashes.slice(0, 10).map((x) => subtypePtr(x, 'Passim-0V01')), additionals: [srv('Passim-0V01', 'evhost', 27500), address('evhost', '10.98.90.1')] });
  await h.send(8, { answers: hashes.slice(10, 20).map((x) => subtypePtr(x, 'Passim-0V01')) });
  // refresh the first: the rest of the first batch is now the oldest
  await h.send(8, { answers: [subtypePtr(hashes[0]!, 'Passim-0V01')] });
  await h.send(8, { answers: hashes.slice(20, 25).map((x) => subtypePtr(x, 'Passim-0V01')) });
  assert.equal(h.cache.stats().records, 20);
  assert.equal(h.cache.lookup(hashes[0]!).length, 1, 'refreshed: kept');
  assert.equal(h.cache.lookup(hashes[1]!).length, 0, 'oldest: evicted');
  assert.equal(h.cache.lookup(hashes[15]!).length, 1);
  assert.equal(h.cache.lookup(hashes[24]!).length, 1);
});

test('peers from another source (a DNS zone) go in with their own TTL; a full hash matches by its 60-hex prefix', () => {
  const clock = { now: 5000 };
  const cache = new PeerCache({ now: () => clock.now, limits: { maxDirect: 2 } });
  const hash = 'ab'.repeat(30) + '0000';
  const sibling = 'ab'.repeat(30) + 'ffff'; // same first 60 hex: indistinguishable on the wire
  const peer = { address: '10.99.0.5', port: 27500, instance: 'Passim-D001', host: 'dnshost.example.' };
  cache.put(hash, peer, 60, 'dns');
  assert.deepEqual(cache.lookup(sibling.toUpperCase()), [{ ...peer, via: 'dns' }]);
  clock.now += 60_000;
  assert.deepEqual(cache.lookup(hash), [], 'expired with its TTL');
  cache.put(hash, peer, 60);
  cache.put(hash, peer, 0);
  assert.deepEqual(cache.lookup(hash), [], 'TTL 0 removes');
  cache.put(sha('d1'), peer, 60);
  cache.put(sha('d2'), peer, 60);
  cache.put(sha('d3'), peer, 60);
  assert.equal(cache.lookup(sha('d1')).length, 0, 'bounded: the oldest went');
  assert.equal(cache.stats().records, 2);
});

test('lookupPeer: a cached peer answers without running any finder; otherwise finders race the window', async () => {
  const cache = new PeerCache();
  const hash = sha('lookup');
  const peer = { address: '10.99.0.9', port: 27500, instance: 'Passim-L001', host: 'l.local' };
  cache.put(hash, peer, 60, 'dns');
  let ran = 0;
  const never: PeerFinder = async (_h, { signal }) => {
    ran++;
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  };
  assert.deepEqual(await lookupPeer(hash, { cache, finders: [never] }), { ...peer, via: 'dns' });
  assert.equal(ran, 0);

  // miss: the window ends with nothing, and the finder was aborted
  let aborted = false;
  const slow: PeerFinder = async (_h, { signal }) => {
    ran++;
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => { aborted = true; resolve(); }, { once: true }));
  };
  assert.equal(await lookupPeer(sha('miss'), { cache, finders: [slow], windowMs: 50 }), undefined);
  assert.equal(aborted, true);

  // a finder's peer ends the lookup at once; one that gives up early does not end it
  const quick: PeerFinder = async (_h, { onPeer }) => onPeer(peer, 'mdns');
  const empty: PeerFinder = async () => {};
  assert.deepEqual(await lookupPeer(sha('x'), { cache, finders: [empty, slow, quick], windowMs: 5000 }), { ...peer, via: 'mdns' });
  // a peer put in the cache while finders run (heard on another socket) ends the wait
  const later = sha('later');
  setTimeout(() => cache.put(later, peer, 60, 'dns'), 20);
  assert.deepEqual(await lookupPeer(later, { cache, finders: [slow], windowMs: 5000 }), { ...peer, via: 'dns' });
  // all finders gave up: no need to wait for the window
  assert.equal(await lookupPeer(sha('none'), { cache, finders: [empty], windowMs: 60_000 }), undefined);
});

test('random responses from many sources (encoded and decoded as on the wire) never throw, and every bound holds', () => {
  const limits = { maxPairs: 64, maxPairsPerSource: 24, maxInstances: 12, maxInstancesPerSource: 4, maxSrvPerInstance: 2, maxAddressesPerHost: 3, maxDirect: 8 };
  const hashes = Array.from({ length: 40 }, (_, i) => sha(`fuzz-${i}`));
  const instances = Array.from({ length: 30 }, (_, i) => `Passim-Z${String(i).padStart(3, '0')}`);
  const hosts = Array.from({ length: 20 }, (_, i) => `fz${i}`);
  const ttl = fc.constantFrom(0, 0, 1, 10, 120, 4500, 0x7fffffff);
  const rr = fc.oneof(
    fc.record({ h: fc.constantFrom(...hashes), i: fc.constantFrom(...instances, 'Passim-OWN'), t: ttl }).map(({ h, i, t }) => subtypePtr(h, i, t)),
    fc.record({ i: fc.constantFrom(...instances), host: fc.constantFrom(...hosts), p: fc.constantFrom(0, 1, 443, 27500, 65535), t: ttl, f: fc.boolean() })
      .map(({ i, host, p, t, f }) => ({ ...srv(i, host, p, t), flush: f }) as RR),
    fc.record({ host: fc.constantFrom(...hosts), a: fc.constantFrom('10.98.1.1', '10.98.1.2', '10.98.1.3', '10.98.1.4', '0.0.0.0', '224.0.0.251', '255.255.255.255', '127.0.0.1', 'fe80::1', '::'), t: ttl, f: fc.boolean() })
      .map(({ host, a, t, f }) => ({ ...address(host, a, t), flush: f }) as RR),
  );
  const step = fc.record({
    src: fc.integer({ min: 1, max: 6 }),
    answers: fc.array(rr, { maxLength: 12 }),
    additionals: fc.array(rr, { maxLength: 6 }),
    advance: fc.constantFrom(0, 0, 500, 1500, 60_000, 5_000_000),
    put: fc.option(fc.record({ h: fc.constantFrom(...hashes), t: ttl }), { nil: undefined }),
  });
  let found = 0;
  fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), (steps) => {
    const clock = { now: 1_000_000 };
    const cache = new PeerCache({ now: () => clock.now, limits, isOwnInstance: (i) => i === 'Passim-OWN', ipv6: true });
    for (const s of steps) {
      clock.now += s.advance;
      const msg = decodeMessage(encodeMessage({ response: true, answers: s.answers, additionals: s.additionals }));
      assert.ok(msg);
      cache.ingest(msg, { address: `10.98.9.${s.src}`, link: link ?? undefined });
      if (s.put) cache.put(s.put.h, { address: '10.99.1.1', port: 27500, instance: 'Passim-D', host: 'd.example' }, s.put.t);
      if (s.advance > 1000) cache.sweep();
      cache.takeQueries();
      const st = cache.stats();
      assert.ok(st.records <= limits.maxPairs + limits.maxDirect, JSON.stringify(st));
      assert.ok(st.instances <= limits.maxInstances);
      assert.ok(st.addresses <= limits.maxInstances * limits.maxSrvPerInstance * limits.maxAddressesPerHost);
      for (const h of hashes) {
        for (const p of cache.lookup(h)) {
          found++;
          assert.notEqual(p.instance, 'Passim-OWN');
          assert.ok(p.port >= 1 && p.port <= 65535);
          assert.ok(!['0.0.0.0', '224.0.0.251', '255.255.255.255', '::', '127.0.0.1'].includes(p.address), p.address);
        }
      }
    }
  }), { seed: 9090, numRuns: 300 });
  assert.ok(found > 100, `the runs found peers too (${found})`);
});

test('alone(): true once the cache has listened 2.5 s and heard no other instance; a service PTR, a held hash or a fed peer ends it, a goodbye brings it back', () => {
  const clock = { now: 10_000 };
  const cache = new PeerCache({ now: () => clock.now, isOwnInstance: (i) => i === 'Passim-SELF' });
  const sent: string[] = [];
  const heard = (rr: RR) => cache.ingest(decodeMessage(encodeMessage({ response: true, answers: [rr] }))!, { address: '10.99.0.7' });
  assert.equal(cache.alone(), false, 'not started: it has not listened');
  cache.start((q) => sent.push(...q.questions.map((x) => `${x.name} ${x.type}`)));
  try {
    assert.deepEqual(sent, [], 'the service question goes out on the next tick');
    clock.now += 2000;
    assert.equal(cache.alone(), false, 'listened under 2.5 s');
    clock.now += 600;
    assert.equal(cache.alone(), true);
    heard(servicePtr('Passim-SELF'));
    assert.equal(cache.alone(), true, 'our own instance does not count');
    heard(servicePtr('Passim-0THR'));
    assert.equal(cache.alone(), false, 'another instance announced its service');
    heard(servicePtr('Passim-0THR', 0));
    assert.equal(cache.alone(), true, 'its goodbye');
    heard(subtypePtr(sha('held'), 'Passim-0TH2'));
    assert.equal(cache.alone(), false, 'an instance holding a hash');
    clock.now += 4501_000;
    cache.sweep();
    assert.equal(cache.alone(), true, 'its record expired');
    cache.put(sha('dns'), { address: '10.99.0.5', port: 27500, instance: 'Passim-D001', host: 'd.example.' }, 60, 'dns');
    assert.equal(cache.alone(), false, 'a peer fed from a DNS zone');
  } finally {
    cache.stop();
  }
});

test('the cache asks for the service PTR (_cache._tcp.local) when it starts', async () => {
  const cache = new PeerCache();
  const asked = new Promise<string[]>((resolve) => cache.start((q) => resolve(q.questions.map((x) => `${x.name} ${x.type}`))));
  try {
    assert.deepEqual(await asked, ['_cache._tcp.local PTR']);
  } finally {
    cache.stop();
  }
});
