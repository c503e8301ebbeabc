/**
 * Path safety end to end: items published under unicode and odd-but-valid basenames are requested
 * over real TLS with raw, percent-encoded, `..`, `%2f`, NUL and over-long path variants and with
 * tampered hashes, from a peer and from loopback. Only the right item's bytes or an error ever
 * come back: never a canary file outside the store, nor one dropped into the data dir behind the
 * store's back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fixture, content, sha256, get, RawConnection } from './helpers.js';

const NAMES = [
  'ünïcødé ☃.bin',
  'emoji😀.iso',
  'a b%20c.txt',
  'x%2fy',
  'x%2e%2e',
  '..a',
  'a..',
  '...',
  '-dash',
  'semi;colon,=.json',
  'quote"name\'.txt',
  '#hash?q&x=1.txt',
  'back\\slash',
  '<img src=x onerror=alert(1)>.txt',
  'CON',
  ' leading space',
  'trailing dot.',
  'é'.repeat(95),
];

test('odd basenames, tampered paths and hashes: only the right bytes or an error, never a canary', async (t) => {
  const f = await fixture({
    // upload limits are not under test here (limits.test.ts): sequential requests must never see a 503
    config: { cooldown: 0, maxUploads: 64, maxUploadsPerPeer: 64 },
    findPeer: async (hash) => (hash.startsWith('0') ? { address: '192.0.2.44', port: 27500 } : undefined),
  });
  t.after(() => f.close());
  const items = [];
  for (const [i, name] of NAMES.entries()) {
    const bytes = content(500 + i * 37, 900 + i);
    items.push({ name, bytes, item: await f.publish(bytes, { basename: name, shareLimit: 1_000_000 }) });
  }
  // canaries: one outside the data dir, one inside it that the store never published
  const canaryOut = Buffer.from('CANARY-OUTSIDE');
  const canaryIn = Buffer.from('CANARY-INSIDE-NOT-PUBLISHED');
  await writeFile(join(f.dir, 'canary.secret'), canaryOut);
  const hashOut = sha256(canaryOut);
  const hashIn = sha256(canaryIn);
  await writeFile(join(f.dataDir, `${hashIn}-canary.txt`), canaryIn);
  const notHere = `0${'1'.repeat(63)}`;

  /** paths built from the item's own name */
  const namePaths = (name: string, hash: string): string[] => [
    `/${encodeURIComponent(name)}`,
    `/${[...Buffer.from(name)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`,
    `/${encodeURIComponent(name).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())}`,
    `/${hash}-${encodeURIComponent(name)}`,
    `/${encodeURIComponent(name)}%00.bin`,
    `/./${encodeURIComponent(name)}`,
  ];
  /** paths aiming elsewhere, the same whatever the item */
  const otherPaths: string[] = [
    '/../canary.secret',
    '/../../canary.secret',
    '/..%2fcanary.secret',
    '/..%2F..%2Fcanary.secret',
    '/%2e%2e/%2e%2e/canary.secret',
    '/%2e%2e%2fcanary.secret',
    '/data/../canary.secret',
    `/data/${hashIn}-canary.txt`,
    `/${hashIn}-canary.txt`,
    '/%c0%ae%c0%ae/canary.secret',
    '/..\\..\\canary.secret',
    '//canary.secret',
    '/%00',
    `/${'z'.repeat(4000)}`,
    '/',
    '',
  ];
  const queryVariants = (hash: string): string[] => [
    `sha256=${hash}`,
    `sha256=${hash.toUpperCase()}`,
    `sha256=${hash}&localhost=true`,
    `sha256=${hash}&localhost=false`,
    `sha256=${hashOut}`,
    `sha256=${hashIn}`,
    `sha256=${hashIn.toUpperCase()}`,
    `sha256=${notHere}`,
    'sha256=../../canary.secret',
    'sha256=..%2f..%2fcanary.secret',
    `sha256=${hash}%00`,
    `sha256=${hash}/../..`,
    `sha256=${hash.slice(0, 62)}%2e%2e`,
    `sha256=%2e%2e%2f${hash.slice(6)}`,
    `sha256=${hash}&sha256=${hashIn}`,
    `basename=../../canary.secret&sha256=${hash}`,
  ];

  const byHash = new Map(items.map((x) => [x.item.hash, x]));
  const statuses = new Map<string, number>();
  let cases = 0;
  let served = 0;
  const failures: string[] = [];
  const conns = new Map<string, RawConnection>();
  const connFor = async (from: string) => {
    let c = conns.get(from);
    if (!c || c.isEnded) {
      c?.destroy();
      c = await RawConnection.open(f.port, from);
      conns.set(from, c);
    }
    return c;
  };
  t.after(() => {
    for (const c of conns.values()) c.destroy();
  });

  async function one(from: string, path: string, query: string): Promise<void> {
    cases++;
    const target = `${path}?${query}`;
    const c = await connFor(from);
    c.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    const r = await c.readResponse('GET', 5000);
    const where = `${from} GET ${target.slice(0, 120)}`;
    if (r === 'timeout') {
      failures.push(`${where}: hang`);
      return;
    }
    if (r === 'closed') {
      statuses.set('closed', (statuses.get('closed') ?? 0) + 1);
      return;
    }
    statuses.set(String(r.status), (statuses.get(String(r.status)) ?? 0) + 1);
    if (r.body.includes(canaryOut) || r.body.includes(canaryIn)) failures.push(`${where}: a canary was served`);
    if (r.status === 200 && r.headers.has('content-disposition')) {
      served++;
      const h = sha256(r.body);
      const x = byHash.get(h);
      const asked = new URLSearchParams(query).getAll('sha256').map((v) => v.toLowerCase());
      if (!x) failures.push(`${where}: 200 with bytes of no item`);
      else if (asked.length !== 1 || asked[0] !== h) failures.push(`${where}: served ${x.name}, asked for ${asked}`);
      else if (r.headers.get('content-disposition')?.[0] !== `attachment; filename="${encodeURIComponent(x.name)}"`) {
        failures.push(`${where}: Content-Disposition ${r.headers.get('content-disposition')}`);
      }
    } else if (r.status === 200) {
      // only the loopback index (GET /) is a 200 without an item
      if (from !== '127.0.0.1' || !/^\/?$/.test(path)) failures.push(`${where}: 200 without an item`);
      else if (r.body.toString().includes('<img src=x')) failures.push(`${where}: index page does not escape basenames`);
    } else if (r.status === 302) {
      const loc = r.headers.get('location')?.[0] ?? '';
      const m = /^https:\/\/192\.0\.2\.44:27500\/([^/?#\s]*)\?sha256=([0-9a-f]{64})$/.exec(loc);
      if (from !== '127.0.0.1' || !m) failures.push(`${where}: 302 to ${JSON.stringify(loc)}`);
    } else if (![400, 403, 404, 406].includes(r.status)) {
      failures.push(`${where}: status ${r.status}`);
    }
    if (r.closedAfter) {
      c.destroy();
      conns.delete(from);
    }
  }

  // every name with its own path forms and every query form, alternately from a peer and loopback
  let n = 0;
  for (const { name, item } of items) {
    for (const path of namePaths(name, item.hash)) {
      for (const query of queryVariants(item.hash)) await one(n++ % 2 ? '127.0.0.1' : '127.0.0.2', path, query);
    }
  }
  // the paths aiming elsewhere, with the query forms of three items, from both
  for (const { item } of items.slice(0, 3)) {
    for (const path of otherPaths) {
      for (const query of queryVariants(item.hash)) {
        for (const from of ['127.0.0.2', '127.0.0.1']) await one(from, path, query);
      }
    }
  }
  // the store is untouched: same items, the unpublished file was not adopted, nothing deleted
  assert.deepEqual(f.store.list().map((i) => i.hash).sort(), items.map((x) => x.item.hash).sort());
  // undici (a well-behaved client) agrees for the plain case of each name
  for (const { name, bytes, item } of items) {
    const r = await get(f.agent('127.0.0.3'), `${f.base}/${encodeURIComponent(name)}?sha256=${item.hash}`);
    assert.equal(r.status, 200, name);
    assert.ok(r.body.equals(bytes), name);
  }
  t.diagnostic(`${cases} requests (${items.length} names × path and query forms, peer and loopback), ${served} served an item, ${failures.length} failures; statuses ${[...statuses].sort().map(([k, v]) => `${k}:${v}`).join(' ')}`);
  assert.deepEqual(failures.slice(0, 20), []);
  assert.ok(served > 0);
});
