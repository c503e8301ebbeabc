/** DirSync (lib/core/atomic-write.ts): directory fsyncs shared by the callers waiting together. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirSync } from '../../lib/core/atomic-write.js';

/** An fsync that finishes when the test says so, recording when each began. */
function manualFsync() {
  const started: Array<() => void> = [];
  return {
    started,
    fsync: () => new Promise<void>((resolve) => { started.push(resolve); }),
  };
}

test('callers during a running fsync share one more fsync, begun after they asked', async () => {
  const m = manualFsync();
  const ds = new DirSync('/nowhere', m.fsync);
  const order: string[] = [];
  const first = ds.sync().then(() => order.push('first'));
  assert.equal(m.started.length, 1);
  // ten callers arrive while it runs: what they renamed may not be covered by it
  const later = Array.from({ length: 10 }, (_, i) => ds.sync().then(() => order.push(`later${i}`)));
  assert.equal(m.started.length, 1, 'no second fsync while the first runs');
  m.started[0]!();
  await first;
  await new Promise((r) => setImmediate(r));
  assert.equal(m.started.length, 2, 'one more fsync for all ten');
  assert.deepEqual(order, ['first'], 'the ten wait for the fsync begun after they asked');
  m.started[1]!();
  await Promise.all(later);
  assert.equal(order.length, 11);
  // idle again: the next caller starts its own at once
  const next = ds.sync();
  assert.equal(m.started.length, 3);
  m.started[2]!();
  await next;
});

test('a failed fsync rejects its callers; the next one runs', async () => {
  let fail = true;
  const ds = new DirSync('/nowhere', async () => {
    if (fail) throw new Error('EIO');
  });
  await assert.rejects(ds.sync(), /EIO/);
  fail = false;
  await ds.sync();
});

test('the real fsync of a directory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'passim-dirsync-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new DirSync(dir);
  await Promise.all([ds.sync(), ds.sync(), ds.sync()]);
});
