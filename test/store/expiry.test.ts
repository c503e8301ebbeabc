import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../../lib/store/store.js';
import { body, openStore, tempDir, waitForEvent } from './helpers.js';

test('expire() deletes items past max-age by the injected clock', async (t) => {
  const state = await tempDir(t);
  const clock = { now: 1_000_000_000 };
  const store = await openStore(t, { stateDir: state, now: () => clock.now });
  const short = await store.publish(body('short'), { basename: 'short', maxAge: 60 });
  const long = await store.publish(body('long'), { basename: 'long', maxAge: 3600 });
  const forever = await store.publish(body('forever'), { basename: 'forever', maxAge: 0 });

  clock.now += 60_000; // exactly max-age: still valid
  assert.deepEqual(await store.expire(), []);

  clock.now += 1;
  const removed = waitForEvent<[{ hash: string }, string]>(store, 'removed');
  const gone = await store.expire();
  assert.deepEqual(gone.map((i) => i.hash), [short.hash]);
  const [item, reason] = await removed;
  assert.equal(item.hash, short.hash);
  assert.equal(reason, 'expired');
  assert.equal(existsSync(short.path), false);
  assert.ok(store.get(long.hash));

  clock.now += 365 * 86400_000;
  assert.deepEqual((await store.expire()).map((i) => i.hash), [long.hash]);
  assert.ok(store.get(forever.hash), 'maxAge 0 never expires');
  const log = await readFile(join(state, 'log', 'audit.log'), 'utf8');
  assert.match(log, new RegExp(`DELTE hash=${short.hash},basename=short\\n`));
});

test('load() expires what aged while the daemon was down', async (t) => {
  const state = await tempDir(t);
  const clock = { now: 5_000_000_000 };
  const a = new Store({ stateDir: state, now: () => clock.now });
  await a.load();
  const item = await a.publish(body('old'), { basename: 'old', maxAge: 10 });
  await a.close();
  clock.now += 11_000;
  const b = await openStore(t, { stateDir: state, now: () => clock.now });
  assert.equal(b.get(item.hash), undefined);
  assert.equal(existsSync(item.path), false);
});

test('startTimers() runs expiry periodically and close() stops it', async (t) => {
  const state = await tempDir(t);
  const clock = { now: 1_000 };
  const store = await openStore(t, { stateDir: state, now: () => clock.now, expiryIntervalMs: 20 });
  const item = await store.publish(body('tick'), { basename: 'tick', maxAge: 1 });
  store.startTimers();
  const removed = waitForEvent<[{ hash: string }, string]>(store, 'removed');
  clock.now += 5_000;
  const [gone, reason] = await removed;
  assert.equal(gone.hash, item.hash);
  assert.equal(reason, 'expired');
});
