import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  hostFqdn, instanceFqdn, instanceOf, nextHostName, nextInstanceName, randomInstanceName, sanitiseHostName,
  SERVICE, subtypeKeyOf, subtypeName,
} from '../../lib/discovery/names.js';
import { InvalidHashError } from '../../lib/core/errors.js';
import { encodeMessage, decodeMessage } from '../../lib/discovery/packets.js';

const H = createHash('sha256').update('x').digest('hex');

test('subtype label is "_" + first 60 hex chars (≤ 63 bytes), lower case, under _sub._cache._tcp.local', () => {
  const n = subtypeName(H.toUpperCase());
  assert.equal(n, `_${H.slice(0, 60)}._sub._cache._tcp.local`);
  const label = n.split('.')[0]!;
  assert.equal(label.length, 61);
  assert.ok(label.length <= 63);
  assert.equal(label.slice(1).length, 60);
  assert.equal(subtypeKeyOf(n.toUpperCase()), H.slice(0, 60));
  assert.equal(subtypeKeyOf(`_${H.slice(0, 59)}._sub.${SERVICE}`), undefined);
  assert.equal(subtypeKeyOf(`_cache._tcp.local`), undefined);
  // it survives a round trip through the wire encoding
  const m = decodeMessage(encodeMessage({ response: false, questions: [{ name: n, type: 'PTR' }] }))!;
  assert.equal(m.questions[0]!.name, n);
});

test('subtypeName rejects what is not a sha256', () => {
  assert.throws(() => subtypeName('abc'), InvalidHashError);
  assert.throws(() => subtypeName('g'.repeat(64)), InvalidHashError);
});

test('random instance names are Passim-XXXX with 4 upper-case hex digits', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const n = randomInstanceName();
    assert.match(n, /^Passim-[0-9A-F]{4}$/);
    seen.add(n);
  }
  assert.ok(seen.size > 150, 'random');
});

test('instance and host fqdn; renames on conflict', () => {
  assert.equal(instanceFqdn('Passim-1A2B'), 'Passim-1A2B._cache._tcp.local');
  assert.equal(instanceOf('Passim-1A2B #2._cache._tcp.local'), 'Passim-1A2B #2');
  assert.equal(instanceOf('x._http._tcp.local'), undefined);
  assert.equal(hostFqdn('box'), 'box.local');
  assert.equal(nextInstanceName('Passim-1A2B'), 'Passim-1A2B #2');
  assert.equal(nextInstanceName('Passim-1A2B #2'), 'Passim-1A2B #3');
  assert.equal(nextInstanceName('Passim-1A2B #9'), 'Passim-1A2B #10');
  assert.ok(Buffer.byteLength(nextInstanceName('x'.repeat(63))) <= 63);
  assert.equal(nextHostName('box'), 'box-2');
  assert.equal(nextHostName('box-2'), 'box-3');
  assert.equal(sanitiseHostName('my_box.example.org'), 'my-box');
  assert.equal(sanitiseHostName('...'), 'passim');
});
