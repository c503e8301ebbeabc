import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES, packResponses } from '../../lib/discovery/packets.js';
import { additionalsFor, answerQuery, suppressKnown, type Zone } from '../../lib/discovery/answers.js';
import { conflictingNames, tiebreak } from '../../lib/discovery/conflict.js';
import { address, servicePtr, srv, subtypePtr, txt, recordKey } from '../../lib/discovery/records.js';
import { subtypeKey, subtypeName, SERVICE } from '../../lib/discovery/names.js';

const hashes = Array.from({ length: 10000 }, (_, i) => createHash('sha256').update(String(i)).digest('hex'));
const table = new Set(hashes.map(subtypeKey));
const zone: Zone = { instance: 'Passim-ABCD', host: 'box', port: 27500, addresses: ['10.0.0.5'], hasSubtype: (k) => table.has(k) };

test('QU bit: encoded in the question class and read back', () => {
  const buf = encodeMessage({ response: false, questions: [{ name: 'a.local', type: 'A', qu: true }, { name: 'b.local', type: 'A' }] });
  assert.equal(buf.readUInt16BE(12 + 9 + 2), 0x8001);
  const m = decodeMessage(buf)!;
  assert.deepEqual(m.questions.map((q) => q.qu), [true, false]);
});

test('decodeMessage returns undefined for junk and drops ill-shaped records, never throws', () => {
  assert.equal(decodeMessage(Buffer.alloc(0)), undefined);
  assert.equal(decodeMessage(Buffer.from('0000000000ff00ff00ff00ff', 'hex')), undefined);
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(Array.from({ length: 12 + (i % 80) }, (_, j) => (i * 7919 + j * 104729) & 0xff));
    decodeMessage(b);
  }
  const m = decodeMessage(dnsPacket.encode({ type: 'response', answers: [{ type: 'HINFO', name: 'x.local', data: { cpu: 'a', os: 'b' } }] }))!;
  assert.deepEqual(m.answers, []);
});

test('answers: subtype PTR from the table with SRV/TXT/A additionals; unknown hash → nothing', () => {
  const h = hashes[9999]!;
  const r = answerQuery(zone, [{ name: subtypeName(h), type: 'PTR' }], []);
  assert.deepEqual(r.multicast, [subtypePtr(h, 'Passim-ABCD')]);
  assert.deepEqual(additionalsFor(zone, r.multicast[0]!).map((x) => x.type), ['SRV', 'TXT', 'A']);
  const none = answerQuery(zone, [{ name: subtypeName(createHash('sha256').update('no').digest('hex')), type: 'PTR' }], []);
  assert.deepEqual([...none.multicast, ...none.unicast], []);
  const qu = answerQuery(zone, [{ name: SERVICE, type: 'PTR', qu: true }, { name: 'box.local', type: 'ANY' }], []);
  assert.deepEqual(qu.unicast, [servicePtr('Passim-ABCD')]);
  assert.deepEqual(qu.multicast, [address('box', '10.0.0.5')]);
  const inst = answerQuery(zone, [{ name: 'passim-abcd._CACHE._tcp.local', type: 'ANY' }], []);
  assert.deepEqual(inst.multicast.map((x) => x.type), ['SRV', 'TXT'], 'names are case-insensitive');
});

test('known-answer suppression: dropped at ≥ half our TTL, kept below', () => {
  const p = servicePtr('Passim-ABCD');
  assert.deepEqual(suppressKnown([p], [{ ...p, ttl: 2250 }]), []);
  assert.deepEqual(suppressKnown([p], [{ ...p, ttl: 2249 }]), [p]);
  assert.deepEqual(suppressKnown([p], [{ ...p, data: 'other._cache._tcp.local', ttl: 4500 }]), [p]);
});

test('10,000 subtype answers pack into messages ≤ 1400 bytes, none lost', () => {
  const ptrs = hashes.map((h) => subtypePtr(h, 'Passim-ABCD'));
  const msgs = packResponses(ptrs, (rr) => additionalsFor(zone, rr));
  let n = 0;
  for (const m of msgs) {
    const size = encodeMessage(m).length;
    assert.ok(size <= MAX_MESSAGE_BYTES, `${size}`);
    n += m.answers!.length;
    // additionals only once per message
    const keys = m.additionals!.map(recordKey);
    assert.equal(new Set(keys).size, keys.length);
  }
  assert.equal(n, 10000);
  assert.ok(msgs.length <= 1250, `${msgs.length} messages`); // ~9 PTRs of ~126 bytes each
});

test('conflicts: other data for our unique names; our own addresses and other types are not', () => {
  const ours = [srv('Passim-ABCD', 'box', 27500), txt('Passim-ABCD'), address('box', '10.0.0.5')];
  assert.deepEqual([...conflictingNames(ours, ours)], []);
  assert.deepEqual([...conflictingNames(ours, [srv('Passim-ABCD', 'other', 27500)])], ['passim-abcd._cache._tcp.local']);
  assert.deepEqual([...conflictingNames(ours, [address('box', '10.0.0.9')])], ['box.local']);
  assert.deepEqual([...conflictingNames(ours, [address('box', '10.0.0.9')], new Set(['10.0.0.9']))], []);
  assert.deepEqual([...conflictingNames(ours, [{ ...address('box', '10.0.0.9'), ttl: 0 }])], [], 'goodbyes never conflict');
});

test('probe tie-break compares class, type, rdata (RFC 6762 §8.2)', () => {
  const a = [address('box', '10.0.0.5')];
  const b = [address('box', '10.0.0.6')];
  assert.equal(tiebreak(a, b), -1);
  assert.equal(tiebreak(b, a), 1);
  assert.equal(tiebreak(a, a), 0);
  assert.equal(tiebreak(a, [...a, address('box', '10.0.0.7')]), -1, 'a prefix loses');
});
