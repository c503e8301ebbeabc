/**
 * Raw requests over real TLS to a real server on loopback (fixed seed, 2,000+ cases): random
 * request targets, malformed request lines, bad header syntax, huge headers, header floods,
 * odd framing (Content-Length / Transfer-Encoding), pipelining, random Range headers and plain
 * binary junk, written byte for byte on node:tls sockets from four "peer" addresses and loopback.
 *
 * For every case the server answers with an allowed status or closes the connection (never hangs,
 * never 500); every 200/206 carries the right bytes of the item named by the request (never the
 * canary file outside the store); a 302 (loopback only) points at the peer with a one-segment
 * path; and a normal request is served after every batch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { fixture, get, content, sha256, RawConnection, SEED, type RawResponse } from './helpers.js';
import type { ItemInfo } from '../../lib/store/types.js';

const CASES = 2_000;
const PEERS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const LOCAL = '127.0.0.1';
const REDIRECT_PEER = { address: '192.0.2.1', port: 27500 };

/** statuses a request may get: ours (SPEC §4) and Node's parser rejections (400/408/413/431) and Expect (417) */
const ALLOWED = new Set([200, 204, 206, 302, 400, 403, 404, 406, 408, 413, 416, 417, 423, 431, 503]);

interface Case {
  cat: string;
  bytes: Buffer;
  /** method as the server will parse it (HEAD responses have no body) */
  method: string;
  /** how many responses a well-behaved server sends (pipelined cases) */
  responses: number;
  /** keep the connection for the next case when it stays open */
  reusable: boolean;
  /** when the request names a held item in plain form: its hash */
  hash?: string;
  range?: string;
  ifRange?: string;
  loopback: boolean;
}

const ODD = ['fw.xml.gz', 'ünï ☃.bin', 'a b%20c.txt', '..x', 'q"\'.txt', '#h?q&x=1.cab', 'é'.repeat(95)];

test(`raw TLS requests (${CASES} cases) never crash or hang the server, and never serve a wrong file`, async (t) => {
  const f = await fixture({
    config: { cooldown: 0, maxUploads: 64, maxUploadsPerPeer: 8 },
    limits: { headersTimeout: 2000, requestTimeout: 4000, connectionsCheckingInterval: 200, keepAliveTimeout: 5000, socketTimeout: 5000, handshakeTimeout: 2000 },
    findPeer: async (hash) => (hash.startsWith('0') ? REDIRECT_PEER : undefined),
  });
  t.after(() => f.close());
  const items: Array<{ item: ItemInfo; bytes: Buffer }> = [];
  for (const [i, name] of ODD.entries()) {
    const bytes = content(1000 + i * 4099, 300 + i);
    items.push({ item: await f.publish(bytes, { basename: name, shareLimit: 1_000_000 }), bytes });
  }
  const byHash = new Map(items.map((x) => [x.item.hash, x]));
  const canary = Buffer.from('CANARY-OUTSIDE-THE-STORE');
  await writeFile(join(f.dir, 'canary.secret'), canary);
  const canaryHash = sha256(canary);
  const held = items.map((x) => x.item.hash);

  const cases = fc.sample(caseArb(held, canaryHash), { seed: SEED, numRuns: CASES });
  const perCat = new Map<string, { tried: number; failures: number; statuses: Map<number | string, number> }>();
  const failures: string[] = [];
  let reconnects = 0;
  const catMs = new Map<string, number>();
  let nudged = 0;

  const fail = (c: Case, why: string) => {
    failures.push(`[${c.cat}] ${why} — request ${JSON.stringify(c.bytes.subarray(0, 200).toString('latin1'))}`);
    perCat.get(c.cat)!.failures++;
  };

  function checkResponse(c: Case, r: RawResponse): void {
    if (!ALLOWED.has(r.status)) return fail(c, `status ${r.status}`);
    if (r.body.includes(canary)) return fail(c, 'served the canary');
    const cd = r.headers.get('content-disposition')?.[0];
    if (r.status === 200 && c.method !== 'HEAD') {
      if (cd) {
        const h = sha256(r.body);
        const x = byHash.get(h);
        if (!x) return fail(c, `200 with bytes of no item (${r.body.length} bytes)`);
        if (c.hash && c.hash !== h) return fail(c, `200 with item ${h}, asked for ${c.hash}`);
        if (cd !== `attachment; filename="${encodeURIComponent(x.item.basename)}"`) return fail(c, `Content-Disposition ${cd}`);
        if (!c.range && c.hash && c.loopback === false && r.body.length !== x.bytes.length) return fail(c, 'short body');
      } else if (!c.loopback) {
        return fail(c, '200 without an item for a peer (index?)');
      }
    }
    if (r.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(r.headers.get('content-range')?.[0] ?? '');
      if (!m || !c.hash) return fail(c, `206 with Content-Range ${r.headers.get('content-range')}`);
      const x = byHash.get(c.hash)!;
      const [a, b, size] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (size !== x.bytes.length || !r.body.equals(x.bytes.subarray(a, b + 1))) return fail(c, `206 ${a}-${b}/${size}: wrong bytes`);
    }
    if (r.status === 416 && r.headers.get('content-range')?.[0] !== `bytes */${byHash.get(c.hash ?? '')?.bytes.length}`) {
      return fail(c, `416 with Content-Range ${r.headers.get('content-range')}`);
    }
    if (r.status === 302) {
      if (!c.loopback) return fail(c, '302 to a peer');
      const loc = r.headers.get('location')?.[0] ?? '';
      if (!/^https:\/\/192\.0\.2\.1:27500\/[^/?#\s]*\?sha256=0[0-9a-f]{63}$/.test(loc)) return fail(c, `Location ${JSON.stringify(loc)}`);
    }
    if (r.status >= 400 && r.body.length && !/^<html><head><title>\d{3} [^<]*<\/title><\/head><body>[^<]*<\/body><\/html>$/.test(r.body.toString('utf8'))) {
      return fail(c, `error body ${JSON.stringify(r.body.subarray(0, 100).toString('latin1'))}`);
    }
  }

  async function worker(from: string, mine: Case[]): Promise<void> {
    let conn: RawConnection | undefined;
    for (const c of mine) {
      const stat = perCat.get(c.cat) ?? { tried: 0, failures: 0, statuses: new Map() };
      perCat.set(c.cat, stat);
      stat.tried++;
      if (!conn || conn.isEnded) {
        conn?.destroy();
        conn = await RawConnection.open(f.port, from);
        reconnects++;
      }
      const tc0 = performance.now();
      conn.write(c.bytes);
      let keep = c.reusable;
      for (let i = 0; i < c.responses; i++) {
        let r: Awaited<ReturnType<RawConnection['readResponse']>>;
        try {
          r = await conn.readResponse(c.method, i === 0 ? 600 : 3000);
          if (r === 'timeout' && i === 0) {
            // an incomplete request: the server waits for the rest; end our side, it must answer or close
            nudged++;
            conn.socket.end();
            r = await conn.readResponse(c.method, 6000);
          }
        } catch (e) {
          fail(c, `bad response: ${(e as Error).message}`);
          keep = false;
          break;
        }
        if (r === 'timeout') {
          fail(c, 'no response and no close (hang)');
          keep = false;
          break;
        }
        if (r === 'closed') {
          stat.statuses.set('closed', (stat.statuses.get('closed') ?? 0) + 1);
          keep = false;
          break;
        }
        stat.statuses.set(r.status, (stat.statuses.get(r.status) ?? 0) + 1);
        checkResponse(c, r);
        if (r.closedAfter) {
          keep = false;
          break;
        }
      }
      if (!keep) {
        conn.destroy();
        conn = undefined;
      }
      catMs.set(c.cat, (catMs.get(c.cat) ?? 0) + performance.now() - tc0);
    }
    conn?.destroy();
  }

  const BATCH = 250;
  const probe = items[1];
  for (let start = 0; start < cases.length; start += BATCH) {
    const batch = cases.slice(start, start + BATCH);
    // case i goes to lane i % 5: four peers and loopback
    const lanes = [...PEERS, LOCAL].map((from, w) => ({ from, mine: batch.filter((_, i) => i % 5 === w) }));
    for (const l of lanes) for (const c of l.mine) c.loopback = l.from === LOCAL;
    await Promise.all(lanes.map((l) => worker(l.from, l.mine)));
    // the server still serves a valid request after every batch
    const ok = await get(f.agent('127.0.0.9'), `${f.base}/x?sha256=${probe.item.hash}`);
    assert.equal(ok.status, 200, `after batch ${start / BATCH}`);
    assert.ok(ok.body.equals(probe.bytes));
  }

  const total = [...perCat.values()].reduce((a, s) => a + s.tried, 0);
  for (const [cat, s] of [...perCat].sort()) {
    t.diagnostic(`${cat} (${Math.round(catMs.get(cat) ?? 0)} ms): ${s.tried} cases, ${s.failures} failures; ${[...s.statuses].map(([k, v]) => `${k}:${v}`).join(' ')}`);
  }
  t.diagnostic(`total ${total} raw requests, ${failures.length} failures, ${reconnects} connections, ${nudged} incomplete requests ended by the client`);
  assert.equal(total, CASES);
  assert.deepEqual(failures.slice(0, 20), []);
  // the store is as it was: every item still there (share-limit not reached), nothing else added
  assert.deepEqual(f.store.list().map((i) => i.hash).sort(), [...held].sort());
});

// ------------------------------------------------------------------------------------- generators

const CRLF = '\r\n';

function caseArb(held: string[], canaryHash: string): fc.Arbitrary<Case> {
  const mixCase = (h: string) => fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }).map((m) => [...h].map((c, i) => (m[i] ? c.toUpperCase() : c)).join(''));
  const heldHash = fc.constantFrom(...held);
  const anyHash = fc.oneof(heldHash, fc.constant(canaryHash), fc.constant('0'.repeat(64)), fc.constant(`0${'f'.repeat(63)}`), fc.constant('e'.repeat(64)));
  const seg = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('..', '.', '', '%2e%2e', '%2f', '%2F', '..%2f..%2fcanary.secret', '%00', 'canary.secret', '%', '%zz', '%c0%af', '\\..\\', 'data', 'log') },
    { weight: 2, arbitrary: fc.constantFrom(...ODD).map((n) => encodeURIComponent(n)) },
    { weight: 1, arbitrary: fc.constantFrom(...ODD) }, // raw (unicode bytes, spaces, quotes, '#', '?') on the wire
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 8000 }).map((n) => 'b'.repeat(n)) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }).map((s) => s.replace(/[\s#?]/g, '')) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 12 }) },
  );
  const path = fc.array(seg, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`);
  const junkParam = fc.oneof(
    fc.constantFrom('localhost=true', 'localhost=false', 'localhost=maybe', 'localhost', '=', '&', 'SHA256=x', 'sha256', 'sha256=', 'x=%', 'a=b=c', '%00=%00'),
    fc.string({ unit: 'binary-ascii', maxLength: 10 }),
  );

  // 1. random targets with a plain, an odd or no hash
  const targetCase = fc
    .record({
      path,
      hash: sometimes(9, fc.tuple(anyHash, fc.boolean()).chain(([h, mix]) => (mix ? mixCase(h) : fc.constant(h)))),
      before: fc.array(junkParam, { maxLength: 2 }),
      after: fc.array(junkParam, { maxLength: 2 }),
      dup: sometimes(1, anyHash),
      frag: sometimes(2, fc.string({ maxLength: 6 })),
      // most clients percent-encode what may not appear raw in a request target; some send it raw
      encode: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    })
    .map((r) => {
      const params = [...r.before, ...(r.hash ? [`sha256=${r.hash}`] : []), ...(r.dup ? [`sha256=${r.dup}`] : []), ...r.after];
      let target = `${r.path}?${params.join('&')}${r.frag !== undefined ? `#${r.frag}` : ''}`;
      if (r.encode) target = wireEncode(target);
      const bytes = Buffer.from(`GET ${target} HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}${CRLF}`, 'utf8');
      const plain = r.hash !== undefined && r.dup === undefined && held.includes(r.hash.toLowerCase());
      const wireSafe = !/[\s\0]/.test(target);
      return mk('target', bytes, { reusable: wireSafe, hash: plain ? r.hash!.toLowerCase() : undefined });
    });

  // 2. malformed request lines
  const requestLine = fc
    .tuple(
      heldHash,
      fc.oneof(
        fc.constantFrom(
          'GET /x?sha256=H HTTP/1.0', 'GET /x?sha256=H HTTP/1.1 extra', 'GET  /x?sha256=H HTTP/1.1', 'GET /x?sha256=H  HTTP/1.1', 'GET\t/x?sha256=H HTTP/1.1',
          'get /x?sha256=H HTTP/1.1', 'GET /x?sha256=H', 'GET /x?sha256=H HTTP/2.0', 'GET /x?sha256=H HTTP/1.10', 'GET /x?sha256=H HTTP/0.9', 'GET /x?sha256=H http/1.1',
          ' GET /x?sha256=H HTTP/1.1', 'GET', '', 'HTTP/1.1 200 OK', 'PRI * HTTP/2.0', 'CONNECT 127.0.0.1:22 HTTP/1.1', 'OPTIONS * HTTP/1.1', 'GET * HTTP/1.1',
          'GET http://127.0.0.1/x?sha256=H HTTP/1.1', 'GET https://evil.example/../../canary.secret?sha256=H HTTP/1.1', 'GET //canary.secret?sha256=H HTTP/1.1',
          'DELETE /x?sha256=H HTTP/1.1', 'HEAD /x?sha256=H HTTP/1.1', 'POST /x?sha256=H HTTP/1.1', 'PUT /x?sha256=H HTTP/1.1', 'TRACE / HTTP/1.1',
          'G\0ET /x?sha256=H HTTP/1.1', 'GET /x?sha256=H\0 HTTP/1.1', 'GET /x?sha256=H HTTP/1.1\u00ff', 'GET /\u00e9?sha256=H HTTP/1.1', 'GET /x?sha256=H\r HTTP/1.1',
          'GET ?sha256=H HTTP/1.1', 'GET x?sha256=H HTTP/1.1', 'GET /?sha256=H HTTP/1.1', 'GET /favicon.ico HTTP/1.1', 'GET /style.css HTTP/1.1', 'GET / HTTP/1.1',
        ),
        fc.stringMatching(/^[A-Z]{1,12}$/).map((m) => `${m} /x?sha256=H HTTP/1.1`),
        fc.integer({ min: 1000, max: 20000 }).map((n) => `${'A'.repeat(n)} /x?sha256=H HTTP/1.1`),
        fc.integer({ min: 1000, max: 40000 }).map((n) => `GET /${'c'.repeat(n)}?sha256=H HTTP/1.1`),
        fc.string({ unit: 'binary-ascii', maxLength: 60 }),
      ),
      fc.constantFrom(CRLF, '\n', '\r'),
    )
    .map(([h, line, eol]) => {
      const l = line.replace('H', h);
      const method = l.startsWith('HEAD ') ? 'HEAD' : 'GET';
      return mk('request-line', Buffer.from(`${l}${eol}Host: 127.0.0.1${eol}${eol}`, 'latin1'), { method, hash: /^[A-Z]+ \/x\?sha256=[0-9a-f]{64} HTTP\/1\.[01]$/.test(l) ? h : undefined });
    });

  // 3. bad header syntax and odd framing
  const badHeader = fc.oneof(
    fc.constantFrom(
      'NoColon', 'Host : x', ' Leading: space', 'X: a\r\n  folded', 'X-Bad(Name): v', 'X: v\0v', 'X: \x7f', 'X:\tv', ': empty-name', 'X: v\rv', 'X: v\nY: w',
      'Content-Length: -1', 'Content-Length: 1e3', 'Content-Length: 5\r\nContent-Length: 6', 'Content-Length: 3\r\nTransfer-Encoding: chunked',
      'Transfer-Encoding: chunked, gzip', 'Transfer-Encoding: gzip', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked', 'Content-Length: 99999999999999999999999',
      'Content-Length: 0x10', 'Content-Length:  7 ', 'Host:', 'Host: a\r\nHost: b', 'Connection: upgrade\r\nUpgrade: websocket', 'Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings',
      'Expect: 100-continue', 'Expect: weird', 'Range: bytes=garbage', 'X: \u00e2\u0098\u0083', '\u00e9: v', 'Connection: close', 'Connection: keep-alive, close, upgrade',
      'Transfer-Encoding: chunked\r\n\r\nzz\r\n', 'Content-Length: 4\r\n\r\nbody', 'Transfer-Encoding: chunked\r\n\r\n4;ext=' + 'e'.repeat(20000) + '\r\nbody\r\n0\r\n',
    ),
    fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  );
  const headerCase = fc.tuple(heldHash, fc.array(badHeader, { minLength: 1, maxLength: 3 })).map(([h, hs]) =>
    mk('header-syntax', Buffer.from(`GET /x?sha256=${h} HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}${hs.join(CRLF)}${CRLF}${CRLF}`, 'latin1'), { hash: h }),
  );

  // 4. one huge header (around the 16 KiB limit and far past it)
  const hugeCase = fc.tuple(heldHash, fc.integer({ min: 8 * 1024, max: 96 * 1024 })).map(([h, n]) =>
    mk('huge-header', Buffer.from(`GET /x?sha256=${h} HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}X-Huge: ${'h'.repeat(n)}${CRLF}${CRLF}`), { hash: h }),
  );

  // 5. header floods: many small headers, repeated names, many cookies
  const floodCase = fc.tuple(heldHash, fc.integer({ min: 50, max: 8000 }), fc.constantFrom('X-%d: v', 'X: %d', 'Cookie: c%d=1', 'Range: bytes=%d-')).map(([h, n, form]) => {
    const lines = Array.from({ length: n }, (_, i) => form.replace('%d', String(i)));
    return mk('header-flood', Buffer.from(`GET /x?sha256=${h} HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}${lines.join(CRLF)}${CRLF}${CRLF}`), { hash: h });
  });

  // 6. pipelined valid requests in one write
  const pipelineCase = fc.array(heldHash, { minLength: 2, maxLength: 16 }).map((hs) =>
    mk('pipelined', Buffer.from(hs.map((h) => `GET /p?sha256=${h} HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}${CRLF}`).join('')), { responses: hs.length, reusable: true }),
  );

  // 7. random Range / If-Range on a valid request
  const num = fc.oneof(fc.integer({ min: 0, max: 40000 }), fc.constantFrom(0, 1, 999, 1000, 99999999999, 1e15, 1e16));
  const rangeValue = fc.oneof(
    fc.tuple(num, num).map(([a, b]) => `bytes=${a}-${b}`),
    num.map((a) => `bytes=${a}-`),
    num.map((n) => `bytes=-${n}`),
    fc.tuple(num, num, num).map(([a, b, c]) => `bytes=${a}-${b},${c}-`),
    fc.constantFrom('bytes=', 'bytes=-', 'bytes=--1', 'items=0-1', 'BYTES = 0 - 10', 'bytes=0-0', 'bytes=-0', 'bytes=1-0', 'bytes=0-1e3'),
    fc.string({ unit: 'binary-ascii', maxLength: 20 }).filter((s) => !/[\r\n\0]/.test(s)),
  );
  const rangeCase = fc.tuple(heldHash, rangeValue, fc.option(fc.constantFrom('match', '"nope"', 'W/"x"'), { freq: 3, nil: undefined })).map(([h, range, ir]) => {
    const ifRange = ir === 'match' ? `"${h}"` : ir;
    const extra = `Range: ${range}${CRLF}${ifRange ? `If-Range: ${ifRange}${CRLF}` : ''}`;
    return mk('range', Buffer.from(`GET /r?sha256=${h} HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}${extra}${CRLF}`, 'latin1'), { hash: h, range, ifRange, reusable: true });
  });

  // 8. binary junk
  const binaryCase = fc.uint8Array({ minLength: 1, maxLength: 3000 }).map((b) => mk('binary', Buffer.from(b), {}));

  return fc.oneof(
    { weight: 30, arbitrary: targetCase },
    { weight: 12, arbitrary: requestLine },
    { weight: 14, arbitrary: headerCase },
    { weight: 5, arbitrary: hugeCase },
    { weight: 5, arbitrary: floodCase },
    { weight: 6, arbitrary: pipelineCase },
    { weight: 20, arbitrary: rangeCase },
    { weight: 8, arbitrary: binaryCase },
  );
}

/** percent-encodes every byte outside visible ASCII (UTF-8 first), as a careful client would */
function wireEncode(target: string): string {
  return [...Buffer.from(target, 'utf8')].map((b) => (b > 0x20 && b < 0x7f ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

/** undefined, or a value in `weight` of 10 cases */
function sometimes<T>(weight: number, arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: 10 - weight, arbitrary: fc.constant(undefined) }, { weight, arbitrary: arb });
}

function mk(cat: string, bytes: Buffer, o: Partial<Case>): Case {
  return { cat, bytes, method: 'GET', responses: 1, reusable: false, loopback: false, ...o };
}
