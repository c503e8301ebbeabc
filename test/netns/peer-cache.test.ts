/**
 * The daemon's peer cache on a LAN of network namespaces: A publishes, B knows it from A's
 * announcement alone (POST /peers, and the loopback lookup answers 302 from the cache without a
 * query for the hash); A unpublishes, B drops it on the goodbye; an unknown hash is 404 after one
 * short browse. C captures every packet, to show what B did and did not ask. Root only.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLan, netnsSkip, type Lan, type LanHost } from '../helpers/netns.js';
import { startDaemon, passim, type TestDaemon } from '../helpers/daemon.js';
import { MdnsHost, type HostEvent } from '../helpers/mdns-host-client.js';
import { subtypeName } from '../../lib/discovery/names.js';
import type { PeersReply } from '../../lib/control/api.js';
import { eventually } from '../helpers/eventually.js';

const skip = netnsSkip();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let lan: Lan;
let A: LanHost, B: LanHost, C: LanHost;
let dA: TestDaemon, dB: TestDaemon;
let capture: MdnsHost;
let work: string;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'passim-pc-'));
  lan = await createLan(3);
  [A, B, C] = lan.hosts as [LanHost, LanHost, LanHost];
  capture = await MdnsHost.start(C);
  await capture.call('capture');
  [dA, dB] = await Promise.all([startDaemon({ host: A, readyTimeout: 60_000 }), startDaemon({ host: B, readyTimeout: 60_000 })]);
});

after(async () => {
  if (skip) return;
  await capture?.close();
  await Promise.all([dA, dB].filter(Boolean).map(async (d) => { await d.stop(); await d.cleanup(); }));
  await lan?.destroy();
  await rm(work, { recursive: true, force: true });
});

async function peersOn(h: LanHost, d: TestDaemon, hashes: string[]): Promise<PeersReply> {
  const r = await h.exec('curl', ['-s', '--unix-socket', d.socket, '-X', 'POST', '--data-binary', JSON.stringify({ hashes }), 'http://localhost/peers']);
  return JSON.parse(r.stdout) as PeersReply;
}

/** Queries B sent asking for the hash's subtype, among captured events since `since`. */
function queriesFor(hash: string, since: number): HostEvent[] {
  const name = subtypeName(hash).toLowerCase();
  return capture.events.slice(since).filter((e) => e.from === B.address && e.packet?.type === 'query' &&
    (e.packet.questions ?? []).some((q) => q.name.toLowerCase() === name));
}

async function publishOnA(name: string, data: Buffer): Promise<string> {
  const file = join(await mkdtemp(join(work, 'src-')), name);
  await writeFile(file, data);
  const r = await passim(['publish', file, '--socket', dA.socket], { host: A });
  assert.equal(r.code, 0, r.stderr);
  return sha(data);
}

test('A publishes: B knows A from the announcement (POST /peers) and its loopback lookup answers 302 from the cache; A unpublishes: B drops it', { skip, timeout: 60_000 }, async () => {
  const since = capture.mark();
  const hash = await publishOnA('fw.cab', randomBytes(40_000));
  const expected = { address: A.address, port: 27500, instance: dA.name };
  const reply = await eventually('B hears A announce the hash', async () => {
    const r = await peersOn(B, dB, [hash, 'cd'.repeat(32)]);
    return r.peers[hash]?.length ? r : undefined;
  });
  assert.deepEqual(Object.keys(reply.peers), [hash], 'only hashes with a peer are listed');
  assert.deepEqual(reply.peers[hash]!.map(({ address, port, instance }) => ({ address, port, instance })), [expected]);
  assert.match(reply.peers[hash]![0]!.host, /\.local$/);

  // the loopback lookup (fwupd): 302 to A straight from the cache
  const url = `https://127.0.0.1:27500/fw.cab?sha256=${hash}`;
  const head = await B.exec('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', url]);
  assert.equal(head.stdout, `302 https://${A.address}:27500/fw.cab?sha256=${hash}`);
  const followed = await B.exec('sh', ['-c', `curl -skL --max-redirs 5 '${url}' | sha256sum`]);
  assert.equal(followed.stdout.split(' ')[0], hash);
  assert.deepEqual(queriesFor(hash, since), [], 'B never asked the LAN for this hash');

  // passim dump shows what B's cache holds
  const dump = await passim(['dump', '--json', '--socket', dB.socket], { host: B });
  assert.equal(dump.code, 0, dump.stderr);
  const pc = (JSON.parse(dump.stdout) as { status: { peerCache?: { hashes: number; peers: number } } }).status.peerCache;
  assert.ok(pc && pc.hashes >= 1 && pc.peers === 1, JSON.stringify(pc));

  // A's own cache never lists A
  assert.deepEqual((await peersOn(A, dA, [hash])).peers, {});

  // unpublish on A: its goodbye empties B's cache for the hash
  const r = await passim(['unpublish', hash, '--socket', dA.socket], { host: A });
  assert.equal(r.code, 0, r.stderr);
  await eventually('B drops the hash after A\'s goodbye', async () => ((await peersOn(B, dB, [hash])).peers[hash] ? undefined : true));
  const none = await B.exec('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', url]);
  assert.equal(none.stdout, '404', 'gone from the cache, and no peer answers the browse');
});

test('an unknown hash: the loopback lookup browses once and answers 404; the control socket rejects a bad body', { skip, timeout: 30_000 }, async () => {
  const unknown = 'ef'.repeat(32);
  const since = capture.mark();
  const none = await B.exec('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:27500/x?sha256=${unknown}`]);
  assert.equal(none.stdout, '404');
  assert.ok(queriesFor(unknown, since).length >= 1, 'a hash the cache does not know is asked for on the LAN');
  const bad = await B.exec('curl', ['-s', '-w', ' %{http_code}', '--unix-socket', dB.socket, '-X', 'POST', '--data-binary', '{"hashes":["x"]}', 'http://localhost/peers']);
  assert.match(bad.stdout, /PASSIM_INVALID_HASH.* 400$/);
});

test('a peer that was there before B started: B resolves it by asking for SRV and address, never for the hash', { skip, timeout: 60_000 }, async () => {
  const hash = await publishOnA('early.bin', randomBytes(10_000));
  await eventually('B knows early.bin', async () => ((await peersOn(B, dB, [hash])).peers[hash] ? true : undefined));
  // restart B: its cache is empty; A's next announcement of an item carries only the subtype PTR
  await dB.stop();
  const since = capture.mark();
  dB = await startDaemon({ host: B, root: dB.root, readyTimeout: 60_000 });
  const later = await publishOnA('later.bin', randomBytes(10_000));
  const reply = await eventually('B resolves A', async () => {
    const r = await peersOn(B, dB, [later]);
    return r.peers[later]?.length ? r : undefined;
  });
  assert.equal(reply.peers[later]![0]!.address, A.address);
  assert.deepEqual(queriesFor(later, since), [], 'B never asked for the hash');
  const srvQuery = capture.events.slice(since).some((e) => e.from === B.address && e.packet?.type === 'query' &&
    (e.packet.questions ?? []).some((q) => q.type === 'SRV' && q.name.toLowerCase() === `${dA.name}._cache._tcp.local`.toLowerCase()));
  assert.ok(srvQuery, 'B asked for the SRV of A\'s instance');
});

test('a hash nobody announced: B\'s lookup browses and a peer answers (302); the browse fed the cache, so the next lookup asks nothing', { skip, timeout: 60_000 }, async () => {
  const hidden = sha(randomBytes(16));
  // a responder on C that answers for the hash but never announces it
  const started = await capture.call<{ instanceName: string }>('start', { port: 27599, hashes: [hidden], maxAnnouncedSubtypes: 0, hostName: 'hidden' });
  const url = `https://127.0.0.1:27500/h.bin?sha256=${hidden}`;
  const expected = `302 https://${C.address}:27599/h.bin?sha256=${hidden}`;
  assert.deepEqual((await peersOn(B, dB, [hidden])).peers, {}, 'B has not heard of it');
  const since = capture.mark();
  const first = await B.exec('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', url]);
  assert.equal(first.stdout, expected);
  assert.ok(queriesFor(hidden, since).length >= 1, 'B asked the LAN');
  const known = await peersOn(B, dB, [hidden]);
  assert.equal(known.peers[hidden]?.[0]?.instance, started.instanceName, 'what the browse heard is in the cache');
  const since2 = capture.mark();
  const second = await B.exec('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', url]);
  assert.equal(second.stdout, expected);
  assert.deepEqual(queriesFor(hidden, since2), [], 'answered from the cache');
  await capture.call('stop');
});

test('alone: with A gone (its goodbyes heard), B says so and asks nobody for an unknown hash, at the loopback lookup or in a batch; A back: B is not alone', { skip, timeout: 90_000 }, async () => {
  const unknown = sha(randomBytes(16));
  assert.equal((await peersOn(B, dB, [unknown])).alone, false, 'A is on the LAN');
  await dA.stop();
  await eventually('B alone', async () => ((await peersOn(B, dB, [unknown])).alone === true ? true : undefined), 20_000);

  const since = capture.mark();
  const none = await B.exec('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:27500/x?sha256=${unknown}`]);
  assert.equal(none.stdout, '404');
  const batch = [sha(randomBytes(16)), sha(randomBytes(16))];
  const list = join(work, 'alone-list');
  await writeFile(list, batch.map((h, i) => `${h} f${i}.bin`).join('\n') + '\n');
  const out = await mkdtemp(join(work, 'alone-out-'));
  const r = await passim(['fetch', '--from', list, '-o', out, '--no-cdn', '--json', '--socket', dB.socket], { host: B });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stdout, /no peer found/);
  // a marker B sends after both: its query is seen, so anything sent before it would have been too
  const marker = sha(randomBytes(16));
  await passim(['fetch', 'm.bin', '--sha256', marker, '--no-cdn', '--timeout', '100', '--socket', join(work, 'none.sock')], { host: B });
  await eventually('the marker query captured', async () => (queriesFor(marker, since).length ? true : undefined));
  assert.deepEqual(queriesFor(unknown, since), [], 'the loopback lookup asked nobody');
  for (const h of batch) assert.deepEqual(queriesFor(h, since), [], 'the batch asked nobody');

  dA = await startDaemon({ host: A, root: dA.root, readyTimeout: 60_000 });
  await eventually('B hears A again', async () => ((await peersOn(B, dB, [unknown])).alone === false ? true : undefined), 20_000);
});
