/**
 * fetchFile against loopback peers and CDNs that behave or misbehave. Peers are found through an
 * injected browse(); nothing here touches mDNS or any non-loopback address.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ChecksumMismatchError, NotFoundError, UsageError } from '../../lib/core/errors.js';
import { fetchFile, type FetchOptions, type FetchProgress } from '../../lib/fetch/fetch.js';
import {
  Fixtures,
  drip,
  endlessChunked,
  endlessHeaders,
  fakeBrowse,
  honest,
  html200,
  liar,
  longBody,
  makeCert,
  noLength,
  redirectLoop,
  redirectTo,
  sha256,
  shortBody,
  startBlackhole,
  startFakeDaemon,
  status,
  tempFilesIn,
  trailingGarbage,
  type Handler,
  type KeyCert,
  type TestServer,
} from './helpers.js';

const DATA = randomBytes(256 * 1024 + 7);
const HASH = sha256(DATA);
const NAME = 'firmware.cab';

/** Small limits so a misbehaving source costs the test well under a second. */
const FAST = {
  connectTimeoutMs: 400,
  headersTimeoutMs: 1000,
  bodyTimeoutMs: 1000,
  minBytesPerSec: 1000,
  rateWindowMs: 300,
  baseDeadlineMs: 5000,
};

let kc: KeyCert;
let other: KeyCert;
const fx = new Fixtures();
const server = (h: Handler, cert: KeyCert = kc): Promise<TestServer> => fx.server(cert, h);
const dir = (): string => fx.dir();

function opts(d: string, o: Partial<FetchOptions>): FetchOptions {
  return {
    name: NAME,
    sha256: HASH,
    cdn: [],
    output: join(d, NAME),
    timeoutMs: 200,
    socketPath: join(d, 'no-daemon.sock'),
    cdnCa: kc.cert,
    peerLimits: FAST,
    cdnLimits: FAST,
    browse: fakeBrowse([]).browse,
    ...o,
  };
}

before(async () => {
  kc = await makeCert();
  other = await makeCert();
});

after(() => fx.cleanup());

describe('fetchFile: peers', () => {
  it('gets the file from an honest peer, verified, mode 0644 (umask), no temp files', async () => {
    const d = dir();
    const p = await server(honest(DATA));
    const fb = fakeBrowse([p.port]);
    const r = await fetchFile(opts(d, { browse: fb.browse }));
    assert.equal(r.source, 'peer');
    assert.equal(r.peer, '127.0.0.1');
    assert.equal(r.sha256, HASH);
    assert.equal(r.size, DATA.length);
    assert.equal(r.path, join(d, NAME));
    assert.deepEqual(readFileSync(r.path), DATA);
    const umask = process.umask();
    assert.equal(statSync(r.path).mode & 0o777, 0o644 & ~umask);
    assert.deepEqual(tempFilesIn(d), []);
    assert.equal(fb.calls.length, 1);
    assert.equal(fb.calls[0].sha256, HASH);
    assert.equal(p.requests[0].path, `/${NAME}?sha256=${HASH}`);
  });

  it('accepts an upper-case hash and normalises it', async () => {
    const d = dir();
    const p = await server(honest(DATA));
    const r = await fetchFile(opts(d, { sha256: HASH.toUpperCase(), browse: fakeBrowse([p.port]).browse }));
    assert.equal(r.sha256, HASH);
    assert.equal(p.requests[0].path, `/${NAME}?sha256=${HASH}`);
  });

  it('starts on the first peer at once, without waiting for discovery to end, and stops the browser', async () => {
    const d = dir();
    const p = await server(honest(DATA));
    const fb = fakeBrowse([p.port], { hang: true }); // never ends by itself
    const r = await fetchFile(opts(d, { browse: fb.browse, timeoutMs: 60_000 }));
    assert.equal(r.source, 'peer');
    assert.equal(fb.aborted(), true, 'the browse signal was aborted after success');
  });

  const bad: Array<[string, () => Handler, RegExp]> = [
    ['wrong bytes', () => liar(DATA), /mismatch/],
    ['fewer bytes than Content-Length', () => shortBody(DATA), /length|closed|Content-Length/i],
    ['more bytes than Content-Length', () => longBody(DATA), /mismatch|length/i],
    ['no Content-Length', () => noLength(DATA), /no Content-Length/],
    ['a slow drip', () => drip(DATA, 200), /KiB\/s|deadline/],
    ['a redirect loop', () => redirectLoop, /redirects/],
    ['a 200 with an HTML body', () => html200, /mismatch/],
    ['a 404', () => status(404), /HTTP 404/],
    ['a 403', () => status(403), /HTTP 403/],
    ['endless headers', () => endlessHeaders, /headers too large|bad HTTP|closed/],
  ];
  for (const [what, make, reason] of bad) {
    it(`skips a peer sending ${what} and uses the next peer`, async () => {
      const d = dir();
      const b = await server(make());
      const g = await server(honest(DATA));
      const skips: FetchProgress[] = [];
      const t0 = Date.now();
      const r = await fetchFile(opts(d, { browse: fakeBrowse([b.port, g.port]).browse, onProgress: (e) => e.type === 'skip' && skips.push(e) }));
      assert.equal(r.source, 'peer');
      assert.equal(new URL(r.url).port, String(g.port), 'served by the honest peer');
      assert.deepEqual(readFileSync(r.path), DATA);
      assert.equal(r.skipped.length, 1);
      assert.match(r.skipped[0].reason, reason);
      assert.equal(skips.length, 1);
      assert.ok(Date.now() - t0 < 4000, 'a bad peer costs at most its timeout');
      assert.deepEqual(tempFilesIn(d), []);
    });
  }

  it('skips a TLS server that accepts TCP and never handshakes (connect timeout)', async () => {
    const d = dir();
    const bh = await startBlackhole();
    fx.track(bh);
    const g = await server(honest(DATA));
    const t0 = Date.now();
    const r = await fetchFile(opts(d, { browse: fakeBrowse([bh.port, g.port]).browse }));
    assert.equal(r.source, 'peer');
    assert.equal(new URL(r.url).port, String(g.port));
    assert.match(r.skipped[0].reason, /timed out/);
    assert.ok(bh.connections() >= 1);
    assert.ok(Date.now() - t0 < 3000);
  });

  it('cuts a slow drip off by the per-source deadline too, when the rate check is off', async () => {
    const d = dir();
    const b = await server(drip(DATA, 200));
    const g = await server(honest(DATA));
    const t0 = Date.now();
    const r = await fetchFile(opts(d, {
      browse: fakeBrowse([b.port, g.port]).browse,
      peerLimits: { ...FAST, minBytesPerSec: 0, baseDeadlineMs: 600, deadlineBytesPerSec: 1e9 },
    }));
    assert.equal(new URL(r.url).port, String(g.port));
    assert.match(r.skipped[0].reason, /deadline/);
    assert.ok(Date.now() - t0 < 3000);
  });

  it('skips a peer that redirects to another host', async () => {
    const d = dir();
    const elsewhere = await server(honest(DATA));
    const b = await server(redirectTo(elsewhere.url(`/${NAME}?sha256=${HASH}`).replace('127.0.0.1', 'localhost')));
    const g = await server(honest(DATA));
    const r = await fetchFile(opts(d, { browse: fakeBrowse([b.port, g.port]).browse }));
    assert.equal(new URL(r.url).port, String(g.port));
    assert.match(r.skipped[0].reason, /another host/);
    assert.equal(elsewhere.requests.length, 0, 'the redirect target was never contacted');
  });

  it('follows a redirect that stays on the same peer', async () => {
    const d = dir();
    let n = 0;
    const p = await server((req, sock) => (n++ === 0 ? redirectTo('/other-name')(req, sock) : honest(DATA)(req, sock)));
    const r = await fetchFile(opts(d, { browse: fakeBrowse([p.port]).browse }));
    assert.equal(r.source, 'peer');
    assert.equal(new URL(r.url).pathname, '/other-name');
    assert.equal(p.requests.length, 2);
  });

  it('takes only Content-Length bytes from a peer that sends garbage after the body', async () => {
    const d = dir();
    const p = await server(trailingGarbage(DATA));
    const r = await fetchFile(opts(d, { browse: fakeBrowse([p.port]).browse }));
    assert.deepEqual(readFileSync(r.path), DATA);
  });

  it('ignores a duplicate peer', async () => {
    const d = dir();
    const b = await server(liar(DATA));
    const g = await server(honest(DATA));
    const r = await fetchFile(opts(d, { browse: fakeBrowse([b.port, b.port, g.port]).browse }));
    assert.equal(b.requests.length, 1);
    assert.equal(r.skipped.length, 1);
  });
});

describe('fetchFile: CDN', () => {
  it('falls back to the CDN when every peer is bad', async () => {
    const d = dir();
    const ps = await Promise.all([liar(DATA), shortBody(DATA), html200, status(404)].map((h) => server(h)));
    const cdn = await server(honest(DATA));
    const r = await fetchFile(opts(d, { browse: fakeBrowse(ps.map((p) => p.port)).browse, cdn: [cdn.url(`/files/${NAME}`)] }));
    assert.equal(r.source, 'cdn');
    assert.equal(r.peer, undefined);
    assert.equal(r.skipped.length, 4);
    assert.deepEqual(readFileSync(r.path), DATA);
    assert.equal(cdn.requests[0].path, `/files/${NAME}`);
  });

  it('tries the CDN URLs in order', async () => {
    const d = dir();
    const c1 = await server(status(500));
    const c2 = await server(honest(DATA));
    const r = await fetchFile(opts(d, { peers: false, cdn: [c1.url('/a'), c2.url('/b')] }));
    assert.equal(r.source, 'cdn');
    assert.equal(r.url, c2.url('/b'));
    assert.match(r.skipped[0].reason, /HTTP 500/);
  });

  it('accepts a CDN without Content-Length (chunked or close-framed)', async () => {
    const d = dir();
    const c = await server(noLength(DATA));
    const r = await fetchFile(opts(d, { peers: false, cdn: [c.url('/x')] }));
    assert.equal(r.source, 'cdn');
    assert.deepEqual(readFileSync(r.path), DATA);
  });

  it('verifies the CDN certificate: an untrusted self-signed CDN is rejected', async () => {
    const d = dir();
    const c = await server(honest(DATA), other);
    await assert.rejects(fetchFile(opts(d, { peers: false, cdn: [c.url('/x')] })), (err: unknown) => {
      assert.ok(err instanceof NotFoundError);
      assert.match(err.message, /TLS|certificate|self.signed/i);
      return true;
    });
    assert.equal(existsSync(join(d, NAME)), false);
    assert.equal(c.requests.length, 0, 'no request was sent over the unverified connection');
  });

  it('accepts that CDN when its CA is supplied', async () => {
    const d = dir();
    const c = await server(honest(DATA), other);
    const r = await fetchFile(opts(d, { peers: false, cdn: [c.url('/x')], cdnCa: other.cert }));
    assert.equal(r.source, 'cdn');
  });

  it('never uses the CDN trust for peers and never skips CDN verification (peers may be self-signed)', async () => {
    const d = dir();
    const p = await server(honest(DATA), other); // cert not in cdnCa
    const r = await fetchFile(opts(d, { browse: fakeBrowse([p.port]).browse }));
    assert.equal(r.source, 'peer');
  });

  it('a CDN sending wrong bytes and no other source: ChecksumMismatchError (exit 4), no file, no temp files', async () => {
    const d = dir();
    const c = await server(liar(DATA));
    await assert.rejects(fetchFile(opts(d, { peers: false, cdn: [c.url('/x')] })), (err: unknown) => {
      assert.ok(err instanceof ChecksumMismatchError);
      assert.equal(err.exitCode, 4);
      return true;
    });
    assert.equal(existsSync(join(d, NAME)), false);
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('leaves an existing target unchanged when every source fails', async () => {
    const d = dir();
    const target = join(d, NAME);
    writeFileSync(target, 'old contents');
    const c = await server(liar(DATA));
    const p = await server(shortBody(DATA));
    await assert.rejects(fetchFile(opts(d, { browse: fakeBrowse([p.port]).browse, cdn: [c.url('/x')] })), ChecksumMismatchError);
    assert.equal(readFileSync(target, 'utf8'), 'old contents');
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('a mix of failures where nobody sent wrong bytes is NotFound (exit 3)', async () => {
    const d = dir();
    const c = await server(status(404));
    const p = await server(shortBody(DATA));
    await assert.rejects(fetchFile(opts(d, { browse: fakeBrowse([p.port]).browse, cdn: [c.url('/x')] })), (err: unknown) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.exitCode, 3);
      assert.match(err.message, new RegExp(`peer 127\\.0\\.0\\.1:${p.port}`));
      assert.match(err.message, /HTTP 404/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  });

  it('stops an endless CDN body at the size cap', async () => {
    const d = dir();
    const c = await server(endlessChunked);
    await assert.rejects(fetchFile(opts(d, { peers: false, cdn: [c.url('/x')], cdnLimits: { ...FAST, maxSize: 1024 * 1024 } })), (err: unknown) => {
      assert.ok(err instanceof NotFoundError);
      assert.match(err.message, /more than 1048576 bytes/);
      return true;
    });
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('refuses a CDN redirect from https to http', async () => {
    const d = dir();
    const c = await server(redirectTo('http://127.0.0.1:1/x'));
    await assert.rejects(fetchFile(opts(d, { peers: false, cdn: [c.url('/x')] })), /https to http/);
  });

  it('follows a CDN redirect to another https host', async () => {
    const d = dir();
    const c2 = await server(honest(DATA));
    const c1 = await server(redirectTo(c2.url('/mirror')));
    const r = await fetchFile(opts(d, { peers: false, cdn: [c1.url('/x')] }));
    assert.equal(r.url, c2.url('/mirror'));
  });
});

describe('fetchFile: nothing, output, options', () => {
  it('nothing anywhere: NotFoundError naming what was tried', async () => {
    const d = dir();
    await assert.rejects(fetchFile(opts(d, {})), (err: unknown) => {
      assert.ok(err instanceof NotFoundError);
      assert.match(err.message, /no peer found/);
      return true;
    });
    assert.equal(existsSync(join(d, NAME)), false);
  });

  it('nothing to try at all (no peers, no CDN): NotFoundError', async () => {
    const d = dir();
    await assert.rejects(fetchFile(opts(d, { peers: false })), NotFoundError);
  });

  it('useCdn false skips the CDN', async () => {
    const d = dir();
    const c = await server(honest(DATA));
    await assert.rejects(fetchFile(opts(d, { useCdn: false, cdn: [c.url('/x')] })), NotFoundError);
    assert.equal(c.requests.length, 0);
  });

  it('peers false never calls browse', async () => {
    const d = dir();
    const c = await server(honest(DATA));
    const fb = fakeBrowse([]);
    await fetchFile(opts(d, { peers: false, browse: fb.browse, cdn: [c.url('/x')] }));
    assert.equal(fb.calls.length, 0);
  });

  it('-o - writes to the stream only after verification', async () => {
    const d = dir();
    const c = await server(liar(DATA));
    const out = new PassThrough();
    const got: Buffer[] = [];
    out.on('data', (b: Buffer) => got.push(b));
    await assert.rejects(fetchFile(opts(d, { peers: false, cdn: [c.url('/x')], output: '-', stdout: out })), ChecksumMismatchError);
    assert.equal(Buffer.concat(got).length, 0);

    const g = await server(honest(DATA));
    const out2 = new PassThrough();
    const got2: Buffer[] = [];
    out2.on('data', (b: Buffer) => got2.push(b));
    const r = await fetchFile(opts(d, { peers: false, cdn: [g.url('/x')], output: '-', stdout: out2 }));
    assert.equal(r.path, '-');
    assert.deepEqual(Buffer.concat(got2), DATA);
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('-o DIR saves DIR/NAME', async () => {
    const d = dir();
    mkdirSync(join(d, 'sub'));
    const c = await server(honest(DATA));
    const r = await fetchFile(opts(d, { peers: false, cdn: [c.url('/x')], output: join(d, 'sub') }));
    assert.equal(r.path, join(d, 'sub', NAME));
  });

  it('a missing output directory is an error before any download', async () => {
    const d = dir();
    const c = await server(honest(DATA));
    await assert.rejects(fetchFile(opts(d, { peers: false, cdn: [c.url('/x')], output: join(d, 'nope', NAME) })), /no such directory/);
    assert.equal(c.requests.length, 0);
  });

  it('rejects a bad hash and a bad name as usage errors', async () => {
    const d = dir();
    await assert.rejects(fetchFile(opts(d, { sha256: 'abc' })), UsageError);
    await assert.rejects(fetchFile(opts(d, { name: '../etc/passwd' })), UsageError);
    await assert.rejects(fetchFile(opts(d, { sha256: undefined })), UsageError);
  });

  it('an abort signal stops the download and leaves nothing behind', async () => {
    const d = dir();
    const p = await server(drip(DATA, 50));
    const ac = new AbortController();
    const promise = fetchFile(opts(d, {
      browse: fakeBrowse([p.port]).browse,
      peerLimits: { ...FAST, minBytesPerSec: 0, baseDeadlineMs: 60_000, deadlineBytesPerSec: 1e9 },
      signal: ac.signal,
      onProgress: (e) => e.type === 'bytes' && e.received >= 3 && ac.abort(),
    }));
    await assert.rejects(promise, /aborted/);
    assert.deepEqual(tempFilesIn(d), []);
    assert.equal(existsSync(join(d, NAME)), false);
  });
});

describe('fetchFile: local daemon', () => {
  it('uses the local daemon when it holds the hash, and does not publish back', async () => {
    const d = dir();
    const local = await server(honest(DATA));
    const dm = await startFakeDaemon({ dir: d, httpsPort: local.port, items: [{ hash: HASH, basename: NAME, size: DATA.length }] });
    try {
      const fb = fakeBrowse([]);
      const r = await fetchFile(opts(d, { socketPath: dm.socketPath, browse: fb.browse }));
      assert.equal(r.source, 'local');
      assert.equal(local.requests[0].path, `/${NAME}?sha256=${HASH}`);
      assert.equal(dm.published.length, 0);
      assert.deepEqual(readFileSync(r.path), DATA);
    } finally {
      await dm.close();
    }
  });

  it('publishes what it fetched from a peer to the local daemon, skipping the daemon in discovery', async () => {
    const d = dir();
    const local = await server(status(404));
    const p = await server(honest(DATA));
    const dm = await startFakeDaemon({ dir: d, httpsPort: local.port, items: [] });
    try {
      const fb = fakeBrowse([p.port]);
      const r = await fetchFile(opts(d, { socketPath: dm.socketPath, browse: fb.browse, maxAge: 600, shareLimit: 9 }));
      assert.equal(r.source, 'peer');
      assert.equal(r.published, true);
      assert.equal(local.requests.length, 0, 'the daemon said it does not hold the hash');
      assert.deepEqual(fb.calls[0].opts?.excludeInstances, ['Passim-TEST']);
      assert.equal(dm.published.length, 1);
      assert.equal(dm.published[0].sha256, HASH);
      assert.equal(dm.published[0].size, DATA.length);
      assert.equal(dm.published[0].query.get('name'), NAME);
      assert.equal(dm.published[0].query.get('sha256'), HASH);
      assert.equal(dm.published[0].query.get('max_age'), '600');
      assert.equal(dm.published[0].query.get('share_limit'), '9');
    } finally {
      await dm.close();
    }
  });

  it('publish false does not publish; an existing item is fine', async () => {
    const d = dir();
    const c = await server(honest(DATA));
    const dm = await startFakeDaemon({ dir: d, httpsPort: 1, items: [], publishStatus: 409 });
    try {
      const r1 = await fetchFile(opts(d, { socketPath: dm.socketPath, peers: false, cdn: [c.url('/x')], publish: false }));
      assert.equal(r1.published, false);
      assert.equal(dm.published.length, 0);
      const r2 = await fetchFile(opts(d, { socketPath: dm.socketPath, peers: false, cdn: [c.url('/x')] }));
      assert.equal(r2.published, true);
      assert.equal(dm.published.length, 1);
    } finally {
      await dm.close();
    }
  });

  it('a local daemon whose HTTPS port fails is skipped, and the next source is used', async () => {
    const d = dir();
    const local = await server(liar(DATA));
    const c = await server(honest(DATA));
    const dm = await startFakeDaemon({ dir: d, httpsPort: local.port, items: [{ hash: HASH, basename: NAME, size: DATA.length }] });
    try {
      const r = await fetchFile(opts(d, { socketPath: dm.socketPath, peers: false, cdn: [c.url('/x')] }));
      assert.equal(r.source, 'cdn');
      assert.equal(r.skipped[0].source, 'local');
    } finally {
      await dm.close();
    }
  });
  it('a daemon that accepts and never answers costs at most the local and publish timeouts', async () => {
    const d = dir();
    const socks = new Set<Socket>();
    const hung = createNetServer((s) => {
      socks.add(s);
      s.on('error', () => {});
      s.resume(); // read whatever is sent, answer nothing
    });
    const sock = join(d, 'hung.sock');
    await new Promise<void>((r) => hung.listen(sock, r));
    try {
      const c = await server(honest(DATA));
      const events: FetchProgress[] = [];
      const t0 = Date.now();
      const r = await fetchFile(opts(d, {
        socketPath: sock, peers: false, cdn: [c.url('/x')], localTimeoutMs: 200, publishTimeoutMs: 300,
        onProgress: (e) => events.push(e),
      }));
      assert.equal(r.source, 'cdn');
      assert.equal(r.published, false);
      assert.ok(events.some((e) => e.type === 'publish-failed'));
      assert.ok(Date.now() - t0 < 3000);
    } finally {
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => hung.close(() => r()));
    }
  });
});
