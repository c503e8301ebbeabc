/**
 * Hostile hosts on a namespace LAN with real sockets (root + iproute2; skipped otherwise, failed in CI).
 * Hosts: 0 = A (responder), 1 = B (browser), 2 = C (attacker: floods, spoofs, lies), 3 = D (raw capture).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { createLan, netnsSkip, type Lan } from '../helpers/netns.js';
import { MdnsHost, type HostEvent } from '../helpers/mdns-host-client.js';
import { instanceFqdn, subtypeName, SERVICE } from '../../lib/discovery/names.js';
import { encodeMessage } from '../../lib/discovery/packets.js';

const skip = netnsSkip();
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const H1 = sha('lan-flooded');
const H2 = sha('lan-other');
const HF = sha('lan-fakes');

let lan: Lan;
let A: MdnsHost, B: MdnsHost, C: MdnsHost, D: MdnsHost;
let aName = '';
const aAddr = () => lan.hosts[0]!.address;

type Rec = { name: string; type: string; ttl: number; data: any };
const answers = (e: HostEvent): Rec[] => (e.packet?.answers ?? []) as unknown as Rec[];
const fromA = (e: HostEvent) => e.from === aAddr();
const isResp = (e: HostEvent) => e.packet?.type === 'response';
const hex = (b: Buffer) => b.toString('hex');

before(async () => {
  if (skip) return;
  lan = await createLan(4, { net: 97 });
  [A, B, C, D] = await Promise.all(lan.hosts.map((h) => MdnsHost.start(h)));
  await Promise.all([C.call('capture'), D.call('capture')]);
  const r = await A.call('start', { port: 27500, hostName: 'victim', hashes: [H1, H2, HF] });
  aName = r.instanceName;
});

after(async () => {
  if (skip) return;
  await Promise.all([A, B, C, D].filter(Boolean).map((h) => h.close()));
  await lan.destroy();
});

test('query flood: thousands of multicast queries for one record in a second → A multicasts it at most once a second and still answers a browse', { skip, timeout: 20000 }, async (t) => {
  // wait out the start-up announcements (two, 1 s apart) so they do not count
  await D.waitFor((e) => fromA(e) && isResp(e) && answers(e).some((r) => r.name === subtypeName(H1)), { what: 'announcement' });
  const since = D.mark();
  const q = encodeMessage({ response: false, questions: [{ name: subtypeName(H1), type: 'PTR' }] });
  const flood = C.call('flood', { hex: hex(q), count: 4000, durationMs: 1500, via: 'capture' });
  const browse = B.call('browse', { hash: H2, timeoutMs: 500 });
  const [f, b] = await Promise.all([flood, browse]);
  // observation window after the flood for a last delayed answer (≤ 120 ms); nothing to wait on
  await new Promise((r) => setTimeout(r, 200));
  const got = D.events.slice(since).filter((e) => fromA(e) && isResp(e) && answers(e).some((r) => r.name === subtypeName(H1) && r.ttl > 0));
  const sawQueries = D.events.slice(since).filter((e) => e.from === lan.hosts[2]!.address).length;
  const windowMs = got.length ? got[got.length - 1]!.t - got[0]!.t : 0;
  t.diagnostic(`flood: ${f.sent} queries in ${f.ms} ms (${sawQueries} seen by D) → ${got.length} multicast answers from A spanning ${windowMs} ms`);
  assert.ok(sawQueries > 3000, 'the flood reached the LAN');
  assert.ok(got.length >= 1, 'the record was answered');
  assert.ok(got.length <= Math.floor((f.ms + 200) / 1000) + 1, `${got.length} answers in ${f.ms} ms`);
  for (let i = 1; i < got.length; i++) assert.ok(got[i]!.t - got[i - 1]!.t >= 950, `answers ${got[i]!.t - got[i - 1]!.t} ms apart`);
  assert.deepEqual(b.peers.map((p: any) => [p.address, p.port, p.instance]), [[aAddr(), 27500, aName]], 'browse during the flood still finds A');
});

test('spoofed SRV for A\'s instance name (other port): A probes again, re-announces its own SRV, stays browsable on its port', { skip, timeout: 20000 }, async () => {
  const since = D.mark();
  const spoof = dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: [
    { type: 'SRV', name: instanceFqdn(aName), ttl: 120, flush: true, data: { priority: 0, weight: 0, port: 1, target: 'evil.local' } },
  ] });
  await C.call('raw-send', { hex: hex(spoof), via: 'capture' });
  await D.waitFor((e) => fromA(e) && e.packet?.type === 'query' && (e.packet?.authorities?.length ?? 0) > 0, { since, what: 'a probe from A' });
  await D.waitFor((e) => fromA(e) && isResp(e) && answers(e).some((r) => r.type === 'SRV' && r.name === instanceFqdn(aName) && r.data.port === 27500 && r.ttl > 0), { since, timeoutMs: 5000, what: 'A re-announcing its SRV' });
  const r = await B.call('browse', { hash: H2 });
  assert.deepEqual(r.peers.map((p: any) => [p.address, p.port, p.instance]), [[aAddr(), 27500, aName]]);
});

test('spoofed goodbye (TTL 0) for A\'s subtype from another host → A multicasts the record again within a second', { skip, timeout: 15000 }, async (t) => {
  const since = D.mark();
  const bye = dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: [
    { type: 'PTR', name: subtypeName(H2), ttl: 0, data: instanceFqdn(aName) },
  ] });
  await C.call('raw-send', { hex: hex(bye), via: 'capture' });
  const sent = await D.waitFor((e) => e.from === lan.hosts[2]!.address && isResp(e), { since, what: 'the spoofed goodbye' });
  const rescue = await D.waitFor((e) => fromA(e) && isResp(e) && answers(e).some((r) => r.name === subtypeName(H2) && r.ttl === 4500), { since, timeoutMs: 1500, what: 'A re-announcing the subtype' });
  t.diagnostic(`A re-announced ${rescue.t - sent.t} ms after the spoofed goodbye`);
  assert.ok(rescue.t - sent.t < 1000);
  const r = await B.call('browse', { hash: H2 });
  assert.equal(r.peers.length, 1);
});

test('browser vs a lying host: 2000 fake instances, SRV port 0 / unresolvable target, A = 0.0.0.0 / 224.x / 255.255.255.255 / 127.x, wrong types → only A is yielded, browse ends in time', { skip, timeout: 30000 }, async (t) => {
  const sub = subtypeName(HF);
  const evil = (i: number) => instanceFqdn(`Passim-E${String(i).padStart(3, '0')}`);
  const packets: Buffer[] = [];
  // 2000 fake instances, 40 PTRs a packet
  for (let p = 0; p < 50; p++) {
    packets.push(dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: Array.from({ length: 40 }, (_, i) => ({ type: 'PTR' as const, name: sub, ttl: 4500, data: instanceFqdn(`Fake-${p}-${i}`) })) }));
  }
  // a few resolvable-looking liars, answered with SRV + A as additionals
  const liars: Array<[string, number, string, string | undefined]> = [
    [evil(1), 0, 'port0.local', '10.97.0.3'], // port 0
    [evil(2), 27500, 'nowhere.local', undefined], // target never resolves
    [evil(3), 27500, 'zero.local', '0.0.0.0'],
    [evil(4), 27500, 'mcast.local', '224.0.0.251'],
    [evil(5), 27500, 'bcast.local', '255.255.255.255'],
    [evil(6), 27500, 'loop.local', '127.0.0.1'],
    [evil(7), 27500, 'netbcast.local', '10.97.255.255'],
  ];
  for (const [inst, port, target, addr] of liars) {
    const additionals: dnsPacket.Answer[] = [{ type: 'SRV', name: inst, ttl: 120, flush: true, data: { priority: 0, weight: 0, port, target } }];
    if (addr) additionals.push({ type: 'A', name: target, ttl: 120, flush: true, data: addr });
    packets.push(dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: [{ type: 'PTR', name: sub, ttl: 4500, data: inst }], additionals }));
  }
  // wrong types for the subtype name and for an instance
  packets.push(dnsPacket.encode({ type: 'response', answers: [
    { type: 'TXT', name: sub, ttl: 4500, data: ['x'] },
    { type: 'SRV', name: sub, ttl: 120, data: { priority: 0, weight: 0, port: 1, target: 'x.local' } },
    { type: 'A', name: sub, ttl: 120, data: '10.97.0.3' },
    { type: 'PTR', name: sub, ttl: 4500, data: 'not-an-instance.local' },
    { type: 'HINFO', name: evil(8), ttl: 120, data: { cpu: 'x', os: 'y' } },
  ] }));
  for (const b of packets) assert.ok(b.length <= 9000);
  await C.call('auto-reply', { match: sub, hexes: packets.map(hex), unicast: true });
  try {
    const since = C.mark();
    const r = await B.call('browse', { hash: HF, timeoutMs: 500 });
    const replied = C.events.slice(since).filter((e) => e.event === 'auto-replied').length;
    t.diagnostic(`liar answered ${replied} queries with ${packets.length} packets each; browse took ${r.totalMs} ms, yielded ${JSON.stringify(r.peers.map((p: any) => `${p.instance}@${p.address}:${p.port}`))}`);
    assert.ok(replied >= 1, 'the liar did answer');
    assert.deepEqual(r.peers.map((p: any) => [p.address, p.port, p.instance]), [[aAddr(), 27500, aName]]);
    assert.ok(r.totalMs < 5000 + 500, `ended by its hard limit (${r.totalMs} ms)`);
    // B is still healthy: a normal browse works
    const again = await B.call('browse', { hash: H2, timeoutMs: 300 });
    assert.equal(again.peers.length, 1);
  } finally {
    await C.call('auto-reply-stop');
  }
});
