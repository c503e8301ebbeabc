import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, unlink, symlink, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../../lib/core/logger.js';
import type { ItemInfo } from '../../lib/store/types.js';
import { xattrText, openStore, putXattr, sha256, tempDir, waitForEvent } from './helpers.js';

async function layout(t: import('node:test').TestContext) {
  const root = await tempDir(t);
  const state = join(root, 'state');
  const config = join(root, 'etc');
  const shared = join(root, 'shared');
  await mkdir(join(config, 'passim.d'), { recursive: true });
  await mkdir(shared);
  await writeFile(join(config, 'passim.d', 'shared.conf'), `[passim]\nPath=${shared}\n`);
  return { root, state, config, shared };
}

const isAdded = (name: string) => (i: ItemInfo) => i.basename === name;
const isRemoved = (hash: string, reason: string) => (i: ItemInfo, r: string) => i.hash === hash && r === reason;

test('every regular file of a static dir is a static item; symlinks, subdirs and dot-files are not', async (t) => {
  const { root, state, config, shared } = await layout(t);
  await writeFile(join(shared, 'a.txt'), 'alpha');
  await writeFile(join(shared, 'b.txt'), 'beta');
  await writeFile(join(root, 'outside'), 'secret');
  await symlink(join(root, 'outside'), join(shared, 'link'));
  await mkdir(join(shared, 'sub'));
  await writeFile(join(shared, 'sub', 'deep'), 'deep');
  await writeFile(join(shared, '.hidden'), 'h');
  const clock = { now: Date.now() };
  const store = await openStore(t, { stateDir: state, configDir: config, now: () => clock.now });
  const items = store.list();
  assert.deepEqual(items.map((i) => i.basename), ['a.txt', 'b.txt']);
  const a = items[0];
  assert.equal(a.hash, sha256('alpha'));
  assert.equal(a.path, join(shared, 'a.txt'));
  assert.equal(a.static, true);
  assert.equal(a.maxAge, 0);
  assert.equal(a.shareLimit, 0);
  assert.deepEqual(store.advertisedHashes().sort(), [sha256('alpha'), sha256('beta')].sort());
  // never expires, never deleted by shares
  clock.now += 10 * 365 * 86400_000;
  assert.deepEqual(await store.expire(), []);
  for (let i = 0; i < 10; i++) await store.recordShare(a.hash, '192.0.2.5', 5);
  assert.ok(store.get(a.hash));
  assert.equal(await readFile(join(shared, 'a.txt'), 'utf8'), 'alpha');
});

test('the sha256 is cached in user.checksum.sha256 and recomputed when the file changes', async (t) => {
  const { state, config, shared } = await layout(t);
  const f = join(shared, 'cached.bin');
  await writeFile(f, 'version one');
  let store = await openStore(t, { stateDir: state, configDir: config });
  assert.equal(await xattrText(f, 'user.checksum.sha256'), sha256('version one'));
  assert.ok(await xattrText(f, 'user.passim.checksum_stat'));
  await store.close();

  // a planted value with a matching stamp is believed: proof the cache is read, not recomputed
  // (once the state dir's copy of the checksums, read first, is gone)
  const planted = 'c'.repeat(64);
  await putXattr(f, 'user.checksum.sha256', planted);
  await rm(join(state, 'static-checksums.json'));
  store = await openStore(t, { stateDir: state, configDir: config });
  assert.deepEqual(store.list().map((i) => i.hash), [planted]);
  await store.close();

  // upstream's bare checksum xattr without our stamp is not trusted
  await writeFile(f, 'version two!');
  store = await openStore(t, { stateDir: state, configDir: config });
  assert.deepEqual(store.list().map((i) => i.hash), [sha256('version two!')]);
  assert.equal(await xattrText(f, 'user.checksum.sha256'), sha256('version two!'));
});

test('the state dir keeps the checksums between starts; a file changed meanwhile is hashed again; an unreadable copy falls back to the xattrs', async (t) => {
  const { state, config, shared } = await layout(t);
  const a = join(shared, 'a.bin');
  const b = join(shared, 'b.bin');
  await writeFile(a, 'aaa');
  await writeFile(b, 'bbb');
  let store = await openStore(t, { stateDir: state, configDir: config });
  await store.close();
  const file = join(state, 'static-checksums.json');
  const saved = JSON.parse(await readFile(file, 'utf8')) as { files: string[] };
  // "<sha256> <size>:<mtimeNs> <path>"
  assert.equal(saved.files.length, 2);
  assert.ok(saved.files.some((l) => l.startsWith(`${sha256('aaa')} 3:`) && l.endsWith(` ${a}`)), saved.files.join('\n'));
  assert.ok(saved.files.some((l) => l.startsWith(`${sha256('bbb')} 3:`) && l.endsWith(` ${b}`)), saved.files.join('\n'));

  // believed while the stamp holds (a value the bytes cannot have: only the state dir's copy says it)
  const planted = 'd'.repeat(64);
  await writeFile(file, JSON.stringify({ version: 1, files: saved.files.map((l) => (l.endsWith(' ' + a) ? planted + l.slice(64) : l)) }));
  store = await openStore(t, { stateDir: state, configDir: config });
  assert.deepEqual(store.list().map((i) => i.hash).sort(), [planted, sha256('bbb')].sort());
  await store.close();

  // b changes while no store runs: hashed again despite the saved hash
  await writeFile(b, 'bbb changed');
  store = await openStore(t, { stateDir: state, configDir: config });
  assert.ok(store.get(sha256('bbb changed')));
  assert.equal(store.get(sha256('bbb')), undefined);
  await store.close();

  // an unreadable copy: a warning, and the xattr cache (which never saw the planted value) answers
  await writeFile(file, '{ not json');
  const lines: string[] = [];
  store = await openStore(t, { stateDir: state, configDir: config, logger: createLogger('debug', (l) => lines.push(l)) });
  assert.deepEqual(store.list().map((i) => i.hash).sort(), [sha256('aaa'), sha256('bbb changed')].sort());
  assert.ok(lines.some((l) => l.startsWith('warn: ') && l.includes('static-checksums.json')), lines.join('\n'));
});

test('changes are picked up while running: new file, changed file, removed file, new and removed conf', async (t) => {
  const { root, state, config, shared } = await layout(t);
  await writeFile(join(shared, 'first.txt'), 'first');
  const store = await openStore(t, { stateDir: state, configDir: config, watchDebounceMs: 50, rescanIntervalMs: 3_600_000 });
  store.startTimers();
  await store.rescanStatic(); // watchers are in place once a scan has run

  let added = waitForEvent<[ItemInfo]>(store, 'added', isAdded('second.txt'));
  await writeFile(join(shared, 'second.txt'), 'second');
  assert.equal((await added)[0].hash, sha256('second'));

  const removedOld = waitForEvent<[ItemInfo, string]>(store, 'removed', isRemoved(sha256('first'), 'static-gone'));
  added = waitForEvent<[ItemInfo]>(store, 'added', (i) => i.hash === sha256('first, edited'));
  await writeFile(join(shared, 'first.txt'), 'first, edited');
  await removedOld;
  await added;
  assert.equal(store.get(sha256('first')), undefined);

  const removed = waitForEvent<[ItemInfo, string]>(store, 'removed', isRemoved(sha256('second'), 'static-gone'));
  await unlink(join(shared, 'second.txt'));
  await removed;

  const more = join(root, 'more');
  await mkdir(more);
  await writeFile(join(more, 'm.txt'), 'more');
  added = waitForEvent<[ItemInfo]>(store, 'added', isAdded('m.txt'));
  await writeFile(join(config, 'passim.d', 'more.conf'), `[passim]\nPath=${more}\n`);
  await added;

  // and a file added to that new dir is seen too (it is watched now)
  added = waitForEvent<[ItemInfo]>(store, 'added', isAdded('n.txt'));
  await writeFile(join(more, 'n.txt'), 'n');
  await added;

  const goneM = waitForEvent<[ItemInfo, string]>(store, 'removed', isRemoved(sha256('more'), 'static-gone'));
  const goneN = waitForEvent<[ItemInfo, string]>(store, 'removed', isRemoved(sha256('n'), 'static-gone'));
  await unlink(join(config, 'passim.d', 'more.conf'));
  await Promise.all([goneM, goneN]);
  assert.ok(existsSync(join(more, 'm.txt')), 'static files are never deleted');
  assert.deepEqual(store.list().map((i) => i.basename), ['first.txt']);
});

test('passim.d created after start is noticed', async (t) => {
  const root = await tempDir(t);
  const config = join(root, 'etc');
  const shared = join(root, 'shared');
  await mkdir(config);
  await mkdir(shared);
  await writeFile(join(shared, 'late.txt'), 'late');
  const store = await openStore(t, { stateDir: join(root, 'state'), configDir: config, watchDebounceMs: 50 });
  store.startTimers();
  await store.rescanStatic();
  assert.equal(store.list().length, 0);
  const added = waitForEvent<[ItemInfo]>(store, 'added', isAdded('late.txt'));
  await mkdir(join(config, 'passim.d'));
  await writeFile(join(config, 'passim.d', 'late.conf'), `[passim]\nPath=${shared}\n`);
  await added;
});

test('a bad .conf is logged and skipped; the good ones still load', async (t) => {
  const { state, config, shared } = await layout(t);
  await writeFile(join(shared, 'ok.txt'), 'ok');
  await writeFile(join(config, 'passim.d', 'broken.conf'), 'this is not a key file\n');
  await writeFile(join(config, 'passim.d', 'relative.conf'), '[passim]\nPath=relative/dir\n');
  await writeFile(join(config, 'passim.d', 'missing.conf'), `[passim]\nPath=${join(shared, 'nope')}\n`);
  const lines: string[] = [];
  const store = await openStore(t, { stateDir: state, configDir: config, logger: createLogger('debug', (l) => lines.push(l)) });
  assert.deepEqual(store.list().map((i) => i.basename), ['ok.txt']);
  assert.ok(lines.some((l) => l.startsWith('warn:') && l.includes('broken.conf')), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('relative.conf') && l.includes('absolute')), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('nope')), lines.join('\n'));
  // logged once, not at every rescan
  const before = lines.length;
  await store.rescanStatic();
  assert.equal(lines.length, before);
});

test('unpublishing a static item only unadvertises it, until the file changes', async (t) => {
  const { state, config, shared } = await layout(t);
  const f = join(shared, 'keep.txt');
  await writeFile(f, 'keep');
  const store = await openStore(t, { stateDir: state, configDir: config, watchDebounceMs: 50 });
  const hash = sha256('keep');
  const removed = waitForEvent<[ItemInfo, string]>(store, 'removed', isRemoved(hash, 'unpublished'));
  const info = await store.unpublish(hash);
  await removed;
  assert.equal(info.static, true);
  assert.ok(existsSync(f));
  assert.equal(store.get(hash), undefined);
  await store.rescanStatic();
  assert.equal(store.get(hash), undefined, 'stays unadvertised across rescans');
  store.startTimers();
  await store.rescanStatic();
  const back = waitForEvent<[ItemInfo]>(store, 'added', isAdded('keep.txt'));
  await writeFile(f, 'keep v2');
  assert.equal((await back)[0].hash, sha256('keep v2'));
});

test('a file published by hash and also in a static dir: the first holder wins, the other takes over later', async (t) => {
  const { state, config, shared } = await layout(t);
  const store = await openStore(t, { stateDir: state, configDir: config });
  const { Readable } = await import('node:stream');
  const item = await store.publish(Readable.from([Buffer.from('dup')]), { basename: 'dup.txt' });
  await writeFile(join(shared, 'dup-static.txt'), 'dup');
  await store.rescanStatic();
  assert.equal(store.get(item.hash)?.static, false);
  await store.unpublish(item.hash);
  await store.rescanStatic();
  assert.equal(store.get(item.hash)?.static, true);
  await rm(join(shared, 'dup-static.txt'));
});
