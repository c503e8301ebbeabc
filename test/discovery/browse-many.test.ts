/**
 * The multi-hash mDNS session (lib/discovery/browse-many.ts) on in-process sockets: questions
 * packed into small queries (three per one-shot query), one query for several hashes, an instance resolved once for every
 * hash it holds, answers from a port other than 5353 ignored. (The real wire: test/netns/batch.test.ts.)
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { MdnsSession, ONE_SHOT_QUESTIONS, packQuestions } from '../../lib/discovery/browse-many.js';
import { subtypeName } from '../../lib/discovery/names.js';
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES } from '../../lib/discovery/packets.js';
import type { Peer } from '../../lib/discovery/types.js';
import { fakeFactory, rinfo } from '../mdns-hardening/helpers.js';

const H = (s: string) => createHash('sha256').update(s).digest('hex');

describe('packQuestions', () => {
  it('packs 100 subtype questions into few queries, each at most 1400 bytes encoded', () => {
    const qs = Array.from({ length: 100 }, (_, i) => ({ name: subtypeName(H(String(i))), type: 'PTR' }));
    const packets = packQuestions(qs);
    assert.equal(packets.flat().length, 100);
    assert.ok(packets.length <= 8, `${packets.length} packets`);
    for (const p of packets) {
      const n = encodeMessage({ response: false, questions: p }).length;
      assert.ok(n <= MAX_MESSAGE_BYTES, `${n} bytes`);
    }
    // a packet is full: one more question would not fit
    const first = packets[0]!;
    assert.ok(encodeMessage({ response: false, questions: [...first, packets[1]![0]!] }).length > MAX_MESSAGE_BYTES);
  });

  it('puts at most maxQuestions in a query (a one-shot query whose legacy unicast answer must fit 512 bytes)', () => {
    const qs = Array.from({ length: 100 }, (_, i) => ({ name: subtypeName(H(String(i))), type: 'PTR' }));
    const packets = packQuestions(qs, MAX_MESSAGE_BYTES, ONE_SHOT_QUESTIONS);
    assert.equal(ONE_SHOT_QUESTIONS, 3);
    assert.deepEqual(packets.flat(), qs, 'every question, in order');
    assert.equal(packets.length, 34);
    for (const p of packets) assert.ok(p.length <= 3);
  });
});

describe('MdnsSession', () => {
  it('asks for every hash in one query and resolves each instance once for all its hashes', async () => {
    const { sockets, factory } = fakeFactory();
    const s = new MdnsSession({ interfaces: ['lo'], socketFactory: factory });
    const [h1, h2, h3] = [H('a'), H('b'), H('c')];
    const found: Array<[string, Peer]> = [];
    const ac = new AbortController();
    const round = s.round([h1, h2, h3].map(subtypeName), { timeoutMs: 60_000, signal: ac.signal, queryScheduleMs: [0], onPeer: (n, p) => found.push([n, p]) });
    const query = () => sockets.find((k) => k.opts.port === 0)!;
    await new Promise<void>((resolve) => {
      const wait = () => (sockets.length && query().sent.length ? resolve() : setTimeout(wait, 5));
      wait();
    });
    const q = query();
    assert.equal(q.sent.length, 1, 'one packet');
    assert.deepEqual(decodeMessage(q.sent[0]!.buf)!.questions.map((x) => x.name), [h1, h2, h3].map(subtypeName));

    const X = 'Passim-AAAA._cache._tcp.local';
    const Y = 'Passim-BBBB._cache._tcp.local';
    const answer = (answers: dnsPacket.Answer[], additionals: dnsPacket.Answer[] = [], port = 5353) =>
      q.receive(dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers, additionals }), rinfo('10.0.0.9', port));
    // from a port other than 5353: ignored
    answer([{ name: subtypeName(h1), type: 'PTR', ttl: 120, data: 'Passim-EVIL._cache._tcp.local' }], [], 40000);
    // X holds h1 and h2, with its SRV and address as additionals
    answer(
      [{ name: subtypeName(h1), type: 'PTR', ttl: 120, data: X }, { name: subtypeName(h2), type: 'PTR', ttl: 120, data: X }],
      [{ name: X, type: 'SRV', ttl: 120, data: { port: 27500, target: 'x.local', priority: 0, weight: 0 } }, { name: 'x.local', type: 'A', ttl: 120, data: '10.0.0.9' }],
    );
    // Y holds h3, no additionals: the session asks for its SRV, then its address
    answer([{ name: subtypeName(h3), type: 'PTR', ttl: 120, data: Y }]);
    const asked = async (type: string) => {
      for (;;) {
        const m = q.sent.map((x) => decodeMessage(x.buf)!).find((m) => m.questions.some((x) => x.type === type));
        if (m) return m;
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const srvQ = await asked('SRV');
    assert.deepEqual(srvQ.questions.filter((x) => x.type === 'SRV').map((x) => x.name), [Y], 'only Y needed resolving');
    answer([{ name: Y, type: 'SRV', ttl: 120, data: { port: 27501, target: 'y.local', priority: 0, weight: 0 } }]);
    const aQ = await asked('A');
    assert.deepEqual(aQ.questions.map((x) => x.name), ['y.local']);
    answer([{ name: 'y.local', type: 'A', ttl: 120, data: '10.0.0.10' }]);
    await new Promise<void>((resolve) => {
      const wait = () => (found.length >= 3 ? resolve() : setTimeout(wait, 5));
      wait();
    });
    ac.abort();
    await round;
    await s.close();
    const got = found.map(([n, p]) => `${n.slice(1, 9)} ${p.instance} ${p.address}:${p.port}`).sort();
    assert.deepEqual(got, [
      `${h1.slice(0, 8)} Passim-AAAA 10.0.0.9:27500`,
      `${h2.slice(0, 8)} Passim-AAAA 10.0.0.9:27500`,
      `${h3.slice(0, 8)} Passim-BBBB 10.0.0.10:27501`,
    ].sort());
  });
});
