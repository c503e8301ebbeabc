/**
 * The plain-TLS peer client (lib/fetch/peer-request.ts) against raw loopback servers: it reads only
 * what passim peers send (HTTP/1.x, Content-Length framing) and refuses the rest as a SourceError.
 * The whole-download behaviour (drips, stalls, aborts, lies) is in pipelined-download.test.ts and
 * fetch.test.ts, which run through it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseHead, peerRequest, type PeerResponse } from '../../lib/fetch/peer-request.js';
import { SourceError } from '../../lib/fetch/source-error.js';
import { head, makeCert, refused, respond, startServer, trailingGarbage, type Handler, type KeyCert, type TestServer } from './helpers.js';

let kc: KeyCert;
const servers: TestServer[] = [];

before(async () => {
  kc = await makeCert();
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function get(h: Handler, o: { maxHeaderSize?: number } = {}): Promise<PeerResponse> {
  const s = await startServer(kc, h);
  servers.push(s);
  return peerRequest(new URL(s.url('/f.bin?sha256=00')), {
    signal: new AbortController().signal,
    connectTimeoutMs: 2000,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
    maxHeaderSize: o.maxHeaderSize ?? 16 * 1024,
    headers: { 'user-agent': 'test' },
  });
}

function readAll(r: PeerResponse): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    r.body.on('data', (c: Buffer) => chunks.push(c));
    r.body.once('end', () => resolve(Buffer.concat(chunks)));
    r.body.once('error', reject);
  });
}

describe('parseHead', () => {
  it('reads the status and lower-cases header names; a repeated header becomes a list', () => {
    const h = parseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a:  2 ');
    assert.equal(h.statusCode, 200);
    assert.deepEqual(h.headers, { 'content-length': '5', 'x-a': ['1', '2'] });
  });
  for (const [what, text] of [
    ['a status line that is not HTTP/1.x', 'HTTP/2 200 OK'],
    ['a status of two digits', 'HTTP/1.1 20 OK'],
    ['a folded header line', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n 2'],
    ['a header without a colon', 'HTTP/1.1 200 OK\r\nX-A 1'],
    ['a control character in a value', 'HTTP/1.1 200 OK\r\nX-A: a\u0001b'],
  ] as const) {
    it(`refuses ${what}`, () => {
      assert.throws(() => parseHead(text), (e) => e instanceof SourceError && e.kind === 'network');
    });
  }
});

describe('peerRequest', () => {
  it('returns the head and exactly Content-Length body bytes, also when the head arrives byte by byte', async () => {
    const data = randomBytes(300_000);
    const r = await get((_req, sock) => {
      const text = `HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\nETag: "x"\r\n\r\n`;
      let i = 0;
      const t = setInterval(() => {
        if (i < text.length) sock.write(text[i++]!);
        else {
          clearInterval(t);
          sock.end(data);
        }
      }, 1);
    });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers.etag, '"x"');
    assert.ok((await readAll(r)).equals(data));
  });

  it('takes only Content-Length bytes from a peer that sends more', async () => {
    const data = randomBytes(100_000);
    const r = await get(trailingGarbage(data));
    assert.ok((await readAll(r)).equals(data));
  });

  it('hands a redirect over with its Location and an empty body', async () => {
    const r = await get((_req, sock) => respond(sock, 302, { Location: '/other', 'Content-Length': 0 }));
    assert.equal(r.statusCode, 302);
    assert.equal(r.headers.location, '/other');
    assert.equal((await readAll(r)).length, 0);
  });

  it('refuses two different Content-Lengths', async () => {
    const e = await refused(get((_req, sock) => respond(sock, 200, { 'Content-Length': '5\r\nContent-Length: 6' }, 'hello')));
    assert.equal(e.kind, 'length');
  });

  it('refuses chunked framing and a 200 without Content-Length', async () => {
    const chunked = await refused(get((_req, sock) => {
      head(sock, 200, { 'Transfer-Encoding': 'chunked' });
      sock.end('5\r\nhello\r\n0\r\n\r\n');
    }));
    assert.equal(chunked.kind, 'length');
    const none = await refused(get((_req, sock) => {
      head(sock, 200, {});
      sock.end('hello');
    }));
    assert.equal(none.kind, 'length');
  });

  it('refuses a head larger than maxHeaderSize', async () => {
    const e = await refused(get((_req, sock) => {
      sock.write('HTTP/1.1 200 OK\r\n');
      for (let i = 0; i < 100; i++) sock.write(`X-${i}: ${'a'.repeat(200)}\r\n`);
    }, { maxHeaderSize: 4096 }));
    assert.equal(e.kind, 'too-large');
  });

  it('a connection closed before the head ends is a network error', async () => {
    await assert.rejects(get((_req, sock) => sock.end('HTTP/1.1 200 OK\r\nContent-Le')), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'UND_ERR_SOCKET');
      return true;
    });
  });
});
