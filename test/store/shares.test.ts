import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { body, openStore, tempDir, waitForEvent } from './helpers.js';

test('reaching share-limit deletes the file, emits removed(share-limit) and logs SHARE and DELTE', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state });
  const item = await store.publish(body('share me'), { basename: 's.txt', shareLimit: 2 });
  const changed = waitForEvent<[{ shareCount: number }]>(store, 'changed');
  await store.recordShare(item.hash, '192.0.2.1', 8);
  assert.equal((await changed)[0].shareCount, 1);
  assert.ok(existsSync(item.path));
  const removed = waitForEvent<[{ hash: string }, string]>(store, 'removed');
  await store.recordShare(item.hash, '192.0.2.2', 8);
  const [gone, reason] = await removed;
  assert.equal(gone.hash, item.hash);
  assert.equal(reason, 'share-limit');
  assert.equal(existsSync(item.path), false);
  assert.equal(store.get(item.hash), undefined);
  assert.equal(store.savings().downloadSaving, 16);
  const lines = (await readFile(join(state, 'log', 'audit.log'), 'utf8')).trim().split('\n').map((l) => l.split(' ').slice(1).join(' '));
  assert.deepEqual(lines, [
    `PBLSH hash=${item.hash},basename=s.txt,size=8,cmdline=`,
    `SHARE hash=${item.hash},basename=s.txt,size=8,ipaddr=192.0.2.1`,
    `SHARE hash=${item.hash},basename=s.txt,size=8,ipaddr=192.0.2.2`,
    `DELTE hash=${item.hash},basename=s.txt`,
  ]);
});

test('concurrent reservations never exceed the share-limit; release gives a share back', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state });
  const item = await store.publish(body('popular'), { basename: 'p', shareLimit: 3 });
  const granted = Array.from({ length: 10 }, () => store.reserveShare(item.hash)).filter(Boolean).length;
  assert.equal(granted, 3);
  store.releaseShare(item.hash); // one response failed
  assert.equal(store.reserveShare(item.hash), true);
  assert.equal(store.reserveShare(item.hash), false);
  // completing two of the three leaves one in flight and none free
  await store.recordShare(item.hash, '198.51.100.1', 7);
  await store.recordShare(item.hash, '198.51.100.2', 7);
  assert.equal(store.get(item.hash)?.shareCount, 2);
  assert.equal(store.reserveShare(item.hash), false);
  const removed = waitForEvent(store, 'removed');
  await store.recordShare(item.hash, '198.51.100.3', 7);
  await removed;
  assert.equal(store.reserveShare(item.hash), false, 'nothing to reserve once deleted');
});

test('share-limit 0 is unlimited; unknown and disabled items cannot be reserved', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state, bootTime: () => 'b1' });
  const item = await store.publish(body('unlimited'), { basename: 'u', shareLimit: 0 });
  for (let i = 0; i < 20; i++) assert.equal(store.reserveShare(item.hash), true);
  for (let i = 0; i < 20; i++) await store.recordShare(item.hash, '203.0.113.9', 1);
  assert.equal(store.get(item.hash)?.shareCount, 20);
  assert.equal(store.reserveShare('0'.repeat(64)), false);
  assert.equal(store.reserveShare('not a hash'), false);
  const off = await store.publish(body('later'), { basename: 'l', nextReboot: true });
  assert.equal(store.reserveShare(off.hash), false);
});

test('an item whose saved count already reached its limit (crash before the delete) is removed at load', async (t) => {
  const state = await tempDir(t);
  const first = await openStore(t, { stateDir: state });
  const item = await first.publish(body('almost gone'), { basename: 'a.bin', shareLimit: 2 });
  await first.close();
  // what a kill between saving the count and unlinking the file leaves behind
  await writeFile(join(state, 'shares.json'), JSON.stringify({ counts: { [item.hash]: 2 } }));
  const second = await openStore(t, { stateDir: state });
  assert.equal(second.get(item.hash), undefined);
  assert.equal(existsSync(item.path), false);
  assert.match(await readFile(join(state, 'log', 'audit.log'), 'utf8'), new RegExp(`DELTE hash=${item.hash}`));
});

test('when load() resolves, the share counts it cleaned up are on disk and no save is still writing', async (t) => {
  const state = await tempDir(t);
  const gone = 'a'.repeat(64); // a count for an item no longer held: load drops it and saves
  const stale = `.tmp-shares.json-${process.pid}-crashed`; // a save a crash interrupted
  await writeFile(join(state, 'shares.json'), JSON.stringify({ version: 1, counts: { [gone]: 3 } }));
  await writeFile(join(state, stale), '{"version":1,');
  const store = await openStore(t, { stateDir: state });
  const temps = (await readdir(state)).filter((n) => n.startsWith('.tmp-'));
  assert.deepEqual(temps, [], 'no temp file of a save in flight, nor the crashed one');
  assert.deepEqual(JSON.parse(await readFile(join(state, 'shares.json'), 'utf8')), { version: 1, counts: {} });
  assert.equal(store.size, 0);
});

test('a burst of share counts is not saved change by change; flush() saves them all at once', async (t) => {
  const { ShareCounts } = await import('../../lib/store/share-counts.js');
  const dir = await tempDir(t);
  const path = join(dir, 'shares.json');
  const counts = new ShareCounts(path);
  await counts.load();
  const h = 'a'.repeat(64);
  counts.increment(h);
  // the rest of the burst, each in a later turn of the event loop: one save after the delay holds all
  for (let i = 1; i < 20; i++) {
    await new Promise((r) => setImmediate(r));
    counts.increment(h);
  }
  // a save per change would have landed by now (SAVE_DELAY_MS is 500)
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(existsSync(path), false, 'no save during the burst');
  // no event tells when the delayed save lands: look for the file
  for (let i = 0; i < 500 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { version: 1, counts: { [h]: 20 } }, 'the first save has the whole burst');
  counts.increment(h);
  counts.increment(h);
  await counts.flush();
  assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { version: 1, counts: { [h]: 22 } });
  counts.forget(h);
  await counts.flush();
  assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { version: 1, counts: {} });
});
