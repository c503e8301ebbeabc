/**
 * MaxUploads (total) and MaxUploadsPerPeer: an upload over either limit gets 503 + Retry-After
 * (and the error page), loopback is never limited, and every slot comes back when uploads end.
 * Distinct 127.0.0.x source addresses play distinct peers (only 127.0.0.1 counts as loopback).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type Dispatcher } from 'undici';
import { fixture, get, content, sha256, RawConnection, type Fixture } from './helpers.js';
import type { ItemInfo } from '../../lib/store/types.js';

let parked = 0;

/** a download whose headers arrived and whose body is left unread: the upload stays in progress */
async function park(f: Fixture, from: string, item: ItemInfo): Promise<{ status: number; release(): Promise<void> }> {
  const url = `/big.iso?sha256=${item.hash}&from=${from}&n=${++parked}`;
  // waiting for its record from the start: it is settled whenever it ends
  const done = f.settled((rec) => rec.url === url);
  const r: Dispatcher.ResponseData = await request(`${f.base}${url}`, { dispatcher: f.agent(from) });
  return {
    status: r.statusCode,
    async release() {
      r.body.destroy();
      const rec = await done;
      assert.equal(rec.complete, false, 'the upload was still in progress when released');
    },
  };
}

test('MaxUploads total and per peer → 503 + Retry-After; loopback unlimited; slots come back', async (t) => {
  const f = await fixture({ config: { cooldown: 0, maxUploads: 3, maxUploadsPerPeer: 2 }, retryAfter: 7 });
  t.after(() => f.close());
  const big = await f.publish(content(32 * 1024 * 1024, 5), { basename: 'big.iso', shareLimit: 100 });
  const smallBytes = content(1000, 6);
  const small = await f.publish(smallBytes, { basename: 'small.txt', shareLimit: 100 });
  const smallUrl = `${f.base}/small.txt?sha256=${small.hash}`;
  let refused = 0;
  const expect503 = async (from: string, why: string) => {
    const r = await get(f.agent(from), smallUrl);
    assert.equal(r.status, 503, why);
    assert.equal(r.headers['retry-after'], '7', 'Retry-After');
    assert.match(r.body.toString(), /^<html><head><title>503 Service Unavailable<\/title><\/head><body>[^<]+<\/body><\/html>$/);
    refused++;
  };

  // peer A takes its two slots
  const a1 = await park(f, '127.0.0.20', big);
  const a2 = await park(f, '127.0.0.20', big);
  assert.deepEqual([a1.status, a2.status], [200, 200]);
  await expect503('127.0.0.20', 'per-peer limit (2)');
  // peer B takes the last slot of the total
  const b1 = await park(f, '127.0.0.21', big);
  assert.equal(b1.status, 200);
  await expect503('127.0.0.22', 'total limit (3), for a peer with no upload at all');
  await expect503('127.0.0.21', 'total limit (3)');
  // loopback is not limited
  const local = await get(f.agent('127.0.0.1'), smallUrl);
  assert.equal(local.status, 200);
  assert.ok(local.body.equals(smallBytes));

  // one of A's uploads ends: C gets the free slot; then A may start another
  await a1.release();
  // (its slot is given back once the server has settled it, a moment after the client has the bytes)
  const cSettled = f.settled((rec) => rec.peer === '127.0.0.22' && rec.status === 200);
  const c = await get(f.agent('127.0.0.22'), smallUrl);
  assert.equal(c.status, 200);
  await cSettled;
  assert.equal(sha256(c.body), small.hash);
  const a3 = await park(f, '127.0.0.20', big);
  assert.equal(a3.status, 200, 'A has a slot again');
  await expect503('127.0.0.23', 'total full again');

  // every upload ends: all three slots come back, for three new peers at once
  await Promise.all([a2.release(), a3.release(), b1.release()]);
  const again = await Promise.all(['127.0.0.30', '127.0.0.31', '127.0.0.32'].map((p) => park(f, p, big)));
  assert.deepEqual(again.map((x) => x.status), [200, 200, 200]);
  await expect503('127.0.0.33', 'total full');
  await Promise.all(again.map((x) => x.release()));
  // cut uploads never count as shares
  assert.equal(f.store.get(big.hash)?.shareCount, 0);
  t.diagnostic(`${refused} uploads refused with 503, 0 slots leaked`);
});

test('MaxUploadsPerPeer 1: back-to-back downloads by one peer never see a 503 (the slot is free once the bytes are out)', async (t) => {
  const f = await fixture({ config: { cooldown: 0, maxUploads: 4, maxUploadsPerPeer: 1 } });
  t.after(() => f.close());
  const bytes = content(2000, 8);
  const item = await f.publish(bytes, { basename: 'meta.xml', shareLimit: 1000 });
  const conn = await RawConnection.open(f.port, '127.0.0.40');
  t.after(() => conn.destroy());
  const statuses = new Map<number, number>();
  const N = 200;
  for (let i = 0; i < N; i++) {
    conn.write(`GET /meta.xml?sha256=${item.hash}&i=${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const r = await conn.readResponse('GET', 5000);
    assert.ok(typeof r === 'object', `response ${i}: ${String(r)}`);
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    if (r.status === 200) assert.ok(r.body.equals(bytes));
  }
  t.diagnostic(`${N} back-to-back downloads: ${[...statuses].map(([k, v]) => `${k}:${v}`).join(' ')}`);
  assert.deepEqual([...statuses], [[200, N]]);
});
