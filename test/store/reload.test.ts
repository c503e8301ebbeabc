import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Store } from '../../lib/store/store.js';
import { body, defer, openStore, putXattr, sha256, tempDir } from './helpers.js';

test('a new Store on the same dirs keeps items, metadata, share counts and savings', async (t) => {
  const state = await tempDir(t);
  const clock = { now: 1_700_000_000_000 };
  const opts = { stateDir: state, now: () => clock.now, bootTime: () => '42', carbonCost: 0.5 };
  const a = new Store(opts);
  await a.load();
  const item = await a.publish(body('reload me'), { basename: 'r.bin', maxAge: 1000, shareLimit: 3, cmdline: 'fwupd' });
  const nr = await a.publish(body('after reboot'), { basename: 'fw.cab', nextReboot: true });
  assert.equal(nr.disabled, true);
  await a.recordShare(item.hash, '192.0.2.7', 1024 ** 3);
  assert.equal(a.get(item.hash)?.shareCount, 1);
  await a.close();

  const b = new Store(opts);
  defer(t, () => b.close());
  await b.load();
  const again = b.get(item.hash);
  assert.ok(again);
  assert.equal(again.basename, 'r.bin');
  assert.equal(again.maxAge, 1000);
  assert.equal(again.shareLimit, 3);
  assert.equal(again.cmdline, 'fwupd');
  assert.equal(again.created, clock.now, 'publish time from our xattr, not the file btime');
  assert.equal(again.shareCount, 1);
  assert.equal(again.size, 9);
  assert.deepEqual(b.savings(), { downloadSaving: 1024 ** 3, carbonSaving: 0.5 });
  const fw = b.get(nr.hash);
  assert.equal(fw?.nextReboot, true);
  assert.equal(fw?.disabled, true);
  assert.deepEqual(b.advertisedHashes(), [item.hash]);
  const counts = JSON.parse(await readFile(join(state, 'shares.json'), 'utf8'));
  assert.deepEqual(counts.counts, { [item.hash]: 1 });
});

test('a store dir written by upstream (files + xattrs only) loads', async (t) => {
  const state = await tempDir(t);
  const data = join(state, 'data');
  await mkdir(data, { recursive: true });
  const h1 = sha256('firmware');
  const h2 = sha256('metadata');
  const f1 = join(data, `${h1}-firmware-1.2.cab`); // basename with '-': split at the first one only
  const f2 = join(data, `${h2}-repomd.xml`);
  await writeFile(f1, 'firmware');
  await writeFile(f2, 'metadata');
  await putXattr(f1, 'user.max_age', '0x008d2700'); // 2592000 (30 days) little-endian
  await putXattr(f1, 'user.share_limit', '0x32000000'); // 50
  await putXattr(f1, 'user.cmdline', 'fwupd');
  await putXattr(f1, 'user.boot_time', '1700000000');
  // f2: no xattrs at all → defaults
  const past = new Date(Date.now() - 3600_000);
  await utimes(f2, past, past);

  const store = await openStore(t, { stateDir: state, bootTime: () => '1700000000' });
  const a = store.get(h1);
  assert.ok(a);
  assert.equal(a.basename, 'firmware-1.2.cab');
  assert.equal(a.maxAge, 2592000);
  assert.equal(a.shareLimit, 50);
  assert.equal(a.cmdline, 'fwupd');
  assert.equal(a.nextReboot, true);
  assert.equal(a.disabled, true);
  assert.ok(Math.abs(a.created - Date.now()) < 60_000, 'age from the file btime when we wrote no publish time');
  const b = store.get(h2);
  assert.ok(b);
  assert.equal(b.maxAge, 86400);
  assert.equal(b.shareLimit, 5);
  assert.equal(b.cmdline, undefined);
  assert.equal(b.disabled, false);
  assert.deepEqual(store.advertisedHashes(), [h2]);
});

test('upper-case hashes find items; a mis-sized uint32 xattr falls back to the default', async (t) => {
  const state = await tempDir(t);
  const data = join(state, 'data');
  await mkdir(data, { recursive: true });
  const h = sha256('odd');
  const f = join(data, `${h}-odd.txt`);
  await writeFile(f, 'odd');
  await putXattr(f, 'user.max_age', '0x0102'); // 2 bytes: not a uint32
  await putXattr(f, 'user.share_limit', '0xffffffff'); // upstream's invalid marker
  const store = await openStore(t, { stateDir: state });
  const item = store.get(h.toUpperCase());
  assert.equal(item?.maxAge, 86400);
  assert.equal(item?.shareLimit, 5);
});
