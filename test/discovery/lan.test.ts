/**
 * Multi-host mDNS tests on a namespace LAN (needs root + iproute2; skipped otherwise, failed in CI).
 * Hosts: 0 = A (responder), 1 = B (browser, later a conflicting responder), 2 = C (conflicting
 * responder), 3 = D (raw packet capture and hand-made queries).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { createLan, netnsSkip, type Lan } from '../helpers/netns.js';
import { MdnsHost, type HostEvent } from '../helpers/mdns-host-client.js';
import { genHashes } from '../helpers/mdns-host.js';
import { subtypeName, SERVICE } from '../../lib/discovery/names.js';
import { encodeMessage, MAX_MESSAGE_BYTES } from '../../lib/discovery/packets.js';

const skip = netnsSkip();
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const H1 = sha('one');
const H2 = sha('not-held');
const HC = sha('conflict');

let lan: Lan;
let A: MdnsHost, B: MdnsHost, C: MdnsHost, D: MdnsHost;
let aName = '';

type Rec = { name: string; type: string; ttl: number; flush: boolean; data: any };
const recs = (e: HostEvent, section: 'answers' | 'additionals' | 'authorities' = 'answers'): Rec[] =>
  ((e.packet?.[section] ?? []) as unknown as Rec[]);
const allRecs = (e: HostEvent): Rec[] => [...recs(e), ...recs(e, 'additionals')];
const isResponse = (e: HostEvent) => e.packet?.type === 'response';
const fromA = (e: HostEvent) => e.from === lan.hosts[0]!.address;
const has = (e: HostEvent, name: string, type: string, pred: (r: Rec) => boolean = () => true) =>
  allRecs(e).some((r) => r.name.toLowerCase() === name.toLowerCase() && r.type === type && pred(r));

before(async () => {
  if (skip) return;
  lan = await createLan(4);
  [A, B, C, D] = await Promise.all(lan.hosts.map((h) => MdnsHost.start(h)));
  await D.call('capture');
  await D.call('raw-open');
});

after(async () => {
  if (skip) return;
  await Promise.all([A, B, C, D].filter(Boolean).map((h) => h.close()));
  await lan.destroy();
});

test('probes 3 times 250 ms apart, then announces twice 1 s apart in Avahi record format', { skip, timeout: 20000 }, async (t) => {
  const since = D.mark();
  const r = await A.call('start', { port: 27500, hostName: 'hosta', hashes: [H1] });
  aName = r.instanceName;
  assert.match(aName, /^Passim-[0-9A-F]{4}$/);
  t.diagnostic(`responder start (probe + claim) took ${r.ms} ms`);

  const probes = D.events.slice(since).filter((e) => fromA(e) && e.packet?.type === 'query' && recs(e, 'authorities').length > 0);
  assert.equal(probes.length, 3, 'three probe queries');
  for (let i = 1; i < probes.length; i++) {
    const gap = probes[i]!.t - probes[i - 1]!.t;
    assert.ok(gap >= 200 && gap < 400, `probe gap ${gap} ms`);
  }
  const q = probes[0]!.packet!.questions.map((x) => `${x.name} ${x.type}`);
  assert.ok(q.includes(`${aName}.${SERVICE} ANY`) && q.includes('hosta.local ANY'), q.join(', '));

  // base announcement (twice, ~1 s apart)
  const isBase = (e: HostEvent) => fromA(e) && isResponse(e) && has(e, `${aName}.${SERVICE}`, 'SRV');
  const first = await D.waitFor(isBase, { since, what: 'first announcement' });
  const second = await D.waitFor((e) => isBase(e) && e !== first, { since, timeoutMs: 3000, what: 'second announcement' });
  const gap = second.t - first.t;
  assert.ok(gap >= 900 && gap < 1500, `announcement gap ${gap} ms`);

  const all = allRecs(first);
  const find = (name: string, type: string) => all.find((x) => x.name.toLowerCase() === name.toLowerCase() && x.type === type);
  const ptr = find(SERVICE, 'PTR')!;
  assert.deepEqual([ptr.ttl, ptr.flush, ptr.data], [4500, false, `${aName}.${SERVICE}`]);
  const srv = find(`${aName}.${SERVICE}`, 'SRV')!;
  assert.deepEqual([srv.ttl, srv.flush], [120, true]);
  assert.deepEqual(srv.data, { priority: 0, weight: 0, port: 27500, target: 'hosta.local' });
  const txt = find(`${aName}.${SERVICE}`, 'TXT')!;
  assert.deepEqual([txt.ttl, txt.flush, txt.data.length, txt.data[0].length], [4500, true, 1, 0]);
  const a = find('hosta.local', 'A')!;
  assert.deepEqual([a.ttl, a.flush, a.data], [120, true, lan.hosts[0]!.address]);
  const meta = find('_services._dns-sd._udp.local', 'PTR')!;
  assert.deepEqual([meta.ttl, meta.flush, meta.data], [4500, false, SERVICE]);

  // the subtype (added after claiming) is announced too, as a shared record
  const sub = await D.waitFor((e) => fromA(e) && isResponse(e) && has(e, subtypeName(H1), 'PTR'), { since, what: 'subtype announcement' });
  const sp = allRecs(sub).find((x) => x.type === 'PTR' && x.name === subtypeName(H1))!;
  assert.deepEqual([sp.ttl, sp.flush, sp.data], [4500, false, `${aName}.${SERVICE}`]);
});

test('B browses the hash and finds A (address + port), a hash A lacks finds nothing', { skip, timeout: 20000 }, async (t) => {
  const firsts: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await B.call('browse', { hash: H1 });
    assert.equal(r.peers.length, 1);
    assert.deepEqual({ ...r.peers[0], ms: 0 }, { address: lan.hosts[0]!.address, port: 27500, instance: aName, host: 'hosta.local', ms: 0 });
    assert.ok(r.totalMs >= 450 && r.totalMs < 1500, `browse ends ~timeout after last answer (${r.totalMs} ms)`);
    firsts.push(r.peers[0].ms);
  }
  t.diagnostic(`browse time to first peer (ms): ${firsts.join(', ')}`);
  const none = await B.call('browse', { hash: H2 });
  assert.deepEqual(none.peers, []);
  assert.ok(none.totalMs >= 450 && none.totalMs < 1500, `empty browse ends at the timeout (${none.totalMs} ms)`);
  t.diagnostic(`empty browse took ${none.totalMs} ms`);
  const excluded = await B.call('browse', { hash: H1, exclude: [aName], timeoutMs: 300 });
  assert.deepEqual(excluded.peers, [], 'excludeInstances skips A');
});

test('a multicast (QM) query gets a multicast answer with SRV/TXT/A as additionals', { skip, timeout: 10000 }, async () => {
  const since = D.mark();
  const q = encodeMessage({ response: false, questions: [{ name: subtypeName(H1), type: 'PTR' }] });
  await D.call('raw-send', { hex: q.toString('hex'), via: 'capture' });
  const e = await D.waitFor((x) => fromA(x) && isResponse(x) && recs(x).some((r) => r.name === subtypeName(H1)), { since, what: 'multicast answer' });
  const ans = recs(e);
  assert.equal(ans.length, 1);
  assert.deepEqual([ans[0]!.type, ans[0]!.ttl, ans[0]!.flush], ['PTR', 4500, false]);
  const add = recs(e, 'additionals');
  const types = add.map((r) => `${r.type}:${r.ttl}:${r.flush}`).sort();
  assert.deepEqual(types, ['A:120:true', 'SRV:120:true', 'TXT:4500:true']);
  assert.equal(e.packet!.id, 0);
  assert.ok(e.packet!.flag_aa, 'authoritative');
});

test('legacy unicast query from a random port gets a unicast reply: id + question echoed, TTL ≤ 10, no cache-flush', { skip, timeout: 10000 }, async () => {
  const since = D.mark();
  const buf = dnsPacket.encode({ type: 'query', id: 0x4242, questions: [{ name: subtypeName(H1), type: 'PTR', class: 'IN' }] });
  await D.call('raw-send', { hex: buf.toString('hex'), via: 'raw' });
  const e = await D.waitFor((x) => x.event === 'unicast' && fromA(x), { since, what: 'legacy unicast reply' });
  const p = e.packet!;
  assert.equal(p.id, 0x4242);
  assert.deepEqual(p.questions.map((x) => [x.name, x.type]), [[subtypeName(H1), 'PTR']]);
  const all = allRecs(e);
  assert.ok(all.length >= 2);
  for (const r of all) {
    assert.ok(r.ttl <= 10 && r.ttl > 0, `${r.type} ttl ${r.ttl}`);
    assert.equal(r.flush, false, `${r.type} has no cache-flush bit`);
  }
  assert.equal(recs(e)[0]!.data, `${aName}.${SERVICE}`);
});

test('QU query is answered by unicast; known-answer suppression drops what the querier knows', { skip, timeout: 10000 }, async () => {
  const quQuery = (known: number | undefined) => {
    const buf = encodeMessage({
      response: false,
      questions: [{ name: subtypeName(H1), type: 'PTR', qu: true }],
      answers: known === undefined ? [] : [{ name: subtypeName(H1), type: 'PTR', ttl: known, data: `${aName}.${SERVICE}` }],
    });
    return buf.toString('hex');
  };
  const isAnswer = (x: HostEvent) => fromA(x) && isResponse(x) && recs(x).some((r) => r.name === subtypeName(H1));
  // known with full TTL → no answer at all
  let since = D.mark();
  await D.call('raw-send', { hex: quQuery(4500), via: 'capture' });
  const got = await D.collect(isAnswer, 600, since);
  assert.deepEqual(got, [], 'suppressed');
  // known with less than half the TTL → answered, by unicast: D gets it, C (also capturing) does not
  await C.call('capture');
  since = D.mark();
  const sinceC = C.mark();
  await D.call('raw-send', { hex: quQuery(100), via: 'capture' });
  await D.waitFor(isAnswer, { since, what: 'QU answer' });
  const onC = await C.collect((x) => x.from === lan.hosts[0]!.address && isResponse(x) && recs(x).some((r) => r.name === subtypeName(H1)), 300, sinceC);
  assert.deepEqual(onC, [], 'the QU answer was not multicast');
});

test('malformed and truncated packets do not crash the responder', { skip, timeout: 15000 }, async () => {
  const good = dnsPacket.encode({ type: 'query', id: 7, questions: [{ name: subtypeName(H1), type: 'PTR', class: 'IN' }] });
  const junk: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from([1, 2, 3]),
    good.subarray(0, good.length - 3),
    Buffer.from('000084000001000000000000c00c000c0001', 'hex'), // self-referencing compression pointer
    Buffer.from('0000000000ff00ff00ff00ff', 'hex'), // counts far beyond the data
    Buffer.concat([Buffer.from('000084000000000100000000', 'hex'), Buffer.from([0x3f]), Buffer.alloc(10)]), // label overruns
    // a response with an SRV whose rdata is cut short, for A's own instance name
    (() => {
      const b = dnsPacket.encode({ type: 'response', answers: [{ type: 'SRV', name: `${aName}.${SERVICE}`, ttl: 120, data: { port: 1, target: 'evil.local' } }] });
      return b.subarray(0, b.length - 5);
    })(),
    // a query with an unknown class and type, and a TXT with a length byte past the end
    Buffer.from('00000000000100000000000003666f6f0000ff00fe', 'hex'),
    Buffer.concat([Buffer.from('000084000000000100000000', 'hex'), Buffer.from('03666f6f0000100001000000780003ff6162', 'hex')]),
  ];
  for (let i = 0; i < 200; i++) junk.push(Buffer.from(Array.from({ length: 12 + (i % 60) }, (_, j) => (i * 31 + j * 17) & 0xff)));
  for (const b of junk) {
    await D.call('raw-send', { hex: b.toString('hex'), via: 'raw' });
    await D.call('raw-send', { hex: b.toString('hex'), via: 'capture' });
  }
  const since = D.mark();
  await D.call('raw-send', { hex: good.toString('hex'), via: 'raw' });
  const e = await D.waitFor((x) => x.event === 'unicast' && fromA(x) && x.packet?.id === 7, { since, what: 'answer after junk' });
  assert.equal(recs(e)[0]!.data, `${aName}.${SERVICE}`);
  const r = await B.call('browse', { hash: H1 });
  assert.equal(r.peers.length, 1, 'still browsable, still the same name');
  assert.equal(r.peers[0].instance, aName);
});

test('remove() sends a goodbye and the next browse does not find it', { skip, timeout: 10000 }, async () => {
  const since = D.mark();
  await A.call('remove', { hash: H1 });
  const e = await D.waitFor((x) => fromA(x) && isResponse(x) && has(x, subtypeName(H1), 'PTR', (r) => r.ttl === 0), { since, what: 'goodbye' });
  assert.equal(recs(e).find((r) => r.name === subtypeName(H1))!.data, `${aName}.${SERVICE}`);
  const r = await B.call('browse', { hash: H1 });
  assert.deepEqual(r.peers, []);
});

test('two responders forced to the same name: one renames, both browsable', { skip, timeout: 20000 }, async () => {
  const [b, c] = await Promise.all([
    B.call('start', { port: 27501, instanceName: 'Passim-BEEF', hostName: 'twin', hashes: [HC] }),
    C.call('start', { port: 27502, instanceName: 'Passim-BEEF', hostName: 'twin', hashes: [HC] }),
  ]);
  const names = [b.instanceName, c.instanceName].sort();
  assert.deepEqual(names, ['Passim-BEEF', 'Passim-BEEF #2']);
  const hosts = [b.hostName, c.hostName].sort();
  assert.deepEqual(hosts, ['twin', 'twin-2'], 'host name conflict resolved too');
  const r = await D.call('browse', { hash: HC });
  const found = r.peers.map((p: any) => `${p.instance}@${p.address}:${p.port}`).sort();
  assert.deepEqual(found, [
    `${b.instanceName}@${lan.hosts[1]!.address}:27501`,
    `${c.instanceName}@${lan.hosts[2]!.address}:27502`,
  ].sort());
  await Promise.all([B.call('stop'), C.call('stop')]);
});

test('IPv6 enabled: the peer is found by its link-local AAAA (scoped to the interface) as well as A', { skip, timeout: 20000 }, async () => {
  const h = sha('v6');
  const c = await C.call('start', { port: 27503, hostName: 'sixer', hashes: [h], ipv6: true });
  const r = await D.call('browse', { hash: h, ipv6: true });
  const addrs = r.peers.map((p: any) => p.address).sort();
  assert.equal(r.peers.length, 2, JSON.stringify(r.peers));
  assert.equal(addrs[0], lan.hosts[2]!.address);
  assert.match(addrs[1], /^fe80:[0-9a-f:]+%eth0$/);
  assert.ok(r.peers.every((p: any) => p.instance === c.instanceName && p.port === 27503));
  const v4only = await D.call('browse', { hash: h });
  assert.deepEqual(v4only.peers.map((p: any) => p.address), [lan.hosts[2]!.address], 'IPv4 only by default');
  await C.call('stop');
});

test('announceAfter: probes go on until the gate opens, nothing is answered or announced before it, the names are claimed right after', { skip, timeout: 20000 }, async () => {
  const h = sha('gated');
  const since = D.mark();
  await C.call('start', { port: 27504, hostName: 'gated', hashes: [h], hold: true });
  const fromC = (e: HostEvent) => e.from === lan.hosts[2]!.address;
  const isProbe = (e: HostEvent) => fromC(e) && e.packet?.type === 'query' && recs(e, 'authorities').length > 0;
  // more than the usual three probes: still probing while held
  let at = since;
  for (let i = 0; i < 5; i++) at = D.events.indexOf(await D.waitFor(isProbe, { since: at, timeoutMs: 3000, what: `probe ${i + 1}` })) + 1;
  const held = await B.call('browse', { hash: h, timeoutMs: 300 });
  assert.deepEqual(held.peers, [], 'not answered while held');
  // (C's previous responder may still be saying goodbye: only this one's records count)
  const ofThisOne = (e: HostEvent) => { const t = JSON.stringify(allRecs(e)).toLowerCase(); return t.includes('gated.local') || t.includes(subtypeName(h).toLowerCase()); };
  const early = D.events.slice(since).filter((e) => fromC(e) && isResponse(e) && ofThisOne(e));
  assert.deepEqual(early.map((e) => allRecs(e).map((r) => `${r.name} ${r.type} ${r.ttl}`)), [], 'no response from C before the gate opens');
  const opened = D.mark();
  const r = await C.call('release');
  assert.match(r.instanceName, /^Passim-[0-9A-F]{4}$/);
  // claimed as the gate opens: no new round of probes
  assert.ok(D.events.slice(opened).filter(isProbe).length <= 1, 'no new probe round after the gate opened');
  const ann = await D.waitFor((e) => fromC(e) && isResponse(e) && has(e, `${r.instanceName}.${SERVICE}`, 'SRV'), { since: opened, what: 'announcement' });
  assert.ok(has(ann, subtypeName(h), 'PTR'), 'the item found while probing is in the first announcement');
  const found = await B.call('browse', { hash: h });
  assert.deepEqual(found.peers.map((p: { port: number; instance: string }) => [p.port, p.instance]), [[27504, r.instanceName]]);
  await C.call('stop');
});

test('10,000 hashes: no announcement flood, any one is answered, every packet ≤ 1400 bytes', { skip, timeout: 30000 }, async (t) => {
  const since = D.mark();
  const bulk = genHashes(10000, 'bulk');
  await A.call('set', { gen: { count: 10000, prefix: 'bulk' } });
  const last = bulk[bulk.length - 1]!;
  const r = await B.call('browse', { hash: last });
  assert.equal(r.peers.length, 1);
  assert.equal(r.peers[0].address, lan.hosts[0]!.address);
  t.diagnostic(`browse with 10,000 advertised: first peer after ${r.peers[0].ms} ms`);
  assert.equal((await B.call('browse', { hash: bulk[4321] })).peers.length, 1);

  // one legacy query asking for 100 subtypes: the answers are split into several packets
  const asked = bulk.slice(5000, 5100);
  const q = dnsPacket.encode({ type: 'query', id: 99, questions: asked.map((h) => ({ name: subtypeName(h), type: 'PTR' as const, class: 'IN' as const })) });
  const s2 = D.mark();
  await D.call('raw-send', { hex: q.toString('hex'), via: 'raw' });
  const answered = new Set<string>();
  await D.waitFor((x) => {
    if (x.event === 'unicast' && fromA(x) && x.packet?.id === 99) for (const rr of recs(x)) answered.add(rr.name);
    return answered.size === 100;
  }, { since: s2, what: '100 answers' });
  const replies = D.events.slice(s2).filter((x) => x.event === 'unicast' && fromA(x));
  assert.ok(replies.length > 1, `split into ${replies.length} packets`);

  // the announcement after set() is bounded (100 subtypes, twice), not 10,000
  const announced = new Set<string>();
  for (const e of D.events.slice(since)) if (fromA(e) && isResponse(e) && e.event === 'packet') for (const rr of recs(e)) if (rr.name.includes('._sub.')) announced.add(rr.name);
  assert.equal(announced.size, 100, `announced ${announced.size} subtypes`);

  const sizes = D.events.filter((e) => fromA(e)).map((e) => e.size);
  const max = Math.max(...sizes);
  t.diagnostic(`${sizes.length} packets from the responder, largest ${max} bytes`);
  assert.ok(max <= MAX_MESSAGE_BYTES, `largest packet ${max} bytes`);
});

test('stop() sends goodbyes for the base records and cached subtypes', { skip, timeout: 10000 }, async () => {
  const since = D.mark();
  await A.call('stop');
  const bye = (name: string, type: string) =>
    D.waitFor((x) => fromA(x) && isResponse(x) && has(x, name, type, (r) => r.ttl === 0), { since, what: `goodbye ${type} ${name}` });
  await bye(SERVICE, 'PTR');
  await bye(`${aName}.${SERVICE}`, 'SRV');
  await bye('hosta.local', 'A');
  // the first subtypes were announced (may be cached by others): they get goodbyes
  await bye(subtypeName(genHashes(1, 'bulk')[0]!), 'PTR');
  const r = await B.call('browse', { hash: genHashes(10000, 'bulk')[0]! });
  assert.deepEqual(r.peers, []);
});
