import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { body, xattrText, openStore, putXattr, sha256, tempDir, waitForEvent } from './helpers.js';

test('verify finds a corrupted item; fix removes it and keeps the good ones', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state });
  const good = await store.publish(body('good bytes'), { basename: 'good' });
  const bad = await store.publish(body('original'), { basename: 'bad' });
  await writeFile(bad.path, 'bit rot');

  const report = await store.verify(false);
  assert.equal(report.checked, 2);
  assert.deepEqual(report.bad, [{ hash: bad.hash, basename: 'bad', actual: sha256('bit rot'), fixed: false }]);
  assert.ok(existsSync(bad.path), 'verify without fix changes nothing');

  const removed = waitForEvent(store, 'removed', (i: { hash: string }, r: string) => i.hash === bad.hash && r === 'corrupt');
  const fixed = await store.verify(true);
  await removed;
  assert.deepEqual(fixed.bad.map((b) => [b.hash, b.fixed]), [[bad.hash, true]]);
  assert.equal(existsSync(bad.path), false);
  assert.equal(store.get(bad.hash), undefined);
  assert.ok(store.get(good.hash));
  assert.match(await readFile(join(state, 'log', 'audit.log'), 'utf8'), new RegExp(`DELTE hash=${bad.hash},basename=bad`));
  assert.deepEqual((await store.verify(false)).bad, []);
});

test('verify --fix on a static item only unadvertises it; a vanished item is reported', async (t) => {
  const root = await tempDir(t);
  const config = join(root, 'etc');
  const shared = join(root, 'shared');
  await mkdir(join(config, 'passim.d'), { recursive: true });
  await mkdir(shared);
  await writeFile(join(config, 'passim.d', 's.conf'), `[passim]\nPath=${shared}\n`);
  const f = join(shared, 'static.bin');
  await writeFile(f, 'static content');
  const store = await openStore(t, { stateDir: join(root, 'state'), configDir: config });
  // make the store believe a wrong hash for the static file (a stale cache that matches its stamp)
  const wrong = 'e'.repeat(64);
  await store.close();
  await putXattr(f, 'user.checksum.sha256', wrong);
  await rm(join(root, 'state', 'static-checksums.json')); // read before the xattrs
  const s2 = await openStore(t, { stateDir: join(root, 'state'), configDir: config });
  assert.equal(s2.get(wrong)?.static, true);
  const gone = await s2.publish(body('will vanish'), { basename: 'v' });
  await import('node:fs/promises').then((fs) => fs.unlink(gone.path));
  const r = await s2.verify(true);
  assert.equal(r.checked, 2);
  const byHash = new Map(r.bad.map((b) => [b.hash, b]));
  assert.equal(byHash.get(wrong)?.actual, sha256('static content'));
  assert.equal(byHash.get(gone.hash)?.actual, '');
  assert.ok(existsSync(f), 'static file never deleted');
  assert.equal(s2.get(wrong), undefined);
  await s2.rescanStatic();
  assert.equal(s2.list().length, 0, 'stays unadvertised while the file is unchanged');
  assert.equal(await xattrText(f, 'user.checksum.sha256'), sha256('static content'), 'stale cache replaced');
  await s2.close();
  const s3 = await openStore(t, { stateDir: join(root, 'state'), configDir: config });
  assert.deepEqual(s3.list().map((i) => i.hash), [sha256('static content')], 'after a restart it is served under its real hash');
});
