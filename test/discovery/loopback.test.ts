/**
 * Single-host tests of the responder and browser pinned to the loopback interface
 * (`interfaces: ['lo']`): nothing leaves this machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Responder } from '../../lib/discovery/responder.js';
import { browse, findPeers } from '../../lib/discovery/browser.js';
import { MdnsSocket } from '../../lib/discovery/mdns-socket.js';
import { listLinks } from '../../lib/discovery/interfaces.js';
import { subtypeName } from '../../lib/discovery/names.js';
import { InvalidHashError } from '../../lib/core/errors.js';
import type { Message } from '../../lib/discovery/packets.js';

const LO = ['lo'];
const sha = (s: string) => createHash('sha256').update(`loopback-${process.pid}-${s}`).digest('hex');
const hasLo = listLinks({ interfaces: LO }).length > 0;
const skip = !hasLo && 'no loopback interface with IPv4';

/** A plain listener on lo:5353 that records responses, to wait for goodbyes. */
async function listener(): Promise<{ msgs: Message[]; waitFor(p: (m: Message) => boolean, ms?: number): Promise<Message>; close(): Promise<void> }> {
  const link = listLinks({ interfaces: LO })[0]!;
  const sock = new MdnsSocket({ link });
  await sock.open();
  const msgs: Message[] = [];
  const waiters = new Set<() => void>();
  sock.on('message', (m) => {
    msgs.push(m);
    for (const w of [...waiters]) w();
  });
  return {
    msgs,
    waitFor(pred, ms = 3000) {
      const start = msgs.length;
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = msgs.slice(start).find(pred);
          if (m) {
            waiters.delete(check);
            clearTimeout(t);
            resolve(m);
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error('timed out waiting for a packet'));
        }, ms);
        waiters.add(check);
      });
    },
    close: () => sock.close(),
  };
}

test('responder + browser on loopback: found, add/remove/setHashes, stop', { skip, timeout: 20000 }, async (t) => {
  const [h1, h2, h3] = [sha('1'), sha('2'), sha('3')];
  const r = new Responder({ port: 40001, interfaces: LO, hostName: 'loophost' });
  assert.equal(r.instanceName, '', 'no name before it is claimed');
  r.add(h1); // before start: kept and announced on start
  const t0 = Date.now();
  await r.start();
  t.diagnostic(`start took ${Date.now() - t0} ms`);
  const lis = await listener();
  try {
    assert.match(r.instanceName, /^Passim-[0-9A-F]{4}$/);
    const peers = await findPeers(h1, { interfaces: LO });
    assert.deepEqual(peers, [{ address: '127.0.0.1', port: 40001, instance: r.instanceName, host: 'loophost.local' }]);

    // setHashes diffs: h1 goes (goodbye), h2 and h3 come
    const bye = lis.waitFor((m) => m.response && m.answers.some((a) => a.name === subtypeName(h1) && a.ttl === 0));
    r.setHashes([h2, h3.toUpperCase()]);
    await bye;
    assert.deepEqual(await findPeers(h1, { interfaces: LO, timeoutMs: 300 }), []);
    assert.equal((await findPeers(h3, { interfaces: LO })).length, 1);
    assert.throws(() => r.add('nope'), InvalidHashError);

    // abort ends the iteration early, without an error
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(), 100);
    const s2 = Date.now();
    for await (const _ of browse(sha('absent'), { interfaces: LO, timeoutMs: 5000, signal: ac2.signal })) void _;
    assert.ok(Date.now() - s2 < 1000, `aborted after ${Date.now() - s2} ms`);

    // stop: goodbyes for the service PTR and SRV
    const byeSrv = lis.waitFor((m) => m.response && m.answers.some((a) => a.type === 'SRV' && a.ttl === 0 && a.name.startsWith(r.instanceName)));
    await r.stop();
    await byeSrv;
    await r.stop(); // idempotent
    assert.deepEqual(await findPeers(h2, { interfaces: LO, timeoutMs: 300 }), []);
  } finally {
    await r.stop();
    await lis.close();
  }
});

test('two responders on one host share port 5353; same forced name → the second renames', { skip, timeout: 20000 }, async () => {
  const h = sha('shared');
  const a = new Responder({ port: 40002, interfaces: LO, hostName: 'twin-a', instanceName: 'Passim-LOOP' });
  const b = new Responder({ port: 40003, interfaces: LO, hostName: 'twin-b', instanceName: 'Passim-LOOP' });
  try {
    await a.start();
    await b.start();
    assert.equal(a.instanceName, 'Passim-LOOP');
    assert.equal(b.instanceName, 'Passim-LOOP #2');
    a.add(h);
    b.add(h);
    const peers = await findPeers(h, { interfaces: LO });
    assert.deepEqual(peers.map((p) => `${p.instance}:${p.port}`).sort(), ['Passim-LOOP #2:40003', 'Passim-LOOP:40002']);
    const others = await findPeers(h, { interfaces: LO, excludeInstances: ['passim-loop'] });
    assert.deepEqual(others.map((p) => p.instance), ['Passim-LOOP #2'], 'excludeInstances is case-insensitive');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('browse validates the hash up front', () => {
  assert.throws(() => browse('xyz'), InvalidHashError);
});

test('a responder that sends no additional records (as Avahi) is still resolved: SRV/TXT then A asked', { skip, timeout: 20000 }, async () => {
  const h = sha('avahi-like');
  const r = new Responder({ port: 40004, interfaces: LO, hostName: 'bare', additionalRecords: false });
  const lis = await listener();
  try {
    await r.start();
    r.add(h);
    const asked: string[] = [];
    const seen = lis.msgs.length;
    const peers = await findPeers(h, { interfaces: LO, timeoutMs: 300 });
    assert.deepEqual(peers, [{ address: '127.0.0.1', port: 40004, instance: r.instanceName, host: 'bare.local' }]);
    // the browser's follow-up questions went out on the wire
    for (const m of lis.msgs.slice(seen)) if (!m.response) for (const q of m.questions) asked.push(q.type);
    assert.ok(asked.includes('SRV') && asked.includes('TXT') && asked.includes('A'), asked.join(','));
  } finally {
    await r.stop();
    await lis.close();
  }
});
