/**
 * Non-loopback behaviour: the server is told only 127.0.0.1 is loopback, and "peer" requests come
 * from 127.0.0.2 (still the lo interface, so no traffic leaves the machine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { fixture, get, getSettled, sha256, randomContent, PEER_ADDRESS } from './helpers.js';

test('from a peer: index 403, not held 403 (no redirect), held 200', async (t) => {
  let asked = 0;
  const f = await fixture({ config: { cooldown: 0 }, findPeer: async () => { asked++; return { address: '192.0.2.1', port: 1 }; } });
  t.after(() => f.close());
  const it = await f.publish(randomContent(2000), { basename: 'a.json', shareLimit: 10 });
  assert.equal((await get(f.peer, `${f.base}/`)).status, 403);
  assert.equal((await get(f.peer, `${f.base}/style.css`)).status, 403);
  assert.equal((await get(f.peer, `${f.base}/x?sha256=${'34'.repeat(32)}`)).status, 403);
  assert.equal((await get(f.peer, `${f.base}/x?sha256=${it.hash}&localhost=false`)).status, 403);
  assert.equal(asked, 0, 'peers are never redirected');
  const r = await get(f.peer, `${f.base}/a.json?sha256=${it.hash}`);
  assert.equal(r.status, 200);
  assert.equal(sha256(r.body), it.hash);
  assert.equal(r.headers['content-type'], 'application/json');
});

test('cooldown: a peer re-requesting a hash within Cooldown gets 403, even after a 403; other peers and loopback do not', async (t) => {
  let clock = 1_700_000_000_000;
  const f = await fixture({ config: { cooldown: 3600 }, now: () => clock });
  t.after(() => f.close());
  const it = await f.publish(randomContent(3000), { basename: 'c.xml', shareLimit: 10 });
  assert.equal((await getSettled(f, f.peer, `${f.base}/c.xml?sha256=${it.hash}`)).status, 200);
  assert.equal((await get(f.peer, `${f.base}/c.xml?sha256=${it.hash.toUpperCase()}`)).status, 403);
  assert.equal((await get(f.local, `${f.base}/c.xml?sha256=${it.hash}`)).status, 200, 'loopback has no cooldown');

  // a 403 for an item not held starts the cooldown too: after publishing it, still 403
  const later = randomContent(1000);
  const laterHash = sha256(later);
  assert.equal((await get(f.peer, `${f.base}/l.bin?sha256=${laterHash}`)).status, 403);
  await f.publish(later, { basename: 'l.bin' });
  assert.equal((await get(f.peer, `${f.base}/l.bin?sha256=${laterHash}`)).status, 403);

  clock += 3600 * 1000;
  assert.equal((await getSettled(f, f.peer, `${f.base}/c.xml?sha256=${it.hash}`)).status, 200, 'window over');
  assert.equal((await getSettled(f, f.peer, `${f.base}/l.bin?sha256=${laterHash}`)).status, 200);
  assert.equal(f.store.get(it.hash)?.shareCount, 2, 'refused requests did not count');
});

test('share limit 2: two peer downloads delete the item, the third is 403', async (t) => {
  const f = await fixture({ config: { cooldown: 0 } });
  t.after(() => f.close());
  const b = randomContent(50_000);
  const it = await f.publish(b, { basename: 's.bin', shareLimit: 2 });
  const savingBefore = f.store.savings().downloadSaving;
  // the share is recorded after the response completed: getSettled waits for the server to settle it
  const r1 = await getSettled(f, f.peer, `${f.base}/s.bin?sha256=${it.hash}`);
  assert.equal(r1.status, 200);
  assert.equal(f.store.get(it.hash)?.shareCount, 1);
  const r2 = await getSettled(f, f.peer, `${f.base}/s.bin?sha256=${it.hash}`);
  assert.equal(r2.status, 200);
  assert.ok(r2.body.equals(b));
  assert.equal(f.store.get(it.hash), undefined, 'deleted at the limit');
  assert.equal((await get(f.peer, `${f.base}/s.bin?sha256=${it.hash}`)).status, 403);
  assert.equal(f.store.savings().downloadSaving - savingBefore, 2 * b.length);
});

test('10 concurrent peer downloads of an item with share-limit 3: exactly 3 complete 200s', async (t) => {
  const f = await fixture({ config: { cooldown: 0, maxUploads: 100, maxUploadsPerPeer: 100 } });
  t.after(() => f.close());
  const b = randomContent(2 * 1024 * 1024);
  const it = await f.publish(b, { basename: 'big.iso', shareLimit: 3 });
  const replies = await Promise.all(Array.from({ length: 10 }, () => getSettled(f, f.peer, `${f.base}/big.iso?sha256=${it.hash}`)));
  const ok = replies.filter((r) => r.status === 200);
  assert.equal(ok.length, 3, replies.map((r) => r.status).join(','));
  for (const r of ok) assert.ok(r.body.equals(b));
  for (const r of replies.filter((x) => x.status !== 200)) assert.equal(r.status, 403);
  assert.equal(f.store.get(it.hash), undefined);
});

test('an aborted peer download counts no share and lifts the cooldown', async (t) => {
  const f = await fixture({ config: { cooldown: 3600 } });
  t.after(() => f.close());
  const b = randomContent(32 * 1024 * 1024);
  const it = await f.publish(b, { basename: 'abort.bin', shareLimit: 1 });
  const done = f.settled((r) => r.peer === PEER_ADDRESS && r.url.includes(it.hash));
  const res = await request(`${f.base}/abort.bin?sha256=${it.hash}`, { dispatcher: f.peer });
  assert.equal(res.statusCode, 200);
  // read one chunk, then hang up
  for await (const _chunk of res.body) break;
  const rec = await done;
  assert.equal(rec.complete, false);
  const item = f.store.get(it.hash);
  assert.ok(item, 'still there');
  assert.equal(item.shareCount, 0);
  const again = await getSettled(f, f.peer, `${f.base}/abort.bin?sha256=${it.hash}`);
  assert.equal(again.status, 200);
  assert.equal(sha256(again.body), it.hash);
  assert.equal(f.store.get(it.hash), undefined, 'the completed download reached share-limit 1');
});

test('a resumed download (Range to the end) counts one share; a middle slice none', async (t) => {
  const f = await fixture({ config: { cooldown: 0 } });
  t.after(() => f.close());
  const b = randomContent(10_000);
  const it = await f.publish(b, { basename: 'r.bin', shareLimit: 5 });
  const mid = await getSettled(f, f.peer, `${f.base}/r.bin?sha256=${it.hash}`, { headers: { range: 'bytes=0-99' } });
  assert.equal(mid.status, 206);
  assert.equal(f.store.get(it.hash)?.shareCount, 0);
  const tail = await getSettled(f, f.peer, `${f.base}/r.bin?sha256=${it.hash}`, { headers: { range: 'bytes=100-' } });
  assert.equal(tail.status, 206);
  assert.ok(Buffer.concat([mid.body, tail.body]).equals(b));
  assert.equal(f.store.get(it.hash)?.shareCount, 1);
});

test('MaxUploadsPerPeer: a second concurrent download from the same peer → 503 + Retry-After', async (t) => {
  const f = await fixture({ config: { cooldown: 3600, maxUploads: 10, maxUploadsPerPeer: 1 } });
  t.after(() => f.close());
  const b = randomContent(32 * 1024 * 1024);
  const it = await f.publish(b, { basename: 'slow.bin', shareLimit: 5 });
  const small = await f.publish(randomContent(100), { basename: 'small.bin', shareLimit: 5 });
  // first download: headers received, body not read, so the upload stays in progress
  const first = await request(`${f.base}/slow.bin?sha256=${it.hash}`, { dispatcher: f.peer });
  assert.equal(first.statusCode, 200);
  const busy = await get(f.peer, `${f.base}/small.bin?sha256=${small.hash}`);
  assert.equal(busy.status, 503);
  assert.equal(busy.headers['retry-after'], '10');
  // loopback is not limited
  assert.equal((await get(f.local, `${f.base}/small.bin?sha256=${small.hash}`)).status, 200);
  const done = f.settled((r) => r.url.includes(it.hash));
  first.body.destroy();
  await done;
  // the 503 did not start a cooldown
  const retry = await get(f.peer, `${f.base}/small.bin?sha256=${small.hash}`);
  assert.equal(retry.status, 200);
});
