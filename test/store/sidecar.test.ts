import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, readFile, mkdtemp, rmdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../lib/store/store.js';
import { dirSupportsUserXattrs } from '../../lib/store/metadata-backend.js';
import { body, defer, xattrHex, listDir, openStore, sha256, tempDir } from './helpers.js';
import { requires, requiresRoot } from '../helpers/requires.js';

test('this temp dir takes user xattrs (so the xattr tests test xattrs)', async (t) => {
  const dir = await tempDir(t);
  assert.equal(await dirSupportsUserXattrs(dir), true);
});

async function sidecarRoundTrip(t: import('node:test').TestContext, state: string, metadata?: 'sidecar') {
  const clock = { now: 1_800_000_000_000 };
  const a = new Store({ stateDir: state, metadata, now: () => clock.now, bootTime: () => '7' });
  await a.load();
  assert.equal(a.metadataKind, 'sidecar');
  const item = await a.publish(body('side'), { basename: 'side.car', maxAge: 120, shareLimit: 9, cmdline: 'apt', nextReboot: true });
  assert.equal(await xattrHex(item.path, 'user.max_age'), undefined, 'no xattrs in sidecar mode');
  const meta = JSON.parse(await readFile(join(state, 'data', '.meta', `${item.hash}.json`), 'utf8'));
  assert.deepEqual(meta, { maxAge: 120, shareLimit: 9, cmdline: 'apt', bootTime: '7', created: clock.now });
  await a.recordShare(item.hash, '192.0.2.3', 4);
  await a.close();

  const b = new Store({ stateDir: state, metadata, now: () => clock.now, bootTime: () => '8' });
  defer(t, () => b.close());
  await b.load();
  const again = b.get(item.hash);
  assert.deepEqual(
    again && { maxAge: again.maxAge, shareLimit: again.shareLimit, cmdline: again.cmdline, created: again.created, shareCount: again.shareCount, disabled: again.disabled, nextReboot: again.nextReboot },
    { maxAge: 120, shareLimit: 9, cmdline: 'apt', created: clock.now, shareCount: 1, disabled: false, nextReboot: true },
  );
  clock.now += 121_000;
  await b.expire();
  assert.equal(existsSync(join(state, 'data', '.meta', `${item.hash}.json`)), false, 'sidecar goes with its item');
  assert.deepEqual(await listDir(join(state, 'data')), ['.meta']);
}

test('forced sidecar metadata: written, reloaded, removed with the item', async (t) => {
  await sidecarRoundTrip(t, await tempDir(t), 'sidecar');
});

test('orphaned sidecars and sidecar temp files are cleaned at load', async (t) => {
  const state = await tempDir(t);
  const meta = join(state, 'data', '.meta');
  await mkdir(meta, { recursive: true });
  await writeFile(join(meta, `${'a'.repeat(64)}.json`), '{}');
  await writeFile(join(meta, '.tmp-x.json-123'), '{');
  const h = sha256('kept');
  await writeFile(join(state, 'data', `${h}-kept`), 'kept');
  await writeFile(join(meta, `${h}.json`), 'not json');
  const store = await openStore(t, { stateDir: state, metadata: 'sidecar' });
  assert.deepEqual(await listDir(meta), [`${h}.json`]);
  assert.equal(store.get(h)?.maxAge, 86400, 'unreadable sidecar → defaults');
});

/** A real filesystem without user xattrs: ramfs (needs root and mount). */
async function ramfs(t: import('node:test').TestContext): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'passim-ramfs-'));
  try {
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', dir], { stdio: 'ignore' });
  } catch {
    await rmdir(dir);
    return undefined;
  }
  defer(t, async () => {
    execFileSync('umount', [dir]);
    await rmdir(dir);
  });
  return dir;
}

/** mounting ramfs needs root and mount(8) */
const NO_MOUNT = requiresRoot('mounting a ramfs') || requires('mount');

test('on a filesystem without user xattrs the store falls back to the sidecar by itself', { skip: NO_MOUNT }, async (t) => {
  const dir = await ramfs(t);
  if (!dir) return t.skip('mount -t ramfs fails here');
  assert.equal(await dirSupportsUserXattrs(dir), false);
  await sidecarRoundTrip(t, join(dir, 'state'));
});

test('static dirs on a filesystem without xattrs are hashed without the cache', { skip: NO_MOUNT }, async (t) => {
  const dir = await ramfs(t);
  if (!dir) return t.skip('mount -t ramfs fails here');
  await mkdir(join(dir, 'etc', 'passim.d'), { recursive: true });
  await mkdir(join(dir, 'shared'));
  await writeFile(join(dir, 'etc', 'passim.d', 'a.conf'), `[passim]\nPath=${join(dir, 'shared')}\n`);
  await writeFile(join(dir, 'shared', 'f'), 'ramfs file');
  const store = await openStore(t, { stateDir: join(dir, 'state'), configDir: join(dir, 'etc') });
  assert.deepEqual(store.list().map((i) => i.hash), [sha256('ramfs file')]);
  await writeFile(join(dir, 'shared', 'f'), 'ramfs file 2');
  await store.rescanStatic();
  assert.deepEqual(store.list().map((i) => i.hash), [sha256('ramfs file 2')]);
});
