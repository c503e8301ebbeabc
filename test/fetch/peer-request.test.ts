/**
 * The plain-TLS peer client (lib/fetch/peer-request.ts) against raw loopback servers: it reads only
 * what passim peers send (HTTP/1.x, Content-Length framing) and refuses the rest as a SourceError.
 * The whole-download behaviour (drips, stalls, aborts, lies) is in pipelined-download.test.ts and
 * fetch.test.ts, which run through it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseHead, PeerConnections, peerRequest, type PeerResponse } from '../../lib/fetch/peer-request.js';
import { SourceError } from '../../lib/fetch/source-error.js';
import { head, makeCert, refused, respond, startServer, trailingGarbage, type Handler, type KeyCert, type Req, type TestServer } from './helpers.js';

let kc: KeyCert;
const servers: TestServer[] = [];

before(async () => {
  kc = await makeCert();
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const OPTS = {
  connectTimeoutMs: 2000,
  headersTimeoutMs: 2000,
  bodyTimeoutMs: 2000,
  maxHeaderSize: 16 * 1024,
  headers: { 'user-agent': 'test' },
};

async function get(h: Handler, o: { maxHeaderSize?: number } = {}): Promise<PeerResponse> {
  const s = await startServer(kc, h);
  servers.push(s);
  return peerRequest(new URL(s.url('/f.bin?sha256=00')), { ...OPTS, signal: new AbortController().signal, maxHeaderSize: o.maxHeaderSize ?? OPTS.maxHeaderSize });
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

/** A body per path, answered HTTP/1.1 without `Connection: close` (so a connection may serve more). */
const keepAlive = (bodies: Record<string, Buffer>): Handler => (req, sock) => {
  const b = bodies[req.path]!;
  sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n`);
  sock.write(b);
};

describe('PeerConnections (kept-alive peer connections)', () => {
  const bodies = { '/a': randomBytes(70_000), '/b': randomBytes(5), '/c': randomBytes(300_000) };

  async function serve(h: Handler): Promise<{ s: TestServer; pool: PeerConnections; fetch: (path: string, signal?: AbortSignal) => Promise<PeerResponse> }> {
    const s = await startServer(kc, h, { keepAlive: true });
    servers.push(s);
    const pool = new PeerConnections();
    return { s, pool, fetch: (path, signal) => peerRequest(new URL(s.url(path)), { ...OPTS, signal: signal ?? new AbortController().signal }, pool) };
  }
  const conns = (reqs: Req[]) => reqs.map((r) => r.conn);

  it('sends one request after another over one connection, each body whole', async () => {
    const { s, pool, fetch } = await serve(keepAlive(bodies));
    try {
      for (const p of ['/a', '/b', '/c', '/a'] as const) assert.ok((await readAll(await fetch(p))).equals(bodies[p]));
      assert.deepEqual(conns(s.requests), [1, 1, 1, 1]);
      assert.equal(s.requests.some((r) => /close/i.test(r.headers.connection ?? '')), false);
      assert.deepEqual([pool.opened, pool.reused], [1, 3]);
    } finally {
      pool.close();
    }
  });

  it('sends a request again on a new connection when the peer closed the reused one without answering, resuming the TLS session', async () => {
    let n = 0;
    const { s, pool, fetch } = await serve((req, sock) => {
      // the second request on the first connection finds it closed, as when a keep-alive timeout strikes
      if (req.conn === 1 && ++n === 2) return sock.destroy();
      keepAlive(bodies)(req, sock);
    });
    try {
      assert.ok((await readAll(await fetch('/a'))).equals(bodies['/a']));
      assert.ok((await readAll(await fetch('/c'))).equals(bodies['/c']));
      assert.deepEqual(conns(s.requests), [1, 1, 2]);
      assert.equal(s.requests[2]!.resumed, true, 'the new connection resumed the first one\'s TLS session');
      assert.equal(pool.opened, 2);
    } finally {
      pool.close();
    }
  });

  it('does not reuse a connection after Connection: close, extra bytes, or a body given up', async () => {
    const mode: Record<string, (req: Req, sock: import('node:tls').TLSSocket) => void> = {
      '/close': (_req, sock) => respond(sock, 200, { 'Content-Length': 5 }, 'hello'), // respond says Connection: close
      '/extra': (_req, sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more'),
      '/big': (_req, sock) => {
        sock.write('HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n');
        sock.write(randomBytes(100_000));
      },
    };
    const { s, pool, fetch } = await serve((req, sock) => (mode[req.path] ?? keepAlive(bodies))(req, sock));
    try {
      assert.equal((await readAll(await fetch('/close'))).toString(), 'hello');
      assert.ok((await readAll(await fetch('/a'))).equals(bodies['/a']));
      assert.equal((await readAll(await fetch('/extra'))).toString(), 'hello');
      assert.ok((await readAll(await fetch('/a'))).equals(bodies['/a']));
      const big = await fetch('/big');
      await new Promise<void>((resolve) => big.body.once('data', () => resolve()));
      big.body.on('error', () => {});
      big.body.destroy();
      assert.ok((await readAll(await fetch('/b'))).equals(bodies['/b']));
      // /close and /extra end their connection, /big's is dropped mid-body: each next request opens anew
      assert.deepEqual(conns(s.requests), [1, 2, 2, 3, 3, 4]);
      assert.equal(pool.reused, 2);
    } finally {
      pool.close();
    }
  });

  it('an aborted request leaves nothing in the pool, and close() ends the idle connections', async () => {
    const { s, pool, fetch } = await serve((req, sock) => {
      if (req.path === '/slow') return; // never answers
      keepAlive(bodies)(req, sock);
    });
    assert.ok((await readAll(await fetch('/a'))).equals(bodies['/a']));
    const ac = new AbortController();
    const slow = fetch('/slow', ac.signal);
    ac.abort();
    await assert.rejects(slow);
    assert.ok((await readAll(await fetch('/b'))).equals(bodies['/b']));
    assert.deepEqual(conns(s.requests), [1, 1, 2]);
    pool.close();
    await s.connClosed!(2); // the idle one, closed by the pool; the test ends only once the server saw it
  });
});
