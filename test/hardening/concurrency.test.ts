/**
 * 50 peers (source addresses 127.0.0.10–127.0.0.59) fetch one item with share-limit 5 at once:
 * exactly 5 complete 200 downloads with the right bytes, the rest 403/404/503, the item deleted
 * exactly once ('removed' events, DELTE lines), 5 SHARE lines, and no file descriptor left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { fixture, get, content, openFds, auditLines, type Reply } from './helpers.js';
import type { RequestRecord } from '../../lib/http/server.js';
import type { RemoveReason } from '../../lib/store/types.js';

const PEERS = Array.from({ length: 50 }, (_, i) => `127.0.0.${10 + i}`);

/** descriptors of this process that point into dir */
function fdsInto(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // closed meanwhile (the readdir's own descriptor)
    }
  }
  return out;
}

async function round(shareLimit: number, size: number, over: { maxUploads?: number; maxUploadsPerPeer?: number }) {
  // warm-up: whatever the first TLS server / store opens lazily once and keeps is not a leak
  const warm = await fixture();
  await warm.close();
  const fdsBefore = openFds();

  let done!: () => void;
  const allSettled = new Promise<void>((resolve) => (done = resolve));
  const records: RequestRecord[] = [];
  const f = await fixture({
    config: { cooldown: 3600, ...over },
    onRequestDone: (r) => {
      records.push(r);
      if (records.length === PEERS.length) done();
    },
  });
  const bytes = content(size, 42);
  const item = await f.publish(bytes, { basename: 'fw.cab', shareLimit });
  const removed: Array<[string, RemoveReason]> = [];
  f.store.on('removed', (it, why) => removed.push([it.hash, why]));

  const url = `${f.base}/fw.cab?sha256=${item.hash}`;
  const replies = await Promise.all(
    PEERS.map((p) => get(f.agent(p), url).catch((e: Error): Reply => ({ status: -1, headers: {}, body: Buffer.from(e.message) }))),
  );
  await allSettled;
  const inDataDir = fdsInto(f.dataDir);

  const statuses = new Map<number, number>();
  for (const r of replies) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
  const ok = replies.filter((r) => r.status === 200);
  const shareLines = await auditLines(f.dir, 'SHARE', item.hash);
  const delteLines = await auditLines(f.dir, 'DELTE', item.hash);

  await f.close();
  const fdsAfter = openFds();
  return { item, bytes, replies, ok, statuses, removed, shareLines, delteLines, inDataDir, fdsBefore, fdsAfter, records };
}

for (const [label, size, over] of [
  ['default limits (MaxUploads 16, 2 per peer)', 4 * 1024 * 1024, {}],
  ['MaxUploads 64: every request reaches the share check', 1024 * 1024, { maxUploads: 64 }],
] as const) {
  test(`50 peers at once, share-limit 5, ${label}: exactly 5 downloads, deleted once, no fd leak`, async (t) => {
    const r = await round(5, size, over);
    t.diagnostic(`statuses ${[...r.statuses].sort().map(([k, v]) => `${k}:${v}`).join(' ')}; removed events ${r.removed.length}; SHARE ${r.shareLines.length}, DELTE ${r.delteLines.length}; fds ${r.fdsBefore} → ${r.fdsAfter}`);
    assert.equal(r.replies.length, 50);
    assert.equal(r.ok.length, 5, 'exactly 5 complete downloads');
    for (const x of r.ok) assert.ok(x.body.equals(r.bytes), 'the right bytes');
    for (const x of r.replies) if (x.status !== 200) assert.ok([403, 404, 503].includes(x.status), `status ${x.status}`);
    assert.deepEqual(r.removed, [[r.item.hash, 'share-limit']], 'removed exactly once, for its share-limit');
    assert.equal(r.delteLines.length, 1, 'one DELTE line');
    assert.equal(r.shareLines.length, 5, 'five SHARE lines');
    assert.equal(r.records.filter((x) => x.status === 200 && x.complete).length, 5);
    assert.deepEqual(r.inDataDir, [], 'no descriptor into the data dir once every request settled');
    assert.equal(r.fdsAfter, r.fdsBefore, 'as many descriptors open as before the server started');
  });
}
