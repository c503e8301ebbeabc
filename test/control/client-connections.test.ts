/**
 * ControlClient's connections: requests share kept-alive connections (a batch publishes many
 * files), a request the daemon cut off on a connection it was closing is sent again on a new one,
 * and a bare stream, which cannot be sent twice, gets a connection of its own.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ControlClient } from '../../lib/control/client.js';
import { startHarness, tempDir } from './helpers.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface Seen { socket: number; nth: number; body: Buffer }

/**
 * A stand-in daemon that answers every POST with 201 and what it received. `onRequest` may cut a
 * request off instead (return true).
 */
async function fakeDaemon(t: TestContext, onRequest?: (seen: Seen, req: IncomingMessage, res: ServerResponse) => boolean) {
  const dir = await tempDir(t);
  const socketPath = join(dir, 'fake.sock');
  const seen: Seen[] = [];
  const ids = new Map<Socket, { id: number; n: number }>();
  const server = createServer((req, res) => {
    let s = ids.get(req.socket);
    if (!s) ids.set(req.socket, (s = { id: ids.size, n: 0 }));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec = { socket: s.id, nth: s.n++, body: Buffer.concat(chunks) };
      if (onRequest?.(rec, req, res)) return;
      seen.push(rec);
      const text = JSON.stringify({ hash: sha(rec.body), size: rec.body.length });
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  t.after(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return { socketPath, seen, connections: () => ids.size };
}

test('many publishes of bytes share a few kept-alive connections, each body intact', async (t) => {
  const d = await fakeDaemon(t);
  const client = new ControlClient(d.socketPath);
  t.after(() => client.destroy());
  const bodies = Array.from({ length: 40 }, (_, i) => Buffer.alloc(1000 + i, i));
  for (let round = 0; round < 4; round++) {
    await Promise.all(bodies.slice(round * 10, round * 10 + 10).map((b, i) => client.publish(b, { name: `f${round}-${i}` })));
  }
  assert.equal(d.seen.length, 40);
  assert.deepEqual(new Set(d.seen.map((s) => sha(s.body))), new Set(bodies.map((b) => sha(b))));
  assert.ok(d.connections() <= 10, `40 requests, 10 at a time, over ${d.connections()} connections`);
  assert.ok(d.seen.some((s) => s.nth > 0), 'a connection carried more than one request');
});

test('a request cut off on a kept-alive connection is sent again on a new one (bytes, path, stream factory)', async (t) => {
  // the daemon drops the second request of every connection without a reply, as if it had
  // closed the idle connection just as the request went out
  const d = await fakeDaemon(t, (s, req) => {
    if (s.nth === 0) return false;
    req.socket.destroy();
    return true;
  });
  const dir = await tempDir(t);
  const file = join(dir, 'file.bin');
  await writeFile(file, Buffer.alloc(5000, 7));
  const client = new ControlClient(d.socketPath);
  t.after(() => client.destroy());

  await client.publish(Buffer.from('first'), { name: 'a' });
  await client.publish(Buffer.from('second'), { name: 'b' });
  await client.publish(file, { name: 'c' });
  await client.publish(() => Readable.from([Buffer.from('fourth')]), { name: 'd', size: 6 });
  assert.deepEqual(d.seen.map((s) => s.body.toString('latin1').slice(0, 6)), ['first', 'second', '\x07'.repeat(6), 'fourth']);
  assert.ok(d.seen.every((s) => s.nth === 0), 'each answered request was the first on its connection');
});

test('a bare stream is sent on a connection of its own, never retried', async (t) => {
  const d = await fakeDaemon(t);
  const client = new ControlClient(d.socketPath);
  t.after(() => client.destroy());
  await client.publish(Buffer.from('warm up'), { name: 'a' });
  await client.publish(Readable.from([Buffer.from('streamed')]), { name: 'b' });
  assert.equal(d.seen[1]!.body.toString(), 'streamed');
  assert.equal(d.seen[1]!.nth, 0, 'a new connection');
});

test('real daemon: 30 concurrent publishes of bytes all land in the store', async (t) => {
  const h = await startHarness(t);
  const client = new ControlClient(h.socketPath);
  t.after(() => client.close());
  const bodies = Array.from({ length: 30 }, (_, i) => Buffer.from(`item ${i} `.repeat(100 + i)));
  const items = await Promise.all(bodies.map((b, i) => client.publish(b, { name: `item${i}.bin`, sha256: sha(b) })));
  assert.deepEqual(items.map((i) => i.hash), bodies.map((b) => sha(b)));
  assert.equal(h.store.list().length, 30);
});
