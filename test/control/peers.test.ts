/** POST /peers on a real control socket: the contract of api.ts, good and bad bodies. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Client } from 'undici';
import { ControlClient } from '../../lib/control/client.js';
import { startControlServer } from '../../lib/control/server.js';
import { MAX_PEERS_HASHES, type PeersReply } from '../../lib/control/api.js';
import { InvalidHashError, UsageError } from '../../lib/core/errors.js';
import { Store } from '../../lib/store/store.js';
import { statusOf, tempDir } from './helpers.js';

const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(63) + 'c';

async function start(t: import('node:test').TestContext, peers?: (hashes: string[]) => PeersReply) {
  const dir = await tempDir(t);
  const store = new Store({ stateDir: join(dir, 'state') });
  await store.load();
  const socketPath = join(dir, 'p.sock');
  const asked: string[][] = [];
  const server = await startControlServer({
    socketPath,
    store,
    status: () => statusOf(store),
    peers: peers && ((hashes) => {
      asked.push(hashes);
      return peers(hashes);
    }),
  });
  t.after(async () => {
    await server.close();
    await store.close();
  });
  return { socketPath, asked };
}

async function raw(socketPath: string, method: string, body?: string, path = '/peers') {
  const c = new Client('http://localhost', { socketPath });
  try {
    const res = await c.request({ method: method as 'POST', path, body });
    const text = await res.body.text();
    return { status: res.statusCode, json: JSON.parse(text) as PeersReply & { error?: { code: string; message: string } } };
  } finally {
    await c.close();
  }
}

const peerA = { address: '10.98.0.1', port: 27500, instance: 'Passim-AAAA', host: 'a.local' };

test('POST /peers answers what the cache knows, asked with normalised, de-duplicated hashes', async (t) => {
  let alone = false;
  const { socketPath, asked } = await start(t, (hashes) => ({ peers: hashes.includes(H1) ? { [H1]: [peerA] } : {}, alone }));
  const client = new ControlClient(socketPath);
  t.after(() => client.close());
  const reply = await client.peers([H1.toUpperCase(), H2, H1]);
  assert.deepEqual(reply, { peers: { [H1]: [peerA] }, alone: false });
  assert.deepEqual(asked, [[H1, H2]]);
  alone = true;
  assert.deepEqual(await client.peers([]), { peers: {}, alone: true }, 'and whether the daemon hears anyone else');
});

test('POST /peers: a bad body is a usage error (400) and the cache is not asked', async (t) => {
  const { socketPath, asked } = await start(t, () => ({ peers: {} }));
  for (const body of ['', 'not json', '[]', 'null', '{}', '{"hashes":"x"}', '{"hashes":[1]}', '{"hashes":[null]}']) {
    const r = await raw(socketPath, 'POST', body);
    assert.equal(r.status, 400, body);
    assert.equal(r.json.error?.code, 'PASSIM_USAGE', body);
  }
  const bad = await raw(socketPath, 'POST', JSON.stringify({ hashes: [H1, 'abc'] }));
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error?.code, 'PASSIM_INVALID_HASH');
  const many = await raw(socketPath, 'POST', JSON.stringify({ hashes: Array.from({ length: MAX_PEERS_HASHES + 1 }, () => H1) }));
  assert.equal(many.status, 400);
  assert.match(many.json.error!.message, /at most 4096/);
  const huge = await raw(socketPath, 'POST', JSON.stringify({ hashes: [H1], pad: 'x'.repeat(1024 * 1024) }));
  assert.equal(huge.status, 400);
  assert.match(huge.json.error!.message, /larger than/);
  const query = await raw(socketPath, 'POST', JSON.stringify({ hashes: [H1] }), '/peers?x=1');
  assert.equal(query.status, 400);
  assert.deepEqual(asked, [], 'no bad request reached the cache');

  const client = new ControlClient(socketPath);
  t.after(() => client.close());
  await assert.rejects(client.peers(['nope']), InvalidHashError);
  await assert.rejects(client.peers(Array.from({ length: MAX_PEERS_HASHES + 1 }, () => H2)), UsageError);
  // exactly the limit is fine
  assert.deepEqual(await client.peers(Array.from({ length: MAX_PEERS_HASHES }, () => H2)), { peers: {} });
});

test('POST /peers: other methods 405; a daemon without a peer cache answers 501', async (t) => {
  const withCache = await start(t, () => ({}));
  assert.equal((await raw(withCache.socketPath, 'GET')).status, 405);
  const without = await start(t);
  const r = await raw(without.socketPath, 'POST', JSON.stringify({ hashes: [H1] }));
  assert.equal(r.status, 501);
});
