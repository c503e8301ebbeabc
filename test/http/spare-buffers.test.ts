/** Read buffers are reused across responses: given back by a finished one, never by one cut short. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { SpareBuffers } from '../../lib/http/spare-buffers.js';
import { readBuffers } from '../../lib/http/serve-item.js';
import { fixture, getSettled, sha256, randomContent, PEER_ADDRESS } from './helpers.js';

test('SpareBuffers: a buffer given back is the next one taken; at most `keep` are held; other sizes are not kept', () => {
  const pool = new SpareBuffers(1024, 2);
  const a = pool.take();
  assert.equal(a.length, 1024);
  pool.give(a);
  assert.equal(pool.take(), a);
  const [x, y, z] = [pool.take(), pool.take(), pool.take()];
  pool.give(x);
  pool.give(y);
  pool.give(z);
  assert.equal(pool.held, 2);
  pool.give(Buffer.alloc(10));
  assert.equal(pool.held, 2);
  assert.notEqual(pool.take(), z);
});

test('a finished download gives its two read buffers back and the next reuses them; one cut short keeps them', async (t) => {
  const f = await fixture({ config: { cooldown: 0 } });
  t.after(() => f.close());
  const b = randomContent(3 * readBuffers.size);
  const it = await f.publish(b, { basename: 'b.bin', shareLimit: 100 });
  assert.equal(readBuffers.held, 0);
  for (let i = 0; i < 2; i++) {
    const r = await getSettled(f, f.peer, `${f.base}/b.bin?sha256=${it.hash}`);
    assert.equal(r.status, 200);
    assert.equal(sha256(r.body), it.hash);
    assert.equal(readBuffers.held, 2, `after download ${i + 1}`);
  }
  const big = await f.publish(randomContent(32 * 1024 * 1024), { basename: 'cut.bin', shareLimit: 100 });
  const done = f.settled((r) => r.peer === PEER_ADDRESS && r.url.includes(big.hash));
  const res = await request(`${f.base}/cut.bin?sha256=${big.hash}`, { dispatcher: f.peer });
  assert.equal(res.statusCode, 200);
  for await (const _chunk of res.body) break;
  assert.equal((await done).complete, false);
  assert.equal(readBuffers.held, 0, 'a write may still hold them: left to the GC');
});
