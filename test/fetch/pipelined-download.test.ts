/**
 * The pipelined download path: bodies of WORKER_MIN_SIZE and more (or of unknown size) are hashed
 * and written by a worker thread while this thread receives (lib/core/hash-writer.ts). Bodies
 * here are 20 MiB, over the writer's buffer pool, so backpressure between the two threads is
 * exercised; misbehaving servers must still be refused with nothing left behind. Loopback only.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cdnAgent } from '../../lib/fetch/dispatchers.js';
import { PeerConnections } from '../../lib/fetch/peer-request.js';
import { PEER_LIMITS, withLimits, type SourceLimits } from '../../lib/fetch/limits.js';
import { SourceError, verifiedDownload } from '../../lib/fetch/verified-download.js';
import { acquireHashWriter, BATCH_SIZE, HashWriterError, MAX_BATCHES, WORKER_MIN_SIZE, type HashingSink } from '../../lib/core/hash-writer.js';
import { InlineHashWriter } from '../../lib/fetch/inline-hash-writer.js';
import {
  Fixtures,
  head,
  honest,
  liar,
  makeCert,
  noLength,
  refused,
  sha256,
  shortBody,
  tempFilesIn,
  type Handler,
  type KeyCert,
  type TestServer,
} from './helpers.js';
import { requires } from '../helpers/requires.js';
import { directWorks, pageCacheBytes } from '../helpers/direct-io.js';

const SIZE = 20 * 1024 * 1024;
const DATA = randomBytes(SIZE);
const HASH = sha256(DATA);

const LIMITS: Partial<SourceLimits> = {
  connectTimeoutMs: 2000,
  headersTimeoutMs: 5000,
  bodyTimeoutMs: 5000,
  minBytesPerSec: 1000,
  rateWindowMs: 500,
  baseDeadlineMs: 30_000,
};

/** Sends the first `fast` bytes at once, then one byte every `ms`. */
const dripAfter = (data: Buffer, fast: number, ms: number): Handler => (_req, sock) => {
  head(sock, 200, { 'Content-Length': data.length });
  sock.write(data.subarray(0, fast));
  let i = fast;
  const t = setInterval(() => {
    if (sock.destroyed || i >= data.length) return clearInterval(t);
    sock.write(data.subarray(i, i + 1));
    i++;
  }, ms);
  sock.on('close', () => clearInterval(t));
};

/** Declares the full length, sends `upTo` bytes, then holds the connection open without a word. */
const stallAfter = (data: Buffer, upTo: number): Handler => (_req, sock) => {
  head(sock, 200, { 'Content-Length': data.length });
  sock.write(data.subarray(0, upTo));
};

let kc: KeyCert;
const fx = new Fixtures();
const server = (h: Handler): Promise<TestServer> => fx.server(kc, h);
const dir = (): string => fx.dir();

/**
 * The ways a body comes in: undici's pool (the CDN's, verifying our test certificate), a plain TLS
 * socket per download (a single fetch from a peer) and kept-alive plain TLS sockets (batches).
 */
type Via = 'undici pool' | 'direct TLS' | 'kept-alive TLS';
const VIAS: Via[] = ['undici pool', 'direct TLS', 'kept-alive TLS'];

async function download(via: Via, url: string, d: string, o: { limits?: Partial<SourceLimits>; signal?: AbortSignal; onProgress?: (n: number) => void } = {}) {
  const limits = withLimits(PEER_LIMITS, { ...LIMITS, ...o.limits });
  const agent = via === 'undici pool' ? cdnAgent(limits, kc.cert) : undefined;
  const peerConnections = via === 'kept-alive TLS' ? new PeerConnections() : undefined;
  try {
    return await verifiedDownload({
      url, dispatcher: agent ?? 'peer', peerConnections, expectedSha256: HASH, dir: d, name: 'big.bin', limits, redirects: 'same-origin',
      signal: o.signal, onProgress: o.onProgress && ((n) => o.onProgress!(n)),
    });
  } finally {
    await agent?.destroy();
    peerConnections?.close();
  }
}

before(async () => {
  kc = await makeCert();
  assert.ok(SIZE >= WORKER_MIN_SIZE && SIZE > BATCH_SIZE * MAX_BATCHES, 'the bodies take the worker path and fill its buffer pool');
});

after(() => fx.cleanup());

for (const via of VIAS) describe(`verifiedDownload, pipelined (hashing and writing in a worker), ${via}`, () => {
  it('writes and verifies a 20 MiB body byte for byte', async () => {
    const d = dir();
    const s = await server(honest(DATA));
    const r = await download(via, s.url('/big.bin'), d);
    assert.equal(r.sha256, HASH);
    assert.equal(r.size, SIZE);
    assert.ok(readFileSync(r.tmpPath).equals(DATA));
    await unlink(r.tmpPath);
  });

  if (via === 'undici pool') it('verifies a body of unknown length (no Content-Length) the same way', async () => {
    const d = dir();
    const s = await server(noLength(DATA));
    const r = await download(via, s.url('/big.bin'), d);
    assert.equal(r.sha256, HASH);
    assert.ok(readFileSync(r.tmpPath).equals(DATA));
    await unlink(r.tmpPath);
  });
  else it('refuses a body of unknown length (passim peers always send Content-Length), leaving no temp file', async () => {
    const d = dir();
    const s = await server(noLength(DATA));
    const e = await refused(download(via, s.url('/big.bin'), d));
    assert.equal(e.kind, 'length');
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('refuses a wrong byte in the middle (mismatch), leaving no temp file', async () => {
    const d = dir();
    const s = await server(liar(DATA));
    const e = await refused(download(via, s.url('/big.bin'), d));
    assert.equal(e.kind, 'mismatch');
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('refuses a short body (connection closed early), leaving no temp file', async () => {
    const d = dir();
    const s = await server(shortBody(DATA));
    const e = await refused(download(via, s.url('/big.bin'), d));
    assert.match(e.kind, /^(length|network)$/);
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('cuts off a slow drip after 12 MiB at full speed (rate check), leaving no temp file', async () => {
    const d = dir();
    const s = await server(dripAfter(DATA, 12 * 1024 * 1024, 100));
    const e = await refused(download(via, s.url('/big.bin'), d));
    assert.equal(e.kind, 'too-slow');
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('cuts off a body that stalls after 12 MiB (body timeout), leaving no temp file', async () => {
    const d = dir();
    const s = await server(stallAfter(DATA, 12 * 1024 * 1024));
    const e = await refused(download(via, s.url('/big.bin'), d, { limits: { minBytesPerSec: 0, bodyTimeoutMs: 600 } }));
    assert.equal(e.kind, 'timeout');
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('stops on abort mid-body, leaving no temp file', async () => {
    const d = dir();
    const s = await server(stallAfter(DATA, 12 * 1024 * 1024));
    const ac = new AbortController();
    const e = await refused(download(via, s.url('/big.bin'), d, {
      limits: { minBytesPerSec: 0 },
      signal: ac.signal,
      onProgress: (n) => { if (n >= 10 * 1024 * 1024) ac.abort(); },
    }));
    assert.equal(e.kind, 'aborted');
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('leaves no file descriptor open after downloads that failed and succeeded', async () => {
    const d = dir();
    const good = await server(honest(DATA));
    const bad = await server(liar(DATA));
    const first = await download(via, good.url('/big.bin'), d); // warm: worker and agent code loaded
    await unlink(first.tmpPath);
    const before = (await readdir('/proc/self/fd')).length;
    await refused(download(via, bad.url('/big.bin'), d));
    const r = await download(via, good.url('/big.bin'), d);
    await unlink(r.tmpPath);
    assert.equal((await readdir('/proc/self/fd')).length, before);
  });
});

describe('the hashing sinks (worker and same-thread)', () => {
  for (const [which, make] of [['HashWriter (worker)', acquireHashWriter], ['InlineHashWriter', () => new InlineHashWriter()]] as const) {
    it(`${which} hashes and writes what it is given, in order, with backpressure`, async () => {
      const d = dir();
      const path = join(d, 'out.bin');
      const fd = openSync(path, 'wx');
      const w: HashingSink = make();
      try {
        w.begin(fd);
        let refusedOnce = false;
        for (let off = 0; off < SIZE;) {
          const n = Math.min(16384 + (off % 7), SIZE - off); // odd sizes: batches straddle chunks
          if (!w.write(DATA.subarray(off, off + n))) {
            refusedOnce = true;
            await new Promise<void>((r) => { w.onDrain = r; });
          }
          off += n;
        }
        const r = await w.end();
        assert.equal(r.sha256, HASH);
        assert.equal(r.size, SIZE);
        assert.ok(refusedOnce, 'a writer faster than the worker is told to wait');
      } finally {
        w.release();
        closeSync(fd);
      }
      assert.equal(statSync(path).size, SIZE);
      assert.ok(readFileSync(path).equals(DATA));
    });

    for (const direct of [false, true]) it(`${which} reports a write error (fd open read-only${direct ? ', direct asked' : ''}) from end() and onError`, async () => {
      const d = dir();
      const path = join(d, 'ro.bin');
      closeSync(openSync(path, 'wx'));
      const fd = openSync(path, 'r');
      const w: HashingSink = make();
      let reported: HashWriterError | undefined;
      w.onError = (e) => { reported = e; };
      try {
        w.begin(fd, { direct });
        w.write(DATA.subarray(0, 3 * BATCH_SIZE));
        await assert.rejects(w.end(), (e: unknown) => e instanceof HashWriterError && e.code === 'EBADF');
        assert.equal(reported?.code, 'EBADF');
        await w.stop();
      } finally {
        w.release();
        closeSync(fd);
      }
      assert.equal(statSync(path).size, 0, 'nothing written through a second, writable opening of the file');
    });
  }

  it('HashWriter with direct: whole blocks go around the page cache (O_DIRECT) where the filesystem allows, the odd tail through the fd', async () => {
    const d = dir();
    const size = 3 * BATCH_SIZE + 1000; // the last batch ends off a block boundary
    const path = join(d, 'direct.bin');
    const fd = openSync(path, 'wx');
    const w = acquireHashWriter();
    try {
      w.begin(fd, { direct: true });
      for (let off = 0; off < size; off += 65_536) {
        if (!w.write(DATA.subarray(off, Math.min(off + 65_536, size)))) await new Promise<void>((r) => { w.onDrain = r; });
      }
      const r = await w.end();
      assert.equal(r.sha256, sha256(DATA.subarray(0, size)));
      assert.equal(r.size, size);
      assert.equal(r.direct, directWorks(d) ? size - (size % 4096) : 0);
    } finally {
      w.release();
      closeSync(fd);
    }
    assert.ok(readFileSync(path).equals(DATA.subarray(0, size)));
  });

  it('HashWriter with direct leaves at most the odd tail of the file in the page cache', { skip: requires('fincore') }, async (t) => {
    const d = dir();
    if (!directWorks(d)) return t.skip(`the filesystem of ${d} refuses O_DIRECT`);
    const size = 8 * BATCH_SIZE + 1000;
    const path = join(d, 'cached.bin');
    const fd = openSync(path, 'wx');
    const w = acquireHashWriter();
    try {
      w.begin(fd, { direct: true });
      if (!w.write(DATA.subarray(0, size))) await new Promise<void>((r) => { w.onDrain = r; });
      await w.end();
    } finally {
      w.release();
      closeSync(fd);
    }
    const resident = pageCacheBytes(path);
    assert.ok(resident <= 4096, `${resident} bytes of the file in the page cache (at most its last page expected)`);
  });
});
