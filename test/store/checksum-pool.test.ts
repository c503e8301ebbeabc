/**
 * The static-dir checksum workers (lib/store/checksum-pool.ts): the same hashes as the store's own
 * hashing, the xattr cache written and then used without reading the file, big files not holding
 * up small ones, and no thread left once idle.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import { HASH_CHUNK, sha256File } from '../../lib/core/sha256.js';
import { ChecksumPool } from '../../lib/store/checksum-pool.js';
import { XATTR_CHECKSUM, XATTR_CHECKSUM_STAT } from '../../lib/store/static-checksum.js';
import { defer, sha256, tempDir } from './helpers.js';

async function stampOf(path: string) {
  const st = await stat(path, { bigint: true });
  return { size: Number(st.size), mtimeNs: st.mtimeNs.toString() };
}

const xattrText = (path: string, name: string) => getAttributeSync(path, name)?.toString('utf8');

test('worker hashes equal sha256File for every size around the read chunk; the xattr cache is written', async (t) => {
  const dir = await tempDir(t);
  const pool = new ChecksumPool({ idleMs: 50 });
  defer(t, () => pool.close());
  const sizes = [0, 1, 4096, HASH_CHUNK - 1, HASH_CHUNK, HASH_CHUNK + 1, 3 * HASH_CHUNK + 17];
  const files = await Promise.all(sizes.map(async (n, i) => {
    const path = join(dir, `f${i}`);
    await writeFile(path, randomBytes(n));
    return path;
  }));
  const got = await Promise.all(files.map(async (f) => pool.checksum(f, await stampOf(f))));
  for (const [i, f] of files.entries()) {
    const own = await sha256File(f);
    assert.equal(got[i]!.sha256, own.sha256, `size ${sizes[i]}`);
    assert.equal(got[i]!.cached, false);
    assert.equal(xattrText(f, XATTR_CHECKSUM), own.sha256);
    const s = await stampOf(f);
    assert.equal(xattrText(f, XATTR_CHECKSUM_STAT), `${s.size}:${s.mtimeNs}`);
  }
  assert.deepEqual(pool.stats, { hashed: sizes.length, cached: 0 });
  assert.equal(pool.pending, 0);
});

test('a cached checksum with a matching stamp is used without reading the file; a stale one is not', async (t) => {
  const dir = await tempDir(t);
  const pool = new ChecksumPool({ idleMs: 50 });
  defer(t, () => pool.close());
  const f = join(dir, 'cached.bin');
  await writeFile(f, 'content');
  const first = await pool.checksum(f, await stampOf(f));
  assert.equal(first.sha256, sha256('content'));
  // plant a value the bytes cannot have: only a cache read can return it
  const planted = 'ab'.repeat(32);
  setAttributeSync(f, XATTR_CHECKSUM, planted);
  assert.deepEqual(await pool.checksum(f, await stampOf(f)), { sha256: planted, cached: true });
  // the file changes (size and mtime): hashed again, cache rewritten
  await writeFile(f, 'changed content');
  const again = await pool.checksum(f, await stampOf(f));
  assert.deepEqual(again, { sha256: sha256('changed content'), cached: false });
  assert.equal(xattrText(f, XATTR_CHECKSUM), sha256('changed content'));
  assert.deepEqual(pool.stats, { hashed: 2, cached: 1 });
});

test('a missing file rejects with its errno code; the pool goes on', async (t) => {
  const dir = await tempDir(t);
  const pool = new ChecksumPool({ idleMs: 50 });
  defer(t, () => pool.close());
  await assert.rejects(pool.checksum(join(dir, 'gone'), { size: 1, mtimeNs: '1' }), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
  const ok = join(dir, 'ok');
  await writeFile(ok, 'ok');
  assert.equal((await pool.checksum(ok, await stampOf(ok))).sha256, sha256('ok'));
});

test('small files are answered while a big one is still being hashed', async (t) => {
  const dir = await tempDir(t);
  const pool = new ChecksumPool({ size: 2, idleMs: 50 });
  defer(t, () => pool.close());
  // sparse: costs no disk, but its 16 GiB of zeros take seconds to hash
  const big = join(dir, 'big.img');
  await writeFile(big, '');
  await truncate(big, 16 * 1024 ** 3);
  let bigDone = false;
  const bigHash = pool.checksum(big, await stampOf(big)).then(() => { bigDone = true; }, () => { bigDone = true; });
  const smalls = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
    const f = join(dir, `s${i}`);
    await writeFile(f, `small ${i}`);
    return f;
  }));
  const hashes = await Promise.all(smalls.map(async (f) => (await pool.checksum(f, await stampOf(f))).sha256));
  assert.deepEqual(hashes, smalls.map((_, i) => sha256(`small ${i}`)));
  assert.equal(bigDone, false, 'the 16 GiB file is still being hashed');
  assert.equal(pool.pending, 1);
  await pool.close(); // abandons it
  await bigHash;
});

/**
 * A pool that has hashed one file (so a worker is up), `end` to make its workers go, then the
 * checks that none is left and that new work starts one again.
 */
async function workersEnd(t: TestContext, idleMs: number, end: (pool: ChecksumPool) => Promise<void> | void): Promise<void> {
  const dir = await tempDir(t);
  const pool = new ChecksumPool({ idleMs });
  defer(t, () => pool.close());
  const f = join(dir, 'f');
  await writeFile(f, 'x');
  await pool.checksum(f, await stampOf(f));
  assert.ok(pool.threads >= 1);
  await end(pool);
  assert.equal(pool.threads, 0, 'no worker thread left');
  await writeFile(f, 'y');
  assert.equal((await pool.checksum(f, await stampOf(f))).sha256, sha256('y'), 'a new one starts for new work');
}

test('workers end when idle and start again for new work', async (t) => {
  await workersEnd(t, 20, async (pool) => {
    const deadline = Date.now() + 10_000;
    while (pool.threads > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  });
});

test('retireIdle() ends idle workers at once (a scan is over), without waiting for their idle time', async (t) => {
  await workersEnd(t, 60_000, (pool) => pool.retireIdle());
});
