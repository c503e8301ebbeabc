import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ChecksumMismatchError, InvalidNameError, ItemExistsError, TooLargeError, UsageError } from '../../lib/core/errors.js';
import type { ItemInfo } from '../../lib/store/types.js';
import { directWorks, pageCacheBytes } from '../helpers/direct-io.js';
import { requires } from '../helpers/requires.js';
import { body, xattrHex, xattrText, listDir, openStore, sha256, tempDir, waitForEvent } from './helpers.js';

test('publish writes data/<hash>-<name> with upstream xattrs, logs PBLSH and emits added', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state, bootTime: () => '100' });
  assert.equal(store.metadataKind, 'xattr');
  const data = 'hello passim\n';
  const added = waitForEvent<[ItemInfo]>(store, 'added');
  const item = await store.publish(body(data), { basename: 'hello.txt', maxAge: 3600, shareLimit: 7, cmdline: 'dnf makecache' });
  const [ev] = await added;
  const hash = sha256(data);
  const path = join(state, 'data', `${hash}-hello.txt`);
  assert.equal(item.hash, hash);
  assert.equal(item.path, path);
  assert.equal(item.size, data.length);
  assert.deepEqual({ ...ev }, { ...item });
  assert.equal(await readFile(path, 'utf8'), data);
  // 3600 = 0x00000e10 and 7, as 4 little-endian bytes
  assert.equal(await xattrHex(path, 'user.max_age'), '100e0000');
  assert.equal(await xattrHex(path, 'user.share_limit'), '07000000');
  assert.equal(await xattrText(path, 'user.cmdline'), 'dnf makecache');
  assert.equal(await xattrHex(path, 'user.boot_time'), undefined);
  assert.deepEqual(await listDir(join(state, 'data')), [`${hash}-hello.txt`]);
  await store.close();
  const log = await readFile(join(state, 'log', 'audit.log'), 'utf8');
  assert.match(log, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z PBLSH hash=${hash},basename=hello.txt,size=13,cmdline=dnf makecache\\n$`));
});

test('defaults are 86400 and 5, written as upstream reads them', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state });
  const item = await store.publish(body('x'), { basename: 'x.bin' });
  assert.equal(item.maxAge, 86400);
  assert.equal(item.shareLimit, 5);
  assert.equal(await xattrHex(item.path, 'user.max_age'), '80510100');
  assert.equal(await xattrHex(item.path, 'user.share_limit'), '05000000');
});

test('publishing held content again is ItemExistsError and changes nothing', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state });
  const first = await store.publish(body('same'), { basename: 'a.txt' });
  await assert.rejects(store.publish(body('same'), { basename: 'b.txt' }), ItemExistsError);
  await assert.rejects(store.publish(body('other'), { basename: 'c.txt', expectedSha256: first.hash.toUpperCase() }), ItemExistsError);
  assert.deepEqual(await listDir(join(state, 'data')), [`${first.hash}-a.txt`]);
  assert.equal(store.list().length, 1);
});

test('expectedSha256 mismatch is ChecksumMismatchError and leaves nothing', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state });
  const err = await store.publish(body('abc'), { basename: 'a', expectedSha256: 'f'.repeat(64) }).catch((e) => e);
  assert.ok(err instanceof ChecksumMismatchError);
  assert.equal(err.actual, sha256('abc'));
  assert.deepEqual(await listDir(join(state, 'data')), []);
  const ok = await store.publish(body('abc'), { basename: 'a', expectedSha256: sha256('abc') });
  assert.equal(ok.hash, sha256('abc'));
});

test('MaxItemSize is enforced while streaming: TooLargeError, source not read to the end, data/ empty', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state, maxItemSize: 64 * 1024 });
  let produced = 0;
  const endless = Readable.from((function* () {
    for (;;) {
      produced += 16 * 1024;
      yield Buffer.alloc(16 * 1024, 1);
    }
  })());
  await assert.rejects(store.publish(endless, { basename: 'big.iso' }), TooLargeError);
  assert.ok(produced < 1024 * 1024, `read ${produced} bytes of an endless stream`);
  assert.deepEqual(await listDir(join(state, 'data')), []);
  assert.equal(store.list().length, 0);
  // exactly at the limit is fine
  const at = await store.publish(body(Buffer.alloc(64 * 1024, 2)), { basename: 'fits.bin' });
  assert.equal(at.size, 64 * 1024);
  endless.destroy();
});

test('bad names and options are usage errors and write nothing', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state });
  for (const basename of ['', '..', 'a/b', 'x\ny']) {
    await assert.rejects(store.publish(body('z'), { basename }), InvalidNameError);
  }
  await assert.rejects(store.publish(body('z'), { basename: 'z', maxAge: -1 }), UsageError);
  await assert.rejects(store.publish(body('z'), { basename: 'z', shareLimit: 1.5 }), UsageError);
  await assert.rejects(store.publish(body('z'), { basename: 'z', maxAge: 2 ** 32 }), UsageError);
  await assert.rejects(store.publish(body('z'), { basename: 'z', expectedSha256: 'nothex' }), UsageError);
  assert.deepEqual(await listDir(join(state, 'data')), []);
});

test('a failing source removes the temp file', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state });
  const failing = new Readable({
    read() {
      this.push(Buffer.alloc(1000));
      this.destroy(new Error('peer went away'));
    },
  });
  await assert.rejects(store.publish(failing, { basename: 'f' }), /peer went away/);
  assert.deepEqual(await listDir(join(state, 'data')), []);
});

test('a big source (size hint ≥ 8 MiB) is written by the worker: same bytes, hash and xattrs; errors leave nothing', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state, maxItemSize: 64 * 1024 * 1024 });
  const data = randomBytes(9 * 1024 * 1024 + 333); // ends off a block boundary
  const item = await store.publish(Readable.from(chunked(data, 65_536)), { basename: 'big.bin', shareLimit: 3 }, data.length);
  assert.equal(item.hash, sha256(data));
  assert.equal(item.size, data.length);
  if (!requires('fincore') && directWorks(join(state, 'data'))) {
    // written around the page cache (O_DIRECT), all but the odd tail (before anything reads it)
    assert.ok(pageCacheBytes(item.path) <= 4096, `${pageCacheBytes(item.path)} bytes of the item in the page cache`);
  }
  assert.ok((await readFile(item.path)).equals(data));
  assert.equal(await xattrHex(item.path, 'user.share_limit'), '03000000');
  assert.deepEqual(await listDir(join(state, 'data')), [`${item.hash}-big.bin`]);
  // a hint that lies low is no way past MaxItemSize: the bytes that arrive count
  const endless = Readable.from((function* () { for (;;) yield Buffer.alloc(1024 * 1024, 5); })());
  await assert.rejects(store.publish(endless, { basename: 'liar.bin' }, 10 * 1024 * 1024), TooLargeError);
  // a source failing mid-way leaves no temp file
  const failing = Readable.from((async function* () {
    yield* chunked(data.subarray(0, 4 * 1024 * 1024), 65_536);
    throw new Error('peer went away');
  })());
  await assert.rejects(store.publish(failing, { basename: 'f.bin' }, data.length), /peer went away/);
  assert.deepEqual(await listDir(join(state, 'data')), [`${item.hash}-big.bin`]);
  endless.destroy();
});

function* chunked(buf: Buffer, size: number): Generator<Buffer> {
  for (let off = 0; off < buf.length; off += size) yield buf.subarray(off, off + size);
}

test('concurrent publishes of the same bytes: exactly one wins', async (t) => {
  const state = await tempDir(t);
  const store = await openStore(t, { stateDir: state });
  const data = Buffer.alloc(300 * 1024, 9);
  const results = await Promise.allSettled([1, 2, 3, 4].map((n) => store.publish(body(data), { basename: `c${n}` })));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof ItemExistsError);
  assert.equal((await listDir(join(state, 'data'))).length, 1);
});

test('load removes temp files a crash left behind, ignores other dot files and stray names', async (t) => {
  const state = await tempDir(t);
  const data = join(state, 'data');
  await mkdir(data, { recursive: true });
  await writeFile(join(data, '.passim-tmp-0123456789abcdef'), 'half an item');
  await writeFile(join(data, `${sha256('half')}-notes.txt`.replace(/^/, '.passim-tmp-')), 'x');
  await writeFile(join(data, 'README'), 'not an item');
  await writeFile(join(data, '.keep'), '');
  const store = await openStore(t, { stateDir: state });
  assert.deepEqual(await listDir(data), ['.keep', 'README']);
  assert.equal(store.list().length, 0);
});
