/**
 * Slowloris and friends: clients that drip headers, connect and say nothing, never finish the TLS
 * handshake, or read the body at a trickle are each cut off by the server's timeouts (shortened
 * here through the `limits` option), while a normal request is served in the meantime.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnectRaw } from 'node:tls';
import { once } from 'node:events';
import { fixture, get, content, sha256, tlsConnect, RawConnection, type Fixture } from './helpers.js';
import type { ItemInfo } from '../../lib/store/types.js';

const LIMITS = {
  headersTimeout: 800,
  requestTimeout: 1600,
  connectionsCheckingInterval: 100,
  handshakeTimeout: 800,
  socketTimeout: 1000,
  keepAliveTimeout: 500,
};

/** a normal download from a peer address that must succeed while a bad client is connected */
async function normalRequest(f: Fixture, item: ItemInfo, bytes: Buffer, from: string): Promise<number> {
  const t0 = performance.now();
  const r = await get(f.agent(from), `${f.base}/${encodeURIComponent(item.basename)}?sha256=${item.hash}`);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(bytes), 'right bytes');
  return performance.now() - t0;
}

async function setup(t: { after(fn: () => Promise<void>): void }, over: Parameters<typeof fixture>[0] = {}) {
  const f = await fixture({ limits: LIMITS, config: { cooldown: 0, maxUploadsPerPeer: 8 }, ...over });
  t.after(() => f.close());
  const bytes = content(64 * 1024, 7);
  const item = await f.publish(bytes, { basename: 'small.bin', shareLimit: 1000 });
  return { f, bytes, item };
}

function elapsedUntilClosed(sock: Socket): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => sock.once('close', () => resolve(performance.now() - t0)));
}

test('slowloris: headers dripped 1 byte per 100 ms are cut off by headersTimeout', async (t) => {
  const { f, bytes, item } = await setup(t);
  const raw = await RawConnection.open(f.port, '127.0.0.2');
  const closedIn = elapsedUntilClosed(raw.socket);
  raw.write(`GET /small.bin?sha256=${item.hash} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `);
  let dripped = 0;
  const drip = setInterval(() => {
    raw.write('a');
    dripped++;
  }, 100);
  t.after(() => clearInterval(drip));
  // meanwhile: a normal client is served, several times, before the drip is cut
  for (let i = 0; i < 3; i++) await normalRequest(f, item, bytes, '127.0.0.3');
  assert.equal(raw.isEnded, false, 'the drip is still connected while the normal requests were served');
  const ms = await closedIn;
  clearInterval(drip);
  t.diagnostic(`drip cut after ${Math.round(ms)} ms, ${dripped} bytes dripped`);
  assert.ok(ms >= LIMITS.headersTimeout - 50, `not before headersTimeout (${ms} ms)`);
  assert.ok(ms < LIMITS.headersTimeout + 1500, `cut within headersTimeout + slack (${ms} ms)`);
  // the handler never ran for it
  assert.equal(f.records.filter((r) => r.peer === '127.0.0.2').length, 0);
});

test('a connection that completes TLS and never sends a byte is closed by the header timeout', async (t) => {
  // socketTimeout far away: it is the header timeout that must cut it
  const { f, bytes, item } = await setup(t, { limits: { ...LIMITS, socketTimeout: 60_000 } });
  const sock = await tlsConnect(f.port, '127.0.0.2');
  sock.on('error', () => {});
  const closedIn = elapsedUntilClosed(sock);
  let got = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
  await normalRequest(f, item, bytes, '127.0.0.3');
  assert.equal(sock.destroyed, false);
  const ms = await closedIn;
  t.diagnostic(`silent connection closed after ${Math.round(ms)} ms; server sent ${JSON.stringify(got.toString('latin1').split('\r\n')[0])}`);
  assert.ok(ms < LIMITS.headersTimeout + 1500, `closed within headersTimeout + slack (${ms} ms)`);
  // when the server says anything, it is a 408
  if (got.length) assert.match(got.toString('latin1'), /^HTTP\/1\.1 408 /);
});

test('an idle keep-alive connection is closed after keepAliveTimeout', async (t) => {
  const { f, item } = await setup(t, { limits: { ...LIMITS, socketTimeout: 60_000, headersTimeout: 30_000, requestTimeout: 60_000 } });
  const raw = await RawConnection.open(f.port, '127.0.0.2');
  raw.write(`GET /small.bin?sha256=${item.hash} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const r = await raw.readResponse('GET', 5000);
  assert.ok(typeof r === 'object' && r.status === 200);
  const t0 = performance.now();
  await raw.closed;
  const ms = performance.now() - t0;
  t.diagnostic(`idle keep-alive closed after ${Math.round(ms)} ms`);
  assert.ok(ms < LIMITS.keepAliveTimeout + 1500, `closed within keepAliveTimeout + slack (${ms} ms)`);
});

test('a TLS handshake that never finishes is cut by handshakeTimeout (silent, and half a ClientHello)', async (t) => {
  const { f, bytes, item } = await setup(t, { limits: { ...LIMITS, socketTimeout: 60_000, headersTimeout: 30_000, requestTimeout: 60_000 } });
  // 1: TCP only, nothing sent
  const silent = netConnect({ host: '127.0.0.1', port: f.port, localAddress: '127.0.0.2' });
  silent.on('error', () => {});
  await once(silent, 'connect');
  const silentClosed = elapsedUntilClosed(silent);
  // 2: the first bytes of a real ClientHello, then nothing: capture one from a real client
  const hello = await captureClientHello();
  const half = netConnect({ host: '127.0.0.1', port: f.port, localAddress: '127.0.0.4' });
  half.on('error', () => {});
  await once(half, 'connect');
  const halfClosed = elapsedUntilClosed(half);
  half.write(hello.subarray(0, Math.floor(hello.length / 2)));
  await normalRequest(f, item, bytes, '127.0.0.3');
  assert.equal(silent.destroyed || half.destroyed, false, 'both still connected while the normal request was served');
  const [a, b] = await Promise.all([silentClosed, halfClosed]);
  t.diagnostic(`silent TCP closed after ${Math.round(a)} ms, half ClientHello after ${Math.round(b)} ms`);
  for (const ms of [a, b]) {
    assert.ok(ms >= LIMITS.handshakeTimeout - 50 && ms < LIMITS.handshakeTimeout + 1500, `handshake timeout (${ms} ms)`);
  }
});

/** the bytes a real TLS client sends first (a ClientHello), read by a plain TCP server */
async function captureClientHello(): Promise<Buffer> {
  const { createServer } = await import('node:net');
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  const got = new Promise<Buffer>((resolve) => srv.once('connection', (s) => s.once('data', (d: Buffer) => {
    resolve(d);
    s.destroy();
  })));
  const c = tlsConnectRaw({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' });
  c.on('error', () => {});
  const hello = await got;
  c.destroy();
  srv.close();
  return hello;
}

test('a peer that reads the body at a trickle is cut off by the socket timeout; its upload slot and share come back', async (t) => {
  const { f, bytes, item } = await setup(t, { config: { cooldown: 0, maxUploads: 4, maxUploadsPerPeer: 1 } });
  const big = content(32 * 1024 * 1024, 11);
  const bigItem = await f.publish(big, { basename: 'big.iso', shareLimit: 1 });
  const cut = f.settled((r) => r.url.includes(bigItem.hash));
  const sock = await tlsConnect(f.port, '127.0.0.2');
  sock.on('error', () => {});
  sock.pause();
  sock.write(`GET /big.iso?sha256=${bigItem.hash} HTTP/1.1\r\nHost: x\r\n\r\n`);
  let received = 0;
  // 1 KiB every 100 ms: ~10 KiB/s
  const trickle = setInterval(() => {
    const chunk = sock.read(1024) as Buffer | null;
    if (chunk) received += chunk.length;
  }, 100);
  t.after(() => {
    clearInterval(trickle);
    sock.destroy();
  });
  const t0 = performance.now();
  // while it trickles, the same peer may not start a second upload (MaxUploadsPerPeer=1) ...
  const busy = await get(f.agent('127.0.0.2'), `${f.base}/small.bin?sha256=${item.hash}`);
  assert.equal(busy.status, 503);
  // ... but other peers are served
  await normalRequest(f, item, bytes, '127.0.0.3');
  const rec = await cut;
  const ms = performance.now() - t0;
  t.diagnostic(`trickle reader cut after ${Math.round(ms)} ms having read ${received} of ${big.length} bytes`);
  assert.equal(rec.status, 200);
  assert.equal(rec.complete, false, 'the response was cut short');
  assert.ok(ms < 15_000, `cut within seconds (${ms} ms)`);
  assert.ok(received < big.length);
  // not counted, so the item (share-limit 1) is still there, and the slot is free again
  assert.equal(f.store.get(bigItem.hash)?.shareCount, 0);
  const again = await get(f.agent('127.0.0.2'), `${f.base}/small.bin?sha256=${item.hash}`);
  assert.equal(again.status, 200);
  assert.equal(sha256(again.body), item.hash);
});

test('a steady reader above the minimum rate is not cut, even when the download outlasts requestTimeout', async (t) => {
  const { f } = await setup(t);
  const big = content(12 * 1024 * 1024, 13);
  const item = await f.publish(big, { basename: 'steady.iso', shareLimit: 5 });
  const { request } = await import('undici');
  const t0 = performance.now();
  const r = await request(`${f.base}/steady.iso?sha256=${item.hash}`, { dispatcher: f.agent('127.0.0.2') });
  assert.equal(r.statusCode, 200);
  const rate = 3 * 1024 * 1024; // bytes per second, paced by the reader
  const parts: Buffer[] = [];
  let got = 0;
  for await (const chunk of r.body) {
    parts.push(chunk as Buffer);
    got += (chunk as Buffer).length;
    const due = (got / rate) * 1000 - (performance.now() - t0);
    if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
  }
  const ms = performance.now() - t0;
  t.diagnostic(`12 MiB read at ~3 MiB/s in ${Math.round(ms)} ms (requestTimeout ${LIMITS.requestTimeout} ms, socketTimeout ${LIMITS.socketTimeout} ms)`);
  assert.ok(ms > LIMITS.requestTimeout, 'the download outlasted requestTimeout');
  assert.equal(sha256(Buffer.concat(parts)), item.hash);
});
